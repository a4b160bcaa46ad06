// Command attemptlimit is an admission plugin that allows each user at most
// max attempts per window, counted on the gateway's shared counters (so the
// limit holds across all gateway instances):
//
//	{"max": 5, "window_ms": 10000, "per_item": false, "status": 429}
//
// Requests without a user are counted by client IP. When the counter store
// is unavailable the plugin fails and the gateway applies its fail policy.
package main

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/seckill/flashsale/plugins/sdk"
)

type config struct {
	Max      int64 `json:"max"`
	WindowMS int64 `json:"window_ms"`
	PerItem  bool  `json:"per_item"`
	Status   int   `json:"status"`
}

var cfg = config{Max: 5, WindowMS: 10_000, Status: 429}

func init() {
	if raw := sdk.Config(); len(raw) > 0 {
		if err := json.Unmarshal(raw, &cfg); err != nil {
			panic("attemptlimit: bad config: " + err.Error())
		}
	}
	if cfg.Max <= 0 || cfg.WindowMS <= 0 {
		panic("attemptlimit: max and window_ms must be positive")
	}
	if cfg.Status < 400 || cfg.Status > 599 {
		panic("attemptlimit: status must be a 4xx or 5xx code")
	}
	sdk.HandleRequest(handle)
}

func main() {}

func handle(req sdk.Request, resp sdk.Response) bool {
	// The key is built in one buffer: the user read as a number, the item as
	// bytes, one string made at the end (each string read costs a Go guest an
	// allocation).
	var kb [64]byte
	key := kb[:0]
	if u, ok := req.User(); ok {
		key = strconv.AppendInt(append(key, "u:"...), u, 10)
	} else {
		key = append(append(key, "ip:"...), req.ClientIP()...)
	}
	if cfg.PerItem {
		key = append(append(key, ":i:"...), req.HeaderBytes(sdk.HeaderItem)...)
	}
	window := time.Duration(cfg.WindowMS) * time.Millisecond
	n, err := sdk.Counter(string(key), 1, window)
	if err != nil {
		sdk.Fail("attempt counter: " + err.Error())
		return false
	}
	if n > cfg.Max {
		resp.SetHeader("Retry-After", strconv.FormatInt((cfg.WindowMS+999)/1000, 10))
		return resp.Reject(cfg.Status, "too many attempts: at most "+
			strconv.FormatInt(cfg.Max, 10)+" per "+window.String())
	}
	return true
}
