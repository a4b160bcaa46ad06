package gateway_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/gateway/ratelimit"
)

// TestClientIPIgnoresForwardingFromStrangers: with no trusted proxy (the default), a
// client that sends X-Forwarded-For, X-Real-IP or Forwarded still has its own
// address: it shares one per-IP bucket however it varies them, and an IP blocklist
// plugin still sees it.
func TestClientIPIgnoresForwardingFromStrangers(t *testing.T) {
	f := start(t, ratelimit.Limits{IP: ratelimit.Rule{RPS: 0.001, Burst: 3}})
	limited := 0
	for i := range 12 {
		spoof := "198.51.100." + strconv.Itoa(i+1)
		r := f.do(t, "GET", "/api/v1/activities/7", "", "", "X-Forwarded-For", spoof, "X-Real-IP", spoof, "Forwarded", "for="+spoof)
		if r.status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited != 9 {
		t.Fatalf("got %d of 12 reads refused with a new X-Forwarded-For each, want 9 (burst 3, one address)", limited)
	}

	f.load(t, []pluginSpec{{name: "blocklist", wasmPath: "../plugins/examples/blocklist/blocklist.wasm", order: 1,
		config: `{"ips": ["127.0.0.1"]}`}})
	r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), order, "X-Forwarded-For", "203.0.113.9", "X-Real-IP", "203.0.113.9")
	if r.status != http.StatusForbidden {
		t.Fatalf("blocked address with a forged X-Forwarded-For: got %d %v, want 403", r.status, r.body)
	}
}

// TestClientIPFromTrustedProxies: behind trusted proxies the client is the right-most
// hop that is not a proxy; what a client writes to the left of it changes nothing.
func TestClientIPFromTrustedProxies(t *testing.T) {
	for _, tt := range []struct {
		name, header string
		values       []string // header lines sent from the trusted peer
		blocked      bool     // the client is 198.51.100.7, which the blocklist names
	}{
		{"xff client", "", []string{"198.51.100.7"}, true},
		{"xff through two proxies", "", []string{"198.51.100.7, 127.0.0.9"}, true},
		{"xff forged left of the real client", "", []string{"198.51.100.7, 203.0.113.5"}, false},
		{"xff forged hides nothing", "", []string{"203.0.113.5, 198.51.100.7"}, true},
		{"xff two lines", "", []string{"203.0.113.5", "198.51.100.7"}, true},
		{"xff garbage", "", []string{"not-an-ip"}, false},
		{"forwarded", "Forwarded", []string{`for=203.0.113.5, for="198.51.100.7:4711";proto=https`}, true},
		{"forwarded ipv6", "Forwarded", []string{`for=203.0.113.5, for="[2001:db8::1]:4711"`}, true},
		{"forwarded forged", "Forwarded", []string{`for=198.51.100.7, for=203.0.113.5`}, false},
		{"x-real-ip", "X-Real-IP", []string{"198.51.100.7"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, ratelimit.Limits{}, func(c *gateway.Config) {
				c.TrustedProxies = []string{"127.0.0.0/8"}
				c.ForwardedHeader = tt.header
			})
			// The peer (127.0.0.1) is blocked only where it should stand for the
			// client: elsewhere a request seen as from the peer must get through.
			ips := `"198.51.100.7", "2001:db8::/32"`
			if tt.name == "xff garbage" {
				ips += `, "127.0.0.1"`
			}
			f.load(t, []pluginSpec{{name: "blocklist", wasmPath: "../plugins/examples/blocklist/blocklist.wasm", order: 1,
				config: `{"ips": [` + ips + `]}`}})
			name := tt.header
			if name == "" {
				name = "X-Forwarded-For"
			}
			req, _ := http.NewRequest("POST", f.url+"/api/v1/orders", strings.NewReader(order))
			req.Header.Set("Authorization", "Bearer "+tok(t, 5))
			for _, v := range tt.values {
				req.Header.Add(name, v)
			}
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			want := http.StatusAccepted
			if tt.blocked {
				want = http.StatusForbidden
			}
			if tt.name == "xff garbage" {
				want = http.StatusForbidden // the trusted peer itself (127.0.0.1) stands for the client
			}
			if r.StatusCode != want {
				t.Fatalf("%s %q: got %d, want %d", name, tt.values, r.StatusCode, want)
			}
		})
	}
}
