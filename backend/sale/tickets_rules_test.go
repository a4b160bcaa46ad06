package sale_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
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

// TestRulesTicketPollsShareReads: shoppers polling their tickets at once share the
// ledger's reads (one call for the item's polls of the moment), and each learns only
// of its own ticket: pending while in flight, created once written, not_found for
// another shopper's.
func TestRulesTicketPollsShareReads(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	ledger := &slowReads{StockLedger: r.ledger}
	svc := r.service(t, ledger, r.pub)
	a := r.sale(t, domain.StrategyAsync, 100, 1, 1)
	const shoppers = 40
	tickets := make([]string, shoppers)
	for u := range shoppers {
		tickets[u] = mustBuy(t, svc, a, int64(u+1), 1, "").Ticket
	}
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
