package sale_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/sale"
)

// slowReads is a ledger whose ticket reads take a moment and are counted, so
// concurrent polls find one in progress and gather behind it.
type slowReads struct {
	domain.StockLedger
	calls atomic.Int32
}

func (l *slowReads) Ticket(ctx context.Context, userID int64, ticket string) (domain.Ticket, error) {
	l.calls.Add(1)
	time.Sleep(2 * time.Millisecond)
	return l.StockLedger.Ticket(ctx, userID, ticket)
}

func (l *slowReads) Tickets(ctx context.Context, q []domain.Ticket) ([]domain.Ticket, error) {
	l.calls.Add(1)
	time.Sleep(2 * time.Millisecond)
	return l.StockLedger.Tickets(ctx, q)
}

// pendingTickets opens an async sale of 100 units on a rig whose service reads
// tickets through slowReads, and buys one unit for each of users 1 to n: their
// tickets, in flight.
func pendingTickets(t *testing.T, n int) (*rig, *slowReads, *sale.Service, *domain.Activity, []string) {
	t.Helper()
	r := newRig(t)
	ledger := &slowReads{StockLedger: r.ledger}
	svc := r.service(t, ledger, r.pub)
	a := r.sale(t, domain.StrategyAsync, 100, 1, 1)
	tickets := make([]string, n)
	for u := range n {
		tickets[u] = mustBuy(t, svc, a, int64(u+1), 1, "").Ticket
	}
	return r, ledger, svc, a, tickets
}

// TestRulesTicketPollsShareReads: shoppers polling their tickets at once share the
// ledger's reads (one call for the item's polls of the moment), and each learns only
// of its own ticket: pending while in flight, created once written, not_found for
// another shopper's.
func TestRulesTicketPollsShareReads(t *testing.T) {
	ctx := context.Background()
	const shoppers = 40
	r, ledger, svc, _, tickets := pendingTickets(t, shoppers)
	poll := func(want domain.TicketStatus) {
		t.Helper()
		ledger.calls.Store(0)
		var wg sync.WaitGroup
		errs := make(chan string, 2*shoppers)
		for u := range shoppers {
			wg.Go(func() {
				user := int64(u + 1)
				got, err := svc.Ticket(ctx, user, tickets[u])
				if err != nil || got.ID != tickets[u] || got.UserID != user || got.Status != want || (want == domain.TicketCreated) != (got.OrderID > 0) {
					errs <- "own ticket: " + tickets[u] + " got " + string(got.Status) + " " + errString(err)
				}
				other := tickets[(u+1)%shoppers] // another shopper's
				if got, err := svc.Ticket(ctx, user, other); !domain.IsCode(err, domain.ENotFound) {
					errs <- "another's ticket " + other + ": got " + string(got.Status) + " " + errString(err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		if n := ledger.calls.Load(); n >= shoppers {
			t.Errorf("%d polls (and as many of others' tickets) at once: got %d ledger reads, want fewer than %d", shoppers, n, shoppers)
		}
	}
	poll(domain.TicketPending)
	r.deliver(t)
	poll(domain.TicketCreated)
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestRulesWaitTicket: a waited-on ticket is answered as soon as it ends (not after
// the wait), pending once the wait is over, at once when the caller goes away; the
// waiters of an item share the ledger's reads while they wait.
func TestRulesWaitTicket(t *testing.T) {
	const waiters = 20
	r, ledger, svc, a, tickets := pendingTickets(t, waiters)
	ledger.calls.Store(0)
	delivered := make(chan time.Time, 1)
	time.AfterFunc(300*time.Millisecond, func() {
		r.deliver(t)
		delivered <- time.Now()
	})
	start := time.Now()
	var wg sync.WaitGroup
	ended := make([]time.Time, waiters)
	for u := range waiters {
		wg.Go(func() {
			got, err := svc.WaitTicket(context.Background(), int64(u+1), tickets[u], 5*time.Second)
			ended[u] = time.Now()
			if err != nil || got.Status != domain.TicketCreated || got.OrderID <= 0 {
				t.Errorf("waiter %d: got %+v, %v, want created", u, got, err)
			}
		})
	}
	wg.Wait()
	at := <-delivered
	for u, e := range ended {
		if e.Before(at) || e.Sub(start) >= 5*time.Second {
			t.Errorf("waiter %d answered %s after the start, the tickets ended after %s: want after they ended, before the wait was over", u, e.Sub(start), at.Sub(start))
		}
	}
	// Each waiter looked at least at 0, 20, 40, 80 and 160 ms and once more after 300 ms:
	// about 6 looks each, 120 in all if each looked alone.
	if n := ledger.calls.Load(); n >= 6*waiters/2 {
		t.Errorf("%d waiters for about 300 ms: got %d ledger reads, want them shared (fewer than %d)", waiters, n, 6*waiters/2)
	}

	p := mustBuy(t, svc, a, 999, 1, "")
	start = time.Now()
	got, err := svc.WaitTicket(context.Background(), 999, p.Ticket, 200*time.Millisecond)
	if took := time.Since(start); err != nil || got.Status != domain.TicketPending || took < 200*time.Millisecond || took > 2*time.Second {
		t.Fatalf("a wait of 200 ms on a ticket that stays pending: got %+v, %v after %s", got, err, took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	got, err = svc.WaitTicket(ctx, 999, p.Ticket, 5*time.Second)
	if took := time.Since(start); err != nil || got.Status != domain.TicketPending || took > 2*time.Second {
		t.Fatalf("a wait whose caller went away after 100 ms: got %+v, %v after %s", got, err, took)
	}
}
