// Command powcheck is an admission plugin that asks clients for a small
// proof of work, to make scripted bursts expensive: the request must carry
// the header X-Pow: <nonce> such that sha256(userID + ":" + nonce) starts with
// at least difficulty zero bits.
//
//	{"difficulty": 16, "status": 403}
package main

import (
	"crypto/sha256"
	"encoding/json"
	"math/bits"

	"github.com/seckill/flashsale/plugins/sdk"
)

type config struct {
	Difficulty int `json:"difficulty"`
	Status     int `json:"status"`
}

var cfg = config{Difficulty: 16, Status: 403}

func init() {
	if raw := sdk.Config(); len(raw) > 0 {
		if err := json.Unmarshal(raw, &cfg); err != nil {
			panic("powcheck: bad config: " + err.Error())
		}
	}
	if cfg.Difficulty < 0 || cfg.Difficulty > 256 {
		panic("powcheck: difficulty must be within 0..256")
	}
	if cfg.Status < 400 || cfg.Status > 599 {
		panic("powcheck: status must be a 4xx or 5xx code")
	}
	sdk.HandleRequest(handle)
}

func main() {}

func handle(req sdk.Request, resp sdk.Response) bool {
	nonce := req.Header("X-Pow")
	if nonce == "" {
		return resp.Reject(cfg.Status, "proof of work required (X-Pow header)")
	}
	sum := sha256.Sum256([]byte(req.UserID() + ":" + nonce))
	if leadingZeroBits(sum[:]) < cfg.Difficulty {
		return resp.Reject(cfg.Status, "proof of work too weak")
	}
	return true
}

func leadingZeroBits(b []byte) int {
	n := 0
	for _, x := range b {
		if x != 0 {
			return n + bits.LeadingZeros8(x)
		}
		n += 8
	}
	return n
}
