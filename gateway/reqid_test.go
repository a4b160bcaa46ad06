package gateway_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/seckill/flashsale/gateway/ratelimit"
)

// TestRequestIDOnEveryAnswer: every answer carries X-Request-Id: the client's when it
// is well-formed and short, a fresh one otherwise (so a client cannot forge log lines
// or headers through it); the backend's call carries the same id.
func TestRequestIDOnEveryAnswer(t *testing.T) {
	f := start(t, ratelimit.Limits{IP: ratelimit.Rule{RPS: 0.001, Burst: 1}})
	fresh := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, tt := range []struct {
		name, method, path, token, sent string
		status                          int
		keep                            bool
	}{
		{"none sent", "GET", "/healthz", "", "", 200, false},
		{"well-formed", "GET", "/healthz", "", "req-42.a_b:c", 200, true},
		{"64 characters", "GET", "/healthz", "", strings.Repeat("a", 64), 200, true},
		{"65 characters", "GET", "/healthz", "", strings.Repeat("a", 65), 200, false},
		{"a space", "GET", "/healthz", "", "a b", 200, false},
		{"markup", "GET", "/healthz", "", "<script>", 200, false},
		{"quote", "GET", "/healthz", "", `a"b`, 200, false},
		{"404", "GET", "/nowhere", "", "id-404", 404, true},
		{"405", "DELETE", "/api/v1/activities", "", "id-405", 405, true},
		{"401", "POST", "/api/v1/orders", "", "id-401", 401, true},
		{"admin 401", "GET", "/admin/v1/secret", "", "id-a401", 401, true},
		{"429", "GET", "/api/v1/activities/7", "", "id-429", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hdr := []string{}
			if tt.sent != "" {
				hdr = []string{"X-Request-Id", tt.sent}
			}
			r := f.do(t, tt.method, tt.path, tt.token, "", hdr...)
			if tt.status != 0 && r.status != tt.status {
				t.Fatalf("got %d, want %d", r.status, tt.status)
			}
			got := r.header.Get("X-Request-Id")
			if tt.keep && got != tt.sent || !tt.keep && !fresh.MatchString(got) {
				t.Fatalf("sent %q: got X-Request-Id %q, want %s", tt.sent, got, map[bool]string{true: "it back", false: "a fresh id"}[tt.keep])
			}
		})
	}
	// The 429 of the per-IP limit (burst 1, so the second read).
	if r := f.do(t, "GET", "/api/v1/activities/7", "", "", "X-Request-Id", "id-429b"); r.status != http.StatusTooManyRequests || r.header.Get("X-Request-Id") != "id-429b" {
		t.Fatalf("429: got %d id %q", r.status, r.header.Get("X-Request-Id"))
	}
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), order, "X-Request-Id", "order-req-1"); r.status != http.StatusAccepted {
		t.Fatalf("order: got %d %v", r.status, r.body)
	}
	f.backend.mu.Lock()
	seen := f.backend.lastRequestID
	f.backend.mu.Unlock()
	if seen != "order-req-1" {
		t.Fatalf("the backend saw request id %q, want order-req-1", seen)
	}
}
