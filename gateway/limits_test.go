package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/testenv"
	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/gateway/ratelimit"
)

// TestShopperRoutesLimitedPerUser: every shopper route takes a token of the
// shopper's bucket: reads of orders and tickets the read bucket, cancel and pay the
// same bucket as placing orders. Past it the answer is 429 with Retry-After, the
// backend is not called, and another shopper is not affected.
func TestShopperRoutesLimitedPerUser(t *testing.T) {
	f := start(t, ratelimit.Limits{User: ratelimit.Rule{RPS: 0.001, Burst: 2}, UserRead: ratelimit.Rule{RPS: 0.001, Burst: 3}})
	for i, tt := range []struct {
		method, path, backend string
		burst, calls          int // answered, of which the backend answered
	}{
		{"GET", "/api/v1/orders", "ListOrders", 3, 3},
		{"GET", "/api/v1/orders/o-%d", "order:created", 3, 3},
		{"GET", "/api/v1/orders/tickets/t-%d", "GetTicket", 3, 1}, // an ended ticket: then from the edge
		{"POST", "/api/v1/orders/o-%d/cancel", "order:cancelled", 2, 2},
		{"POST", "/api/v1/orders/o-%d/pay", "order:paid", 2, 2},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			user := int64(100 + i)
			path := pathOf(tt.path, user)
			before := f.backend.n(tt.backend)
			ok := 0
			for n := range 6 {
				r := f.do(t, tt.method, path, tok(t, user), "")
				switch r.status {
				case http.StatusOK:
					ok++
				case http.StatusTooManyRequests:
					if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
						t.Fatalf("request %d: got 429 with Retry-After %q, want whole seconds of at least 1", n, r.header.Get("Retry-After"))
					}
				default:
					t.Fatalf("request %d: got %d %v", n, r.status, r.body)
				}
			}
			if ok != tt.burst {
				t.Fatalf("got %d of 6 answered, want %d (the bucket's burst)", ok, tt.burst)
			}
			if got := f.backend.n(tt.backend) - before; got != tt.calls {
				t.Fatalf("got %d backend calls, want %d: a refused request must not reach it", got, tt.calls)
			}
			other := user + 1000
			if r := f.do(t, tt.method, pathOf(tt.path, other), tok(t, other), ""); r.status != http.StatusOK {
				t.Fatalf("another shopper: got %d %v, want 200", r.status, r.body)
			}
		})
	}
	// Cancel and pay share the bucket of placing orders.
	user := int64(300)
	for range 2 {
		f.do(t, "POST", fmt.Sprintf("/api/v1/orders/o-%d/cancel", user), tok(t, user), "")
	}
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, user), order); r.status != http.StatusTooManyRequests {
		t.Fatalf("an order after two cancels: got %d %v, want 429 (one bucket of changes)", r.status, r.body)
	}
}

// pathOf puts user in a path with a %d.
func pathOf(path string, user int64) string {
	if strings.Contains(path, "%d") {
		return fmt.Sprintf(path, user)
	}
	return path
}

// TestReadFloodDoesNotStarveOrders: reads take their own global bucket, so an
// anonymous read flood that empties it leaves the orders' bucket alone.
func TestReadFloodDoesNotStarveOrders(t *testing.T) {
	f := start(t, ratelimit.Limits{Global: ratelimit.Rule{RPS: 0.001, Burst: 2}, Read: ratelimit.Rule{RPS: 0.001, Burst: 5}})
	refused := 0
	for range 20 {
		r := f.do(t, "GET", "/api/v1/activities/7", "", "")
		if r.status == http.StatusTooManyRequests {
			refused++
			if msg, _ := r.body["message"].(string); !strings.Contains(msg, "read") {
				t.Fatalf("got 429 %q, want the read limit named", msg)
			}
		}
	}
	if refused != 15 {
		t.Fatalf("got %d of 20 reads refused, want 15 (read burst 5)", refused)
	}
	for n := range 2 {
		if r := f.do(t, "POST", "/api/v1/orders", tok(t, int64(5+n)), order); r.status != http.StatusAccepted {
			t.Fatalf("order %d after the read flood: got %d %v, want 202", n, r.status, r.body)
		}
	}
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 9), order); r.status != http.StatusTooManyRequests {
		t.Fatalf("third order: got %d, want 429 (global burst 2)", r.status)
	}
}

// TestShopperLimitsAcrossTheFleet: two gateways sharing Redis (the fleet's shared
// limiter) hold one shopper to one bucket of reads and one of changes, wherever
// the load balancer sends each request.
func TestShopperLimitsAcrossTheFleet(t *testing.T) {
	rdb := testenv.Redis(t)
	shared := redis.NewSharedLimiter(rdb, "test-"+testenv.ID())
	limits := func(c *gateway.Config) {
		c.Limits = ratelimit.Limits{User: ratelimit.Rule{RPS: 0.001, Burst: 2}, UserRead: ratelimit.Rule{RPS: 0.001, Burst: 3}}
	}
	withShared := func(d *gateway.Deps) { d.SharedLimits = shared }
	gws := []*fixture{startGatewayDeps(t, withShared, limits), startGatewayDeps(t, withShared, limits)}
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/orders/tickets/t-%d", 3},
		{"POST", "/api/v1/orders/o-%d/pay", 2},
	} {
		user := time.Now().UnixNano() % 1_000_000_000
		ok := 0
		for n := range 8 {
			if r := gws[n%2].do(t, tt.method, fmt.Sprintf(tt.path, user), tok(t, user), ""); r.status == http.StatusOK {
				ok++
			}
		}
		if ok != tt.want {
			t.Fatalf("%s %s over two gateways: got %d of 8 answered, want %d (one bucket for the fleet)", tt.method, tt.path, ok, tt.want)
		}
	}
}

// TestTicketLongPoll: ?wait= holds a poll of a pending ticket until the ticket ends
// (then answers at once) or the wait is over (then answers pending), asking the
// backend a few times a second rather than as often as a client could; waits are
// bounded and malformed ones refused.
func TestTicketLongPoll(t *testing.T) {
	f := startGateway(t)
	const user = 9
	f.backend.setPending("t-9", true)
	time.AfterFunc(300*time.Millisecond, func() { f.backend.setPending("t-9", false) })
	start := time.Now()
	r := f.do(t, "GET", "/api/v1/orders/tickets/t-9?wait=5s", tok(t, user), "")
	if took := time.Since(start); r.status != http.StatusOK || r.body["status"] != "created" || took < 300*time.Millisecond || took >= 5*time.Second {
		t.Fatalf("wait for a ticket that ends after 300ms: got %d %v after %s, want 200 created after it ended, before the wait was over", r.status, r.body, took)
	}

	f.backend.setPending("t-10", true)
	before := f.backend.n("GetTicket")
	start = time.Now()
	r = f.do(t, "GET", "/api/v1/orders/tickets/t-10?wait=1", tok(t, 10), "")
	if took := time.Since(start); r.status != http.StatusOK || r.body["status"] != "pending" || took < time.Second {
		t.Fatalf("wait 1s for a ticket that stays pending: got %d %v after %s, want 200 pending after 1s", r.status, r.body, took)
	}
	if calls := f.backend.n("GetTicket") - before; calls < 2 || calls > 12 {
		t.Fatalf("got %d backend calls in a 1s wait, want a few (the gateway backs off to 4 a second)", calls)
	}
	// Each call hands the backend what is left of the wait, so a backend that knows
	// wait_ms waits itself, in one call.
	n := f.backend.n("GetTicket") - before
	f.backend.mu.Lock()
	waits := slices.Clone(f.backend.waits[len(f.backend.waits)-n:])
	f.backend.mu.Unlock()
	if waits[0] < 900 || waits[0] > 1000 || !isDescending(waits) {
		t.Fatalf("wait_ms of the calls of a 1s wait: %v, want what was left of it each time, from about 1000 down", waits)
	}

	for _, w := range []string{"11s", "1m", "-1s", "soon", "1e3", "99999999999"} {
		r := f.do(t, "GET", "/api/v1/orders/tickets/t-10?wait="+w, tok(t, 10), "")
		if code, _ := r.body["error"].(string); r.status != http.StatusBadRequest || code != "bad_request" {
			t.Errorf("wait=%s: got %d %v, want 400 bad_request", w, r.status, r.body)
		}
	}
	before = f.backend.n("GetTicket")
	if r := f.do(t, "GET", "/api/v1/orders/tickets/t-10?wait=0", tok(t, 10), ""); r.status != http.StatusOK || r.body["status"] != "pending" {
		t.Fatalf("wait=0: got %d %v, want 200 pending", r.status, r.body)
	}
	if calls := f.backend.n("GetTicket") - before; calls != 1 {
		t.Fatalf("wait=0: got %d backend calls, want 1 (no waiting)", calls)
	}
}

// TestWaitQueryStrict: the order and ticket routes take one query parameter, wait; a
// malformed, repeated or unknown one is 400 whether or not the activity has a waiting
// room, and the order is not placed.
func TestWaitQueryStrict(t *testing.T) {
	f := startGateway(t)
	f.backend.setPending("t-12", true)
	for _, q := range []string{"?wait=abc", "?wait=1s&wait=2s", "?foo=bar", "?wait=1s&foo=", "?wait=11s"} {
		before := f.backend.n("PlaceOrder")
		r := f.do(t, "POST", "/api/v1/orders"+q, tok(t, 12), order)
		if r.status != http.StatusBadRequest || r.body["error"] != "bad_request" {
			t.Errorf("POST /api/v1/orders%s: got %d %v, want 400 bad_request", q, r.status, r.body)
		}
		if n := f.backend.n("PlaceOrder") - before; n != 0 {
			t.Errorf("POST /api/v1/orders%s: the order reached the backend", q)
		}
		if r := f.do(t, "GET", "/api/v1/orders/tickets/t-12"+q, tok(t, 12), ""); r.status != http.StatusBadRequest {
			t.Errorf("GET ticket%s: got %d %v, want 400", q, r.status, r.body)
		}
	}
	if r := f.do(t, "POST", "/api/v1/orders?wait=2s", tok(t, 12), order); r.status != http.StatusAccepted {
		t.Fatalf("an order with a wait, no waiting room: got %d %v, want 202 (the wait has nothing to do)", r.status, r.body)
	}
}

// TestTicketLongPollHangUp: a shopper who hangs up ticket waits is let go within a
// look at the connection (half a second): the gateway stops asking the backend for
// them, and the shopper's share of waits is free again.
func TestTicketLongPollHangUp(t *testing.T) {
	f := startGateway(t)
	const user = 11
	f.backend.setPending("t-11", true)
	bearer := "Bearer " + tok(t, user)
	hang, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	for range 2 { // the shopper's whole share of waits
		go func() {
			req, _ := http.NewRequestWithContext(hang, "GET", f.url+"/api/v1/orders/tickets/t-11?wait=8s", nil)
			req.Header.Set("Authorization", bearer)
			r, err := http.DefaultClient.Do(req)
			if err == nil {
				r.Body.Close()
			}
			done <- err
		}()
	}
	time.Sleep(300 * time.Millisecond)
	cancel() // net/http closes a cancelled request's connection
	for range 2 {
		if err := <-done; err == nil {
			t.Fatal("a hung-up wait was answered, want the client's cancellation")
		}
	}
	time.Sleep(1200 * time.Millisecond) // two looks at the connections
	before := f.backend.n("GetTicket")
	time.Sleep(800 * time.Millisecond)
	if n := f.backend.n("GetTicket") - before; n != 0 {
		t.Fatalf("the gateway asked the backend %d times in 800ms for waits hung up 2s ago, want none", n)
	}
	start := time.Now()
	r := f.do(t, "GET", "/api/v1/orders/tickets/t-11?wait=1s", tok(t, user), "")
	if took := time.Since(start); r.status != http.StatusOK || r.body["status"] != "pending" || took < time.Second {
		t.Fatalf("a wait after hanging up two: got %d %v after %s, want held (pending after 1s): the share is free again", r.status, r.body, took)
	}
}

// isDescending reports whether each of xs is at most the one before.
func isDescending(xs []int64) bool {
	for i := 1; i < len(xs); i++ {
		if xs[i] > xs[i-1] {
			return false
		}
	}
	return true
}
