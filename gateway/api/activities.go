package api

// Activity is a sale as the API shows it: its window (RFC 3339 times), state
// (draft, published, offline), strategy (sync, async, bucket) and items.
type Activity struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	Start        string `json:"start"`
	End          string `json:"end"`
	State        string `json:"state"`
	Strategy     string `json:"strategy"`
	PerUserLimit int32  `json:"per_user_limit"`
	BucketCount  int32  `json:"bucket_count"`
	Version      int64  `json:"version"`
	Items        []Item `json:"items"`
	// WaitingRoom is the activity's waiting room (docs/WAITING_ROOM.md).
	WaitingRoom WaitingRoom `json:"waiting_room"`
}

// WaitingRoom is an activity's waiting room: on or off, and K, the orders in flight
// the gateways forward per unit left.
type WaitingRoom struct {
	Enabled bool    `json:"enabled"`
	K       float64 `json:"k"`
}

// WaitingRoomChange sets an activity's waiting room; a field left out keeps its
// value (at creation: off, k 1.5).
type WaitingRoomChange struct {
	Enabled *bool    `json:"enabled,omitempty"`
	K       *float64 `json:"k,omitempty"`
}

// Item is one item of an activity. Remaining is the approximate stock left,
// where the answer knows it. State is online or offline (an offline item sells
// nothing while its activity is published); Start and End are the item's own
// window, when it has one inside the activity's.
type Item struct {
	ID         int64  `json:"id"`
	ActivityID int64  `json:"activity_id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	TotalStock int64  `json:"total_stock"`
	Remaining  *int64 `json:"remaining,omitempty"`
	State      string `json:"state"`
	Start      string `json:"start,omitempty"`
	End        string `json:"end,omitempty"`
}

// ActivityList is the answer of GET /api/v1/activities and GET
// /admin/v1/activities: a page, newest first. Next is the cursor of the next
// page (the after parameter), empty on the last.
type ActivityList struct {
	Activities []Activity `json:"activities"`
	Next       string     `json:"next,omitempty"`
}

// CreateActivityRequest is the body of POST /admin/v1/activities. Start and
// End are RFC 3339 times, like 2026-11-25T20:00:00Z.
type CreateActivityRequest struct {
	Name         string     `json:"name"`
	Start        string     `json:"start"`
	End          string     `json:"end"`
	Strategy     string     `json:"strategy"`
	PerUserLimit int32      `json:"per_user_limit"`
	BucketCount  int32      `json:"bucket_count"`
	Items        []ItemSpec `json:"items"`
	// WaitingRoom: omitted, off with k 1.5.
	WaitingRoom *WaitingRoomChange `json:"waiting_room,omitempty"`
}

// ItemSpec is one item of a new activity with its stock, and the body of POST
// /admin/v1/activities/{id}/items. State is online (the default) or offline;
// Start and End (RFC 3339) give it a window of its own inside the activity's.
type ItemSpec struct {
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock"`
	State      string `json:"state,omitempty"`
	Start      string `json:"start,omitempty"`
	End        string `json:"end,omitempty"`
}

// UpdateActivityRequest is the body of PUT /admin/v1/activities/{id}: only
// the fields set change.
type UpdateActivityRequest struct {
	Name         *string      `json:"name,omitempty"`
	Start        *string      `json:"start,omitempty"`
	End          *string      `json:"end,omitempty"`
	PerUserLimit *int32       `json:"per_user_limit,omitempty"`
	Strategy     *string      `json:"strategy,omitempty"`
	BucketCount  *int32       `json:"bucket_count,omitempty"`
	Items        []ItemChange `json:"items,omitempty"`
	// WaitingRoom changes the waiting room live.
	WaitingRoom *WaitingRoomChange `json:"waiting_room,omitempty"`
}

// ItemChange changes one item of an activity, named by ID (in the body of PUT
// /admin/v1/activities/{id}; PUT /admin/v1/activities/{id}/items/{item} names
// it in the path); only the fields set change (stock changes keep the sale's
// invariants). State is online or offline; Start and End (RFC 3339) give the
// item a window of its own, and "" drops it.
type ItemChange struct {
	ID         int64   `json:"id,omitempty"`
	Name       *string `json:"name,omitempty"`
	PriceCents *int64  `json:"price_cents,omitempty"`
	TotalStock *int64  `json:"total_stock,omitempty"`
	State      *string `json:"state,omitempty"`
	Start      *string `json:"start,omitempty"`
	End        *string `json:"end,omitempty"`
}

// Stats is the answer of GET /admin/v1/activities/{id}/stats: stock in Redis
// and MySQL, orders, pending tickets, and what each layer shed, by
// "layer/reason". Its fields are in the order of their JSON names.
type Stats struct {
	ActivityID     int64            `json:"activity_id"`
	BackendShed    map[string]int64 `json:"backend_shed"`
	GatewayShed    map[string]int64 `json:"gateway_shed"`
	Items          []ItemStats      `json:"items"`
	PendingTickets int64            `json:"pending_tickets"`
}

// ItemStats is one item of Stats, its fields in the order of their JSON names.
type ItemStats struct {
	InFlight       int64 `json:"in_flight"`
	ItemID         int64 `json:"item_id"`
	MySQLStock     int64 `json:"mysql_stock"`
	Orders         int64 `json:"orders"`
	PendingTickets int64 `json:"pending_tickets"`
	RedisLoaded    bool  `json:"redis_loaded"`
	RedisStock     int64 `json:"redis_stock"`
	TotalStock     int64 `json:"total_stock"`
	UnitsSold      int64 `json:"units_sold"`
	// WaitingRoom is the item's waiting room, when the gateway has one.
	WaitingRoom *RoomStats `json:"waiting_room,omitempty"`
}
