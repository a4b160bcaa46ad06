// Command probe is a test guest for the wasm package. What it does is chosen
// per request by the X-Probe header, so one module covers the faults the
// gateway must survive and the host functions it must provide:
//
//	(none)         admit; set request headers X-Probe-Calls (calls served by
//	               this instance) and X-Probe-Config (the config)
//	reject         reject with status 429 and body "go away"
//	reject-silent  reject without status or body
//	reject-headers reject with 429, setting response headers X-Request-Id
//	               ("forged", then a second line "forged-too") and Retry-After ("7")
//	panic          panic (a trap: the Go runtime exits)
//	loop           spin forever (the deadline must stop it)
//	grow           allocate memory without end (the memory limit must stop it)
//	fail           call sdk.Fail
//	counter        add 1 to the counter named by X-Probe-Key with the ttl in
//	               X-Probe-TTL-Ms, put the value in request header X-Probe-Counter
//	now            put sdk.Now() in request header X-Probe-Now (unix ms)
//	trusted        put the trusted headers and client IP in request header
//	               X-Probe-Trusted
//	spoof          change the request header named by X-Probe-Spoof-Name
//	               the way X-Probe-Spoof-Op says: set or add the value
//	               "spoofed", or remove it
//
// Config {"panic_on_init":true} makes instantiation fail. Config
// {"header":"X-Other"} makes the probe read its mode from that header instead
// of X-Probe, so several probes in one chain can be told apart (one fails on
// X-Fault-Open, another on X-Fault-Closed).
package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/seckill/flashsale/plugins/sdk"
)

var (
	calls  int
	sink   [][]byte
	header = "X-Probe" // the header that picks the mode
)

func init() {
	cfg := string(sdk.Config())
	if strings.Contains(cfg, `"panic_on_init":true`) {
		panic("probe: asked to fail at init")
	}
	// A tiny scan rather than encoding/json: the probe stays small and fast
	// to compile.
	const key = `"header":"`
	if i := strings.Index(cfg, key); i >= 0 {
		rest := cfg[i+len(key):]
		if j := strings.IndexByte(rest, '"'); j > 0 {
			header = rest[:j]
		}
	}
	sdk.HandleRequest(handle)
}

func main() {}

func handle(req sdk.Request, resp sdk.Response) bool {
	calls++
	switch req.Header(header) {
	case "reject":
		return resp.Reject(429, "go away")
	case "reject-silent":
		return false
	case "reject-headers":
		resp.SetHeader("X-Request-Id", "forged")
		resp.AddHeader("X-Request-Id", "forged-too")
		resp.SetHeader("Retry-After", "7")
		return resp.Reject(429, "go away")
	case "panic":
		panic("probe: boom")
	case "loop":
		for {
		}
	case "grow":
		for {
			sink = append(sink, make([]byte, 1<<20))
		}
	case "fail":
		sdk.Fail("probe: asked to fail")
		return true
	case "counter":
		ttl, _ := strconv.ParseInt(req.Header("X-Probe-TTL-Ms"), 10, 64)
		n, err := sdk.Counter(req.Header("X-Probe-Key"), 1, time.Duration(ttl)*time.Millisecond)
		if err != nil {
			return resp.Reject(500, err.Error())
		}
		req.SetHeader("X-Probe-Counter", strconv.FormatInt(n, 10))
	case "now":
		req.SetHeader("X-Probe-Now", strconv.FormatInt(sdk.Now().UnixMilli(), 10))
	case "trusted":
		req.SetHeader("X-Probe-Trusted", req.UserID()+"|"+req.ActivityID()+"|"+req.ItemID()+"|"+req.ClientIP())
	case "spoof":
		name := req.Header("X-Probe-Spoof-Name")
		switch req.Header("X-Probe-Spoof-Op") {
		case "set":
			req.SetHeader(name, "spoofed")
		case "add":
			req.AddHeader(name, "spoofed")
		case "remove":
			req.RemoveHeader(name)
		}
	}
	req.SetHeader("X-Probe-Calls", strconv.Itoa(calls))
	req.SetHeader("X-Probe-Config", string(sdk.Config()))
	return true
}
