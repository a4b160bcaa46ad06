package api

import "time"

// Limits are the fleet's rate limits (GET and PUT /admin/v1/limits): a global token
// bucket of changes (orders, cancels, payments) and one of reads, and buckets per user
// (changes, and reads of orders and tickets), per item and per client IP. A PUT
// changes only the rules and fields it names. The answer also says which version of
// the limits the fleet stores and which each live gateway applies.
type Limits struct {
	Global   Rule `json:"global"`
	Read     Rule `json:"read"`
	User     Rule `json:"user"`
	UserRead Rule `json:"user_read"`
	Item     Rule `json:"item"`
	IP       Rule `json:"ip"`

	Version   int64           `json:"version,omitempty"`    // counts the stored changes; 0: the configured limits
	UpdatedBy string          `json:"updated_by,omitempty"` // who made the last change
	UpdatedAt *time.Time      `json:"updated_at,omitempty"`
	Gateways  []GatewayLimits `json:"gateways,omitempty"`
}

// GatewayLimits is the version of the limits one live gateway applies, and the
// fleet's size its global and per-item buckets are sized for.
type GatewayLimits struct {
	Gateway string `json:"gateway"`
	Version int64  `json:"version"`
	Share   int    `json:"share,omitempty"`
}

// Rule is one token bucket: RPS tokens a second, up to Burst at once. RPS <= 0
// turns the limit off.
type Rule struct {
	RPS   float64 `json:"rps"`
	Burst int     `json:"burst"`
}
