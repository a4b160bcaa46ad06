// Command timewindow is an admission plugin that admits requests only within
// a time window, by the gateway's clock (unix milliseconds, end exclusive;
// 0 leaves that side open):
//
//	{"start_ms": 1767225600000, "end_ms": 1767229200000, "status": 403}
package main

import (
	"encoding/json"

	"github.com/seckill/flashsale/plugins/sdk"
)

type config struct {
	StartMS int64 `json:"start_ms"`
	EndMS   int64 `json:"end_ms"`
	Status  int   `json:"status"`
}

var cfg = config{Status: 403}

func init() {
	if raw := sdk.Config(); len(raw) > 0 {
		if err := json.Unmarshal(raw, &cfg); err != nil {
			panic("timewindow: bad config: " + err.Error())
		}
	}
	if cfg.EndMS != 0 && cfg.EndMS <= cfg.StartMS {
		panic("timewindow: end_ms must be after start_ms")
	}
	if cfg.Status < 400 || cfg.Status > 599 {
		panic("timewindow: status must be a 4xx or 5xx code")
	}
	sdk.HandleRequest(handle)
}

func main() {}

func handle(_ sdk.Request, resp sdk.Response) bool {
	now := sdk.Now().UnixMilli()
	if cfg.StartMS != 0 && now < cfg.StartMS {
		return resp.Reject(cfg.Status, "not started")
	}
	if cfg.EndMS != 0 && now >= cfg.EndMS {
		return resp.Reject(cfg.Status, "ended")
	}
	return true
}
