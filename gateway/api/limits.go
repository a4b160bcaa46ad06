package api

// Limits are the gateway's rate limits (GET and PUT /admin/v1/limits): one
// global token bucket, and one per user, per item and per client IP.
type Limits struct {
	Global Rule `json:"global"`
	User   Rule `json:"user"`
	Item   Rule `json:"item"`
	IP     Rule `json:"ip"`
}

// Rule is one token bucket: RPS tokens a second, up to Burst at once. RPS <= 0
// turns the limit off.
type Rule struct {
	RPS   float64 `json:"rps"`
	Burst int     `json:"burst"`
}
