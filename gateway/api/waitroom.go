package api

// Queued is the answer of POST /api/v1/orders when the shopper has a place in the
// item's waiting room (202): ask again with the same order and the QueueToken in the
// Queue-Token header after RetryAfterMs.
type Queued struct {
	Status       string `json:"status"` // "queued"
	Position     int64  `json:"position"`
	RetryAfterMs int64  `json:"retry_after_ms"`
	QueueToken   string `json:"queue_token"`
}

// RoomStats is an item's waiting room in the activity stats, its fields in the order
// of their JSON names.
type RoomStats struct {
	AdmissionRate    float64 `json:"admission_rate"` // admissions a second, a decaying average over seconds
	Admitted         int64   `json:"admitted"`
	AdmittedFromLine int64   `json:"admitted_from_line"`
	AvgWaitMs        int64   `json:"avg_wait_ms"`
	Capacity         int64   `json:"capacity"`
	Enabled          bool    `json:"enabled"`
	HeadWaitMs       int64   `json:"head_wait_ms"`
	InFlight         int64   `json:"in_flight"`
	K                float64 `json:"k"`
	Lapsed           int64   `json:"lapsed"`
	Places           int64   `json:"places"`
	QueueLength      int64   `json:"queue_length"`
	SoldOutTold      int64   `json:"sold_out_told"`
}
