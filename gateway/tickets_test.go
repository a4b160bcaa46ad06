package gateway_test

import (
	"net/http"
	"testing"

	"github.com/seckill/flashsale/gateway/ratelimit"
)

// TestEndedTicketsAnsweredAtTheEdge: repeated polls of an ended ticket reach the
// backend once, with or without ?wait=; another shopper's poll of it still goes to
// the backend and is refused 404 as before; a pending ticket is asked every time,
// and is kept only once it ends.
func TestEndedTicketsAnsweredAtTheEdge(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	calls := f.backend.n("GetTicket")
	poll := func(path string, user int64, want int, wantStatus string) {
		t.Helper()
		r := f.do(t, "GET", path, tok(t, user), "")
		if r.status != want || wantStatus != "" && r.body["status"] != wantStatus {
			t.Fatalf("GET %s as user %d: got %d %v, want %d %s", path, user, r.status, r.body, want, wantStatus)
		}
	}
	backendCalls := func(what string, want int) {
		t.Helper()
		if got := f.backend.n("GetTicket") - calls; got != want {
			t.Fatalf("%s: got %d backend calls, want %d", what, got, want)
		}
		calls = f.backend.n("GetTicket")
	}

	for range 5 {
		poll("/api/v1/orders/tickets/t-21", 21, http.StatusOK, "created")
	}
	poll("/api/v1/orders/tickets/t-21?wait=2s", 21, http.StatusOK, "created")
	backendCalls("six polls of an ended ticket", 1)

	for range 2 {
		poll("/api/v1/orders/tickets/t-21", 22, http.StatusNotFound, "")
	}
	backendCalls("another shopper's polls", 2)

	f.backend.setPending("t-23", true)
	for range 3 {
		poll("/api/v1/orders/tickets/t-23", 23, http.StatusOK, "pending")
	}
	backendCalls("polls of a pending ticket", 3)
	f.backend.setPending("t-23", false)
	for range 3 {
		poll("/api/v1/orders/tickets/t-23", 23, http.StatusOK, "created")
	}
	backendCalls("polls of the ticket once ended", 1)
}
