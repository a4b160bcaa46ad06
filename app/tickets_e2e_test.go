package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/gateway/api"
)

// TestTicketLongPollWaitsAtTheBackend: on the real services, a long poll of a ticket
// no worker writes yet is held by the backend for the whole wait (longer than the
// RPC's own timeout and the server's read-write timeout) and answers pending; one
// begun before a worker starts answers created as soon as the worker wrote it.
func TestTicketLongPollWaitsAtTheBackend(t *testing.T) {
	ctx := context.Background()
	cfg, db := realConfig(t)
	s := start(t, cfg, app.Options{Roles: []app.Role{app.Gateway, app.Backend}}) // no worker yet
	s.db = db
	op := s.operator()
	now := time.Now().UTC()
	a, err := op.CreateActivity(ctx, api.CreateActivityRequest{Name: "long poll", Start: now.Add(-time.Minute).Format(time.RFC3339),
		End: now.Add(time.Hour).Format(time.RFC3339), Strategy: "async", PerUserLimit: 1, Items: []api.ItemSpec{{Name: "mug", PriceCents: 900, Stock: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Publish(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	shopper := s.shopper(t, 1)
	p, err := shopper.PlaceOrder(ctx, api.PlaceOrderRequest{ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}, "")
	if err != nil || p.Ticket == "" {
		t.Fatalf("order: got %+v, %v", p, err)
	}

	const wait = 6 * time.Second
	began := time.Now()
	tk, err := shopper.WaitTicket(ctx, p.Ticket, wait)
	if took := time.Since(began); err != nil || tk.Status != "pending" || took < wait || took > wait+3*time.Second {
		t.Fatalf("a %s wait with no worker: got %+v, %v after %s, want pending after the wait", wait, tk, err, took)
	}

	type answer struct {
		tk   *api.Ticket
		err  error
		took time.Duration
	}
	done := make(chan answer, 1)
	began = time.Now()
	go func() {
		tk, err := shopper.WaitTicket(ctx, p.Ticket, 10*time.Second)
		done <- answer{tk, err, time.Since(began)}
	}()
	time.Sleep(500 * time.Millisecond)
	start(t, cfg, app.Options{Roles: []app.Role{app.Worker}})
	got := <-done
	if got.err != nil || got.tk.Status != "created" || got.tk.OrderID == "" || got.took >= 10*time.Second {
		t.Fatalf("a wait begun before the worker started: got %+v, %v after %s, want created before the wait was over", got.tk, got.err, got.took)
	}
	t.Logf("created after %s of a 10 s wait", got.took.Round(time.Millisecond))
}
