package domaintest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// Ledger is a stock ledger under test with its clock.
type Ledger struct {
	domain.StockLedger
	Clock
}

// ledgerFixture is one item of fresh ids in a ledger under test.
type ledgerFixture struct {
	Ledger
	a, i int64
	seq  atomic.Int64
}

func newLedgerFixture(l Ledger) *ledgerFixture {
	return &ledgerFixture{Ledger: l, a: nextID(), i: nextID()}
}

// sale is an item's sale state, open from an hour ago for two hours by the ledger's
// clock.
func (f *ledgerFixture) sale(limit int, stock ...int64) domain.SaleState {
	now := f.Now()
	return domain.SaleState{ActivityID: f.a, ItemID: f.i, State: domain.StatePublished, Start: now.Add(-time.Hour), End: now.Add(time.Hour),
		PerUserLimit: limit, BucketStock: stock}
}

func (f *ledgerFixture) warm(tb testing.TB, s domain.SaleState, overwrite bool) {
	tb.Helper()
	must(tb, f.Warm(context.Background(), s, overwrite))
}

// holds is the count of the item's reset holds ever taken, as a reconciler reads it.
func (f *ledgerFixture) holds(tb testing.TB) int64 {
	tb.Helper()
	return f.state(tb, 1).Holds
}

// epoch is the item's epoch in the ledger.
func (f *ledgerFixture) epoch(tb testing.TB) string {
	tb.Helper()
	e, err := f.Epoch(context.Background(), f.a, f.i)
	must(tb, err)
	return e
}

func (f *ledgerFixture) ticket() string {
	return domain.NewTicket(f.a, f.i, fmt.Sprintf("lt%d", f.seq.Add(1)))
}

// deduction asks for qty units for user over buckets buckets, home bucket 0.
func (f *ledgerFixture) deduction(user int64, qty int, key string, buckets int) domain.Deduction {
	return domain.Deduction{ActivityID: f.a, ItemID: f.i, UserID: user, Quantity: qty, IdempotencyKey: key, Ticket: f.ticket(), Buckets: buckets}
}

func (f *ledgerFixture) deduct(user int64, qty int, key string, buckets int) (domain.Deducted, error) {
	return f.Deduct(context.Background(), f.deduction(user, qty, key, buckets))
}

// admit deducts and fails unless the request is admitted anew.
func (f *ledgerFixture) admit(tb testing.TB, d domain.Deduction) domain.Deducted {
	tb.Helper()
	got, err := f.Deduct(context.Background(), d)
	if err != nil || got.Replayed || got.Ticket != d.Ticket {
		tb.Fatalf("deduct %+v: got %+v, %v; want admitted", d, got, err)
	}
	return got
}

func (f *ledgerFixture) state(tb testing.TB, buckets int) domain.ItemState {
	tb.Helper()
	st, err := f.State(context.Background(), f.a, f.i, buckets)
	must(tb, err)
	return st
}

// wantStock fails unless the item's bucket counters are stock.
func (f *ledgerFixture) wantStock(tb testing.TB, what string, stock ...int64) {
	tb.Helper()
	if got := f.state(tb, len(stock)).BucketStock; !slices.Equal(got, stock) {
		tb.Fatalf("%s: got stock %v, want %v", what, got, stock)
	}
}

func (f *ledgerFixture) settle(tb testing.TB, t domain.Ticket, buckets int) bool {
	tb.Helper()
	ok, err := f.Settle(context.Background(), t, buckets)
	must(tb, err)
	return ok
}

func (f *ledgerFixture) wantTicket(tb testing.TB, what string, user int64, id string, want domain.Ticket) {
	tb.Helper()
	got, err := f.Ticket(context.Background(), user, id)
	must(tb, err)
	if got != want {
		tb.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

// TestStockLedger checks a domain.StockLedger against its contract. newFn returns the
// ledger to test, keeping ticket results for resultTTL.
func TestStockLedger(t *testing.T, newFn func(t *testing.T, resultTTL time.Duration) Ledger) {
	ctx := context.Background()
	fixture := func(t *testing.T) *ledgerFixture { return newLedgerFixture(newFn(t, time.Hour)) }
	testSaleVersions(t, fixture)

	t.Run("Deduct refusals", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(2, 5), true)
		for _, tt := range []struct {
			name  string
			user  int64
			qty   int
			want  string
			stock int64
		}{
			{"zero quantity", 1, 0, domain.EBadRequest, 5},
			{"negative quantity", 1, -1, domain.EBadRequest, 5},
			{"within the limit", 1, 2, "", 3},
			{"past the limit", 1, 1, domain.ELimitExceeded, 3},
			{"a quantity past the limit", 2, 3, domain.ELimitExceeded, 3},
			{"exactly the rest", 3, 2, "", 1},
			{"more than the rest", 4, 2, domain.EInsufficientStock, 1},
			{"the last unit", 4, 1, "", 0},
			{"sold out", 5, 1, domain.ESoldOut, 0},
			{"sold out and past the limit: the limit first", 1, 1, domain.ELimitExceeded, 0},
			{"sold out and a bad quantity: the quantity first", 1, 0, domain.EBadRequest, 0},
		} {
			got, err := f.deduct(tt.user, tt.qty, "", 1)
			wantCode(t, tt.name, err, tt.want)
			if err == nil && (got.Replayed || got.Bucket != 0 || got.Ticket == "") {
				t.Fatalf("%s: got %+v", tt.name, got)
			}
			f.wantStock(t, tt.name, tt.stock)
		}
		if st := f.state(t, 1); st.Tickets != 3 || st.InFlight != 5 {
			t.Fatalf("got %d tickets in flight holding %d units, want 3 holding 5", st.Tickets, st.InFlight)
		}
	})

	t.Run("the sale's state and window", func(t *testing.T) {
		f := fixture(t)
		now := f.Now()
		for _, tt := range []struct {
			name       string
			state      domain.State
			start, end time.Time
			qty        int
			want       string
		}{
			{"before the start", domain.StatePublished, now.Add(time.Hour), now.Add(2 * time.Hour), 1, domain.ENotStarted},
			{"after the end", domain.StatePublished, now.Add(-2 * time.Hour), now.Add(-time.Hour), 1, domain.EEnded},
			{"offline", domain.StateOffline, now.Add(-time.Hour), now.Add(time.Hour), 1, domain.ENotFound},
			{"draft", domain.StateDraft, now.Add(-time.Hour), now.Add(time.Hour), 1, domain.ENotFound},
			{"offline before the start: the state first", domain.StateOffline, now.Add(time.Hour), now.Add(2 * time.Hour), 1, domain.ENotFound},
			{"before the start with a bad quantity: the window first", domain.StatePublished, now.Add(time.Hour), now.Add(2 * time.Hour), 0, domain.ENotStarted},
			{"open", domain.StatePublished, now.Add(-time.Hour), now.Add(time.Hour), 1, ""},
		} {
			s := f.sale(5, 5)
			s.State, s.Start, s.End = tt.state, tt.start, tt.end
			f.warm(t, s, true)
			_, err := f.deduct(1, tt.qty, "", 1)
			wantCode(t, tt.name, err, tt.want)
		}
		// The window opens and closes on the ledger's clock.
		g := fixture(t)
		s := g.sale(5, 5)
		s.Start, s.End = g.Now().Add(200*time.Millisecond), g.Now().Add(600*time.Millisecond)
		g.warm(t, s, true)
		_, err := g.deduct(1, 1, "", 1)
		wantCode(t, "before the window opens", err, domain.ENotStarted)
		g.Sleep(300 * time.Millisecond)
		_, err = g.deduct(1, 1, "", 1)
		wantCode(t, "once it is open", err, "")
		g.Sleep(400 * time.Millisecond)
		_, err = g.deduct(1, 1, "", 1)
		wantCode(t, "once it closed", err, domain.EEnded)
	})

	t.Run("not loaded", func(t *testing.T) {
		f := fixture(t)
		if _, err := f.deduct(1, 1, "k", 1); !errors.Is(err, domain.ErrNotLoaded) {
			t.Fatalf("never warmed: got %v, want ErrNotLoaded", err)
		}
		if st := f.state(t, 2); st.Loaded || st.Available() != 0 || st.Tickets != 0 {
			t.Fatalf("never warmed: got %+v", st)
		}
		if n, loaded, err := f.Available(ctx, f.a, f.i, 2); err != nil || loaded || n != 0 {
			t.Fatalf("never warmed: got %d, %v, %v", n, loaded, err)
		}
		// Nothing done to an item not loaded makes it look loaded, or leaves a counter
		// that a later Warm would keep: the next Warm reads the order store whole.
		must(t, f.SetBuckets(ctx, f.a, f.i, 3))
		must(t, f.SetState(ctx, f.a, f.i, domain.StatePublished))
		if _, err := f.Adjust(ctx, f.a, f.i, 0, 4, ""); !errors.Is(err, domain.ErrNotLoaded) {
			t.Fatalf("Adjust: got %v, want ErrNotLoaded", err)
		}
		if n, err := f.Take(ctx, f.a, f.i, 0, 4, 0); err != nil || n != 0 {
			t.Fatalf("Take: got %d, %v; want 0", n, err)
		}
		if ok, err := f.Reset(ctx, f.a, f.i, 0, 0, 4, 0, f.holds(t), -1, nil); err != nil || ok {
			t.Fatalf("Reset: got %v, %v; want false", ok, err)
		}
		// A release waits for the next load, which lists the order as released: the
		// order store it read had the units back.
		ended := domain.Order{Ticket: f.ticket(), UserID: 1, ActivityID: f.a, ItemID: f.i, Quantity: 2}
		if ok, err := f.Release(ctx, ended); err != nil || ok {
			t.Fatalf("Release: got %v, %v; want false", ok, err)
		}
		if _, err := f.deduct(1, 1, "k", 1); !errors.Is(err, domain.ErrNotLoaded) {
			t.Fatalf("after them: got %v, want ErrNotLoaded", err)
		}
		if st := f.state(t, 2); st.Loaded || st.Available() != 0 {
			t.Fatalf("after them: got %+v, want not loaded, nothing", st)
		}
		s := f.sale(1, 10)
		s.Released = []string{ended.Ticket}
		f.warm(t, s, false)
		f.wantStock(t, "warmed afterwards", 10)
	})

	t.Run("a release pending when the item was not loaded", func(t *testing.T) {
		// The order's end committed after the load read the order store, and its
		// release reached the ledger before the load did: the load gives it back.
		f := fixture(t)
		o := domain.Order{Ticket: f.ticket(), UserID: 5, ActivityID: f.a, ItemID: f.i, Bucket: 1, Quantity: 2, Status: domain.OrderCancelled}
		if ok, err := f.Release(ctx, o); err != nil || ok {
			t.Fatalf("Release: got %v, %v; want false", ok, err)
		}
		s := f.sale(2, 3, 4)
		s.Buyers = map[int64]int64{5: 2} // read before the end: the order's 2 units held
		f.warm(t, s, false)
		f.wantStock(t, "loaded with the release", 3, 6)
		if ok, err := f.Release(ctx, o); err != nil || ok {
			t.Fatalf("Release again: got %v, %v; want false", ok, err)
		}
		f.wantStock(t, "released once", 3, 6)
		f.admit(t, f.deduction(5, 2, "", 2)) // the buyer's units came back
		_, err := f.deduct(5, 1, "", 2)
		wantCode(t, "past the limit", err, domain.ELimitExceeded)
		// Another warm does not give it again.
		f.warm(t, f.sale(2, 3, 4), false)
		f.wantStock(t, "after another warm", 1, 6)
	})

	t.Run("buckets: home first, then the next that holds the whole quantity", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(100, 1, 0, 3, 2), true)
		for _, tt := range []struct {
			name  string
			home  int
			qty   int
			want  int
			err   string
			stock []int64
		}{
			{"home holds it", 2, 2, 2, "", []int64{1, 0, 1, 2}},
			{"home is short: the next", 2, 2, 3, "", []int64{1, 0, 1, 0}},
			{"around the end", 3, 1, 0, "", []int64{0, 0, 1, 0}},
			{"a home past the count wraps", 6, 1, 2, "", []int64{0, 0, 0, 0}},
		} {
			d := f.deduction(1, tt.qty, "", 4)
			d.HomeBucket = tt.home
			got, err := f.Deduct(ctx, d)
			wantCode(t, tt.name, err, tt.err)
			if got.Bucket != tt.want {
				t.Fatalf("%s: got bucket %d, want %d", tt.name, got.Bucket, tt.want)
			}
			f.wantStock(t, tt.name, tt.stock...)
		}
		// No bucket holds the quantity: it is taken from several, home first.
		g := fixture(t)
		g.warm(t, g.sale(100, 1, 2, 0, 1), true)
		d := g.deduction(1, 3, "", 4)
		d.HomeBucket = 1
		got := g.admit(t, d)
		if want := []domain.Part{{Bucket: 1, Quantity: 2}, {Bucket: 3, Quantity: 1}}; got.Bucket != 1 || !slices.Equal(got.Parts, want) {
			t.Fatalf("spread: got %+v, want parts %v", got, want)
		}
		g.wantStock(t, "after the spread order", 1, 0, 0, 0)
		if st := g.state(t, 4); !slices.Equal(st.InFlightBy, []int64{0, 2, 0, 1}) || st.InFlight != 3 {
			t.Fatalf("in flight: got %+v, want 2 units in bucket 1 and 1 in bucket 3", st)
		}
		_, err := g.deduct(2, 2, "", 4)
		wantCode(t, "fewer than asked, some left", err, domain.EInsufficientStock)
		g.wantStock(t, "nothing taken", 1, 0, 0, 0)
		// Its failure gives each part back.
		must2(t, g.settle(t, domain.Ticket{ID: got.Ticket, UserID: 1, Status: domain.TicketFailed, Reason: "write_failed"}, 4), "settle")
		g.wantStock(t, "given back", 1, 2, 0, 1)
		// Only the buckets the request names are looked at.
		h := fixture(t)
		h.warm(t, h.sale(100, 0, 1, 1), true)
		e := h.deduction(1, 1, "", 1)
		e.HomeBucket = 2
		_, err = h.Deduct(ctx, e)
		wantCode(t, "one bucket named, empty", err, domain.ESoldOut)
		h.wantStock(t, "after", 0, 1, 1)
	})

	t.Run("idempotency keys", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(2, 10), true)
		first := f.admit(t, f.deduction(9, 1, "key", 1))
		for n := 0; n < 2; n++ {
			again, err := f.deduct(9, 1, "key", 1)
			if err != nil || !again.Replayed || again.Ticket != first.Ticket {
				t.Fatalf("replay %d: got %+v, %v; want the first ticket", n, again, err)
			}
		}
		f.wantStock(t, "replays take nothing", 9)
		// A replay is answered whatever else changed: quantity, state, window.
		again, err := f.deduct(9, 5, "key", 1)
		if err != nil || !again.Replayed || again.Ticket != first.Ticket {
			t.Fatalf("replay with another quantity: got %+v, %v", again, err)
		}
		must(t, f.SetState(ctx, f.a, f.i, domain.StateOffline))
		if again, err = f.deduct(9, 1, "key", 1); err != nil || again.Ticket != first.Ticket {
			t.Fatalf("replay offline: got %+v, %v", again, err)
		}
		// KeyTicket finds the admission without taking part in the sale (offline too).
		if tk, ok, err := f.KeyTicket(ctx, f.a, f.i, 9, "key"); err != nil || !ok || tk != first.Ticket {
			t.Fatalf("KeyTicket: got %q, %v, %v; want %s", tk, ok, err, first.Ticket)
		}
		must(t, f.SetState(ctx, f.a, f.i, domain.StatePublished))
		for _, q := range []struct {
			user int64
			key  string
		}{{8, "key"}, {9, "other"}, {9, ""}} {
			if tk, ok, err := f.KeyTicket(ctx, f.a, f.i, q.user, q.key); err != nil || ok {
				t.Fatalf("KeyTicket of user %d key %q: got %q, %v, %v; want none", q.user, q.key, tk, ok, err)
			}
		}
		other := f.admit(t, f.deduction(8, 1, "key", 1))
		if other.Ticket == first.Ticket {
			t.Fatal("another user's key is another key")
		}
		// A failed request gives its key back; a created one keeps it.
		must2(t, f.settle(t, domain.Ticket{ID: first.Ticket, UserID: 9, Status: domain.TicketFailed, Reason: "write_failed"}, 1), "settle failed")
		retry := f.admit(t, f.deduction(9, 1, "key", 1))
		must2(t, f.settle(t, domain.Ticket{ID: retry.Ticket, UserID: 9, Status: domain.TicketCreated, OrderID: 4}, 1), "settle created")
		if again, err = f.deduct(9, 1, "key", 1); err != nil || !again.Replayed || again.Ticket != retry.Ticket {
			t.Fatalf("replay after created: got %+v, %v; want %s", again, err, retry.Ticket)
		}
		f.wantStock(t, "after", 8)
	})

	t.Run("Settle created", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(1, 5), true)
		d := f.admit(t, f.deduction(3, 1, "k", 1))
		f.wantTicket(t, "in flight", 3, d.Ticket, domain.Ticket{ID: d.Ticket, UserID: 3, Status: domain.TicketPending})
		created := domain.Ticket{ID: d.Ticket, UserID: 3, Status: domain.TicketCreated, OrderID: 42}
		must2(t, f.settle(t, created, 1), "settle")
		f.wantTicket(t, "settled", 3, d.Ticket, created)
		f.wantStock(t, "the units stay sold", 4)
		if st := f.state(t, 1); st.Tickets != 0 || st.InFlight != 0 {
			t.Fatalf("got %+v, want nothing in flight", st)
		}
		_, err := f.deduct(3, 1, "", 1)
		wantCode(t, "the buyer keeps the units", err, domain.ELimitExceeded)
		for _, later := range []domain.Ticket{created, {ID: d.Ticket, UserID: 3, Status: domain.TicketFailed, Reason: "stale"}} {
			if f.settle(t, later, 1) {
				t.Fatalf("settle %+v again: got true, want false", later)
			}
		}
		f.wantTicket(t, "settled again", 3, d.Ticket, created)
		f.wantStock(t, "after settling again", 4)
	})

	t.Run("Settle failed gives stock, units and key back", func(t *testing.T) {
		for _, tt := range []struct {
			reason string
			stock  []int64
		}{
			{"write_failed", []int64{5, 5}},
			// The order store had fewer units than the ledger counted: the units
			// were never there, so they do not come back.
			{domain.ESoldOut, []int64{5, 3}},
		} {
			t.Run(tt.reason, func(t *testing.T) {
				f := fixture(t)
				f.warm(t, f.sale(2, 5, 5), true)
				d := f.deduction(3, 2, "k", 2)
				d.HomeBucket = 1
				got := f.admit(t, d)
				failed := domain.Ticket{ID: got.Ticket, UserID: 3, Status: domain.TicketFailed, Reason: tt.reason}
				must2(t, f.settle(t, failed, 2), "settle")
				f.wantTicket(t, "settled", 3, got.Ticket, failed)
				f.wantStock(t, "after", tt.stock...)
				if st := f.state(t, 2); st.Tickets != 0 {
					t.Fatalf("got %+v, want nothing in flight", st)
				}
				again := f.admit(t, f.deduction(3, 2, "k", 2)) // units and key back
				if again.Ticket == got.Ticket {
					t.Fatal("a retry with the key got the failed ticket")
				}
				if f.settle(t, failed, 2) {
					t.Fatal("settle again: got true, want false")
				}
			})
		}
	})

	t.Run("Settle of a ticket not in flight records a result once", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(1, 5), true)
		id := f.ticket()
		first := domain.Ticket{ID: id, UserID: 6, Status: domain.TicketFailed, Reason: "stale"}
		if f.settle(t, first, 1) {
			t.Fatal("got true, want false")
		}
		f.wantTicket(t, "recorded", 6, id, first)
		if f.settle(t, domain.Ticket{ID: id, UserID: 6, Status: domain.TicketCreated, OrderID: 9}, 1) {
			t.Fatal("again: got true, want false")
		}
		f.wantTicket(t, "kept", 6, id, first)
		f.wantStock(t, "nothing given back", 5)
		_, err := f.Settle(ctx, domain.Ticket{ID: "not-a-ticket", UserID: 6, Status: domain.TicketCreated}, 1)
		wantCode(t, "a malformed ticket", err, domain.ENotFound)
	})

	t.Run("Settle created of a ticket the ledger lost takes what its caller wrote", func(t *testing.T) {
		// The ledger lost the ticket with its state and loaded the item since, and the
		// load's view did not hold the order: it counted its units as unsold.
		f := fixture(t)
		seen := f.ticket()
		fs := f.sale(3, 5, 1)
		fs.Recent, fs.RecentSince = []string{seen}, f.Now().Add(-domain.RecentWindow)
		f.warm(t, fs, true)
		id := f.ticket()
		w := &domain.OrderRequest{Ticket: id, UserID: 7, ActivityID: f.a, ItemID: f.i, Bucket: 1,
			Parts: []domain.Part{{Bucket: 1, Quantity: 2}, {Bucket: 0, Quantity: 1}}, Quantity: 3, IdemKey: "w"}
		created := domain.Ticket{ID: id, UserID: 7, Status: domain.TicketCreated, OrderID: 11, Wrote: w}
		// Orders the load counted: one its view held (among the recent), one created
		// before the recent ones (committed before the view), one created at a time
		// not known; nothing is taken (each a ticket of its own: a ticket's first
		// result is the one it keeps).
		for i, c := range []struct {
			ticket string
			at     time.Time
		}{{seen, f.Now()}, {f.ticket(), f.Now().Add(-domain.RecentWindow - time.Second)}, {f.ticket(), time.Time{}}} {
			cw := *w
			cw.Ticket, cw.UserID, cw.IdemKey = c.ticket, int64(17+i), ""
			if f.settle(t, domain.Ticket{ID: c.ticket, UserID: cw.UserID, Status: domain.TicketCreated, OrderID: int64(21 + i), Wrote: &cw, WrittenAt: c.at}, 2) {
				t.Fatal("settle of a ticket not in flight: got true, want false")
			}
			f.wantStock(t, fmt.Sprintf("counted by the load (%d)", i), 5, 1)
		}
		created.WrittenAt = f.Now() // not in the load's view
		if f.settle(t, created, 2) {
			t.Fatal("settle of a ticket not in flight: got true, want false")
		}
		created.Wrote, created.WrittenAt = nil, time.Time{}
		f.wantTicket(t, "recorded", 7, id, created)
		// Its buckets first, as many as they hold, then any other.
		f.wantStock(t, "taken", 3, 0)
		_, err := f.deduct(7, 1, "", 2)
		wantCode(t, "the buyer holds the order's units", err, domain.ELimitExceeded)
		if got, err := f.deduct(7, 1, "w", 2); err != nil || !got.Replayed || got.Ticket != id {
			t.Fatalf("a retry with the order's key: got %+v, %v; want ticket %s replayed", got, err, id)
		}
		created.Wrote, created.WrittenAt = w, f.Now()
		if f.settle(t, created, 2) {
			t.Fatal("settle again: got true, want false")
		}
		f.wantStock(t, "taken once", 3, 0)

		// A ticket in flight is settled as always: its units were taken when admitted,
		// and the buyer keeps them and the key.
		d := f.admit(t, f.deduction(8, 3, "k8", 2))
		inflight := domain.Ticket{ID: d.Ticket, UserID: 8, Status: domain.TicketCreated, OrderID: 12,
			Wrote: &domain.OrderRequest{Ticket: d.Ticket, UserID: 8, ActivityID: f.a, ItemID: f.i, Quantity: 3, IdemKey: "k8"}}
		must2(t, f.settle(t, inflight, 2), "settle in flight")
		f.wantStock(t, "taken when admitted only", 0, 0)
		_, err = f.deduct(8, 1, "", 2)
		wantCode(t, "the buyer in flight keeps the units", err, domain.ELimitExceeded)
		if got, err := f.deduct(8, 1, "k8", 2); err != nil || !got.Replayed || got.Ticket != d.Ticket {
			t.Fatalf("a retry with the key of the order settled in flight: got %+v, %v; want ticket %s replayed", got, err, d.Ticket)
		}

		// Written by an earlier delivery (a duplicate): taken only if created among
		// the load's recent orders and not in its view; a part past the buckets
		// passed too.
		h := fixture(t)
		hs := h.sale(5, 4, 4, 4)
		hs.RecentSince = h.Now().Add(-domain.RecentWindow)
		h.warm(t, hs, true)
		dup := func(user int64, at time.Time) domain.Ticket {
			id := h.ticket()
			return domain.Ticket{ID: id, UserID: user, Status: domain.TicketCreated, OrderID: 20 + user, WrittenAt: at,
				Wrote: &domain.OrderRequest{Ticket: id, UserID: user, ActivityID: h.a, ItemID: h.i, Bucket: 2, Quantity: 1}}
		}
		h.settle(t, dup(1, h.Now().Add(-time.Hour)), 1)
		h.wantStock(t, "written long before the load", 4, 4, 4)
		h.settle(t, dup(2, h.Now()), 1)
		h.wantStock(t, "written after the load, in a bucket past those passed", 4, 4, 3)
		// Admitted after the load: it was in flight until settled, and its result
		// expired; the load did not count it, and its units were taken when admitted.
		late := dup(3, h.Now())
		late.Wrote.AdmittedAt = h.Now().Add(time.Minute).UnixMilli()
		h.settle(t, late, 3)
		h.wantStock(t, "admitted after the load", 4, 4, 3)

		// Not loaded: the take waits for the next load, which takes it unless its view
		// of the order store holds the order (Counted).
		g := fixture(t)
		lost := func(user int64) domain.Ticket {
			id := g.ticket()
			return domain.Ticket{ID: id, UserID: user, Status: domain.TicketCreated, OrderID: 30 + user,
				Wrote: &domain.OrderRequest{Ticket: id, UserID: user, ActivityID: g.a, ItemID: g.i, Quantity: 2, IdemKey: "p"}}
		}
		held, after, late := lost(1), lost(2), lost(3)
		g.settle(t, held, 1)
		g.settle(t, after, 1)
		g.settle(t, late, 1) // as if after the load read the pending takes
		if st := g.state(t, 1); st.Loaded || st.Available() != 0 {
			t.Fatalf("not loaded: got %+v, want nothing taken or loaded", st)
		}
		pending, err := g.PendingTakes(ctx, g.a, g.i)
		slices.Sort(pending)
		want := []string{held.ID, after.ID, late.ID}
		slices.Sort(want)
		if err != nil || !slices.Equal(pending, want) {
			t.Fatalf("pending takes: got %v, %v; want %v", pending, err, want)
		}
		s := g.sale(2, 10)
		s.Counted = []string{held.ID} // the view holds that order: its units are out of the 10
		// The view holds the late one too, among its recent orders: the take landed
		// after the load asked which pending takes its view holds.
		s.Recent, s.RecentSince = []string{late.ID}, g.Now().Add(-domain.RecentWindow)
		g.warm(t, s, true)
		g.wantStock(t, "the load took the order its view did not hold", 8)
		if got, err := g.deduct(2, 1, "p", 1); err != nil || !got.Replayed || got.Ticket != after.ID {
			t.Fatalf("a retry with the key of the order taken at the load: got %+v, %v; want ticket %s replayed", got, err, after.ID)
		}
		_, err = g.deduct(2, 1, "", 1)
		wantCode(t, "the buyer holds the order's units", err, domain.ELimitExceeded)
		if pending, err := g.PendingTakes(ctx, g.a, g.i); err != nil || len(pending) != 0 {
			t.Fatalf("pending takes after the load: got %v, %v; want none", pending, err)
		}
	})

	t.Run("Deduct of a ticket ended before takes nothing", func(t *testing.T) {
		// A caller's Deduct failed in doubt and it ended the ticket; the Deduct lands
		// after the end (the ledger ran the two in that order): it is refused.
		f := fixture(t)
		f.warm(t, f.sale(1, 5), true)
		d := f.deduction(3, 1, "k", 1)
		f.settle(t, domain.Ticket{ID: d.Ticket, UserID: 3, Status: domain.TicketFailed, Reason: "deduct_failed"}, 1)
		_, err := f.Deduct(ctx, d)
		wantCode(t, "a ticket ended before", err, domain.EConflict)
		f.wantStock(t, "nothing taken", 5)
		if st := f.state(t, 1); st.Tickets != 0 {
			t.Fatalf("got %+v, want nothing in flight", st)
		}
		f.admit(t, f.deduction(3, 1, "k", 1)) // the key and the buyer are free
	})

	t.Run("Settle failed with fewer buckets than the ticket's", func(t *testing.T) {
		// The bucket count was lowered after the ticket took from bucket 2: it is
		// settled whole all the same, its unit, buyer units and key back.
		f := fixture(t)
		f.warm(t, f.sale(1, 0, 0, 1), true)
		d := f.deduction(3, 1, "k", 3)
		got := f.admit(t, d)
		failed := domain.Ticket{ID: got.Ticket, UserID: 3, Status: domain.TicketFailed, Reason: "stale"}
		must2(t, f.settle(t, failed, 2), "settle")
		f.wantTicket(t, "after", 3, got.Ticket, failed)
		f.wantStock(t, "after", 0, 0, 1)
		if st := f.state(t, 3); st.Tickets != 0 {
			t.Fatalf("got %+v, want nothing in flight", st)
		}
		again := f.admit(t, f.deduction(3, 1, "k", 3))
		if again.Bucket != 2 {
			t.Fatalf("the key and the units: got %+v, want a new admission from bucket 2", again)
		}
	})

	t.Run("Settle created, replayed: units back, key kept", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(2, 5), true)
		got := f.admit(t, f.deduction(3, 2, "k", 1))
		replayed := domain.Ticket{ID: got.Ticket, UserID: 3, Status: domain.TicketCreated, OrderID: 77, Reason: domain.ReasonReplayed}
		must2(t, f.settle(t, replayed, 1), "settle")
		f.wantTicket(t, "after", 3, got.Ticket, replayed)
		f.wantStock(t, "the units back", 5)
		again, err := f.deduct(3, 1, "k", 1)
		if err != nil || !again.Replayed || again.Ticket != got.Ticket {
			t.Fatalf("the key: got %+v, %v; want a replay of %s", again, err, got.Ticket)
		}
		f.admit(t, f.deduction(3, 2, "", 1)) // the buyer's units came back
	})

	t.Run("Release gives an order's units back once", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(3, 4, 4), true)
		d := f.deduction(5, 3, "", 2)
		d.HomeBucket = 1
		got := f.admit(t, d)
		must2(t, f.settle(t, domain.Ticket{ID: got.Ticket, UserID: 5, Status: domain.TicketCreated, OrderID: 1}, 2), "settle")
		o := domain.Order{ID: 1, Ticket: got.Ticket, UserID: 5, ActivityID: f.a, ItemID: f.i, Bucket: 1, Quantity: 3, Status: domain.OrderCancelled}
		for n, want := range []bool{true, false, false} {
			ok, err := f.Release(ctx, o)
			if err != nil || ok != want {
				t.Fatalf("release %d: got %v, %v; want %v", n, ok, err, want)
			}
			f.wantStock(t, "after a release", 4, 4)
		}
		f.admit(t, f.deduction(5, 3, "", 2)) // the buyer's units came back
		// An order of several parts gives each back, to buckets past any count passed.
		g := fixture(t)
		g.warm(t, g.sale(5, 0, 0, 0), true)
		o = domain.Order{ID: 2, Ticket: g.ticket(), UserID: 5, ActivityID: g.a, ItemID: g.i, Bucket: 2, Quantity: 3,
			Parts: []domain.Part{{Bucket: 2, Quantity: 1}, {Bucket: 0, Quantity: 2}}, Status: domain.OrderCancelled}
		if ok, err := g.Release(ctx, o); err != nil || !ok {
			t.Fatalf("release of parts: got %v, %v", ok, err)
		}
		g.wantStock(t, "after a release of parts", 2, 0, 1)
	})

	t.Run("Ticket", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(1, 5), true)
		d := f.admit(t, f.deduction(3, 1, "", 1))
		for _, tt := range []struct {
			name   string
			user   int64
			ticket string
		}{
			{"someone else's", 4, d.Ticket},
			{"unknown", 3, f.ticket()},
			{"malformed", 3, "no-ticket"},
			{"of another item", 3, domain.NewTicket(f.a, f.i+1, "x")},
		} {
			_, err := f.Ticket(ctx, tt.user, tt.ticket)
			wantCode(t, tt.name, err, domain.ENotFound)
		}
		must2(t, f.settle(t, domain.Ticket{ID: d.Ticket, UserID: 3, Status: domain.TicketCreated, OrderID: 1}, 1), "settle")
		_, err := f.Ticket(ctx, 4, d.Ticket)
		wantCode(t, "someone else's result", err, domain.ENotFound)
	})

	t.Run("DeductBatch: each request as Deduct, seeing the ones before it", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(2, 3, 1), true)
		first := f.admit(t, f.deduction(9, 1, "seen", 2))
		ds := []domain.Deduction{
			f.deduction(1, 2, "", 2),     // bucket 0 holds 2 of its 3
			f.deduction(1, 1, "", 2),     // user 1 now holds the limit
			f.deduction(9, 1, "seen", 2), // a known key: its ticket, nothing taken
			f.deduction(2, 0, "", 2),     // bad quantity
			f.deduction(3, 2, "", 2),     // 0 in bucket 0, 1 in bucket 1: fewer than asked
			f.deduction(3, 1, "k3", 2),   // the last unit, from bucket 1
			f.deduction(4, 1, "", 2),     // nothing left
		}
		ds[5].HomeBucket = 1
		out, errs, err := f.DeductBatch(ctx, ds)
		must(t, err)
		if len(out) != len(ds) || len(errs) != len(ds) {
			t.Fatalf("got %d results and %d errors for %d requests", len(out), len(errs), len(ds))
		}
		for i, want := range []string{"", domain.ELimitExceeded, "", domain.EBadRequest, domain.EInsufficientStock, "", domain.ESoldOut} {
			wantCode(t, fmt.Sprintf("request %d", i), errs[i], want)
		}
		if out[0].Ticket != ds[0].Ticket || out[0].Bucket != 0 || out[0].Replayed {
			t.Fatalf("request 0: got %+v, want admitted from bucket 0", out[0])
		}
		if !out[2].Replayed || out[2].Ticket != first.Ticket {
			t.Fatalf("request 2: got %+v, want the replay of %s", out[2], first.Ticket)
		}
		if out[5].Ticket != ds[5].Ticket || out[5].Bucket != 1 {
			t.Fatalf("request 5: got %+v, want admitted from bucket 1", out[5])
		}
		f.wantStock(t, "after the batch", 0, 0)
		if st := f.state(t, 2); st.Tickets != 3 || st.InFlight != 4 {
			t.Fatalf("got %d tickets holding %d units in flight, want 3 holding 4", st.Tickets, st.InFlight)
		}
		// The batch's tickets are in flight like any: one settle gives its units back.
		must2(t, f.settle(t, domain.Ticket{ID: ds[5].Ticket, UserID: 3, Status: domain.TicketFailed, Reason: "x"}, 2), "settle")
		f.wantStock(t, "after a settle", 0, 1)
		g := fixture(t)
		_, errs, err = g.DeductBatch(ctx, []domain.Deduction{g.deduction(1, 1, "", 1), g.deduction(2, 1, "", 1)})
		must(t, err)
		for i, e := range errs {
			if !errors.Is(e, domain.ErrNotLoaded) {
				t.Fatalf("not loaded, request %d: got %v, want ErrNotLoaded", i, e)
			}
		}
	})

	t.Run("SettleBatch and Tickets: each ticket as Settle and Ticket", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(1, 10), true)
		var ds []domain.Deduction
		for u := int64(1); u <= 4; u++ {
			d := f.deduction(u, 1, fmt.Sprintf("k%d", u), 1)
			f.admit(t, d)
			ds = append(ds, d)
		}
		unknown := f.ticket()
		q := []domain.Ticket{{ID: ds[0].Ticket, UserID: 1}, {ID: ds[1].Ticket, UserID: 99}, {ID: unknown, UserID: 3}}
		got, err := f.Tickets(ctx, q)
		must(t, err)
		if got[0].Status != domain.TicketPending || got[1].Status != "" || got[2].Status != "" {
			t.Fatalf("in flight: got %+v, want pending, unknown (another user's), unknown", got)
		}
		done, err := f.SettleBatch(ctx, []domain.Ticket{
			{ID: ds[0].Ticket, UserID: 1, Status: domain.TicketCreated, OrderID: 11},
			{ID: ds[1].Ticket, UserID: 2, Status: domain.TicketFailed, Reason: "write_failed"},
			{ID: ds[2].Ticket, UserID: 3, Status: domain.TicketFailed, Reason: domain.ESoldOut},
			{ID: ds[0].Ticket, UserID: 1, Status: domain.TicketFailed, Reason: "late"}, // settled just before
			{ID: unknown, UserID: 3, Status: domain.TicketFailed, Reason: "stale"},
		}, 1)
		must(t, err)
		if !slices.Equal(done, []bool{true, true, true, false, false}) {
			t.Fatalf("got %v, want the three in flight settled once, the rest not", done)
		}
		// Created keeps its unit; failed gives it back; sold_out gives the buyer's units
		// and key back, not the unit.
		f.wantStock(t, "after the batch", 7)
		if st := f.state(t, 1); st.Tickets != 1 {
			t.Fatalf("got %d tickets in flight, want 1", st.Tickets)
		}
		got, err = f.Tickets(ctx, []domain.Ticket{{ID: ds[0].Ticket, UserID: 1}, {ID: ds[1].Ticket, UserID: 2}, {ID: ds[3].Ticket, UserID: 4}, {ID: unknown, UserID: 3}})
		must(t, err)
		want := []domain.Ticket{
			{ID: ds[0].Ticket, UserID: 1, Status: domain.TicketCreated, OrderID: 11},
			{ID: ds[1].Ticket, UserID: 2, Status: domain.TicketFailed, Reason: "write_failed"},
			{ID: ds[3].Ticket, UserID: 4, Status: domain.TicketPending},
			{ID: unknown, UserID: 3, Status: domain.TicketFailed, Reason: "stale"},
		}
		if !slices.Equal(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		// Users 2 and 3 got their keys back: the same key buys afresh.
		for u := int64(2); u <= 3; u++ {
			if d, err := f.deduct(u, 1, fmt.Sprintf("k%d", u), 1); err != nil || d.Replayed {
				t.Fatalf("user %d retries: got %+v, %v; want admitted anew", u, d, err)
			}
		}
	})

	t.Run("hammer: batches and lone requests never oversell", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(1, 40, 25), true)
		const users = 200
		var mu sync.Mutex
		admitted := map[string]bool{}
		codes := hammer(users/4, func(g int) string {
			ds := make([]domain.Deduction, 1+g%4)
			for k := range ds {
				ds[k] = f.deduction(int64(g*4+k+1), 1, "", 2)
				ds[k].HomeBucket = k % 2
			}
			out, errs, err := f.DeductBatch(ctx, ds)
			if err != nil {
				return "call: " + err.Error()
			}
			mu.Lock()
			defer mu.Unlock()
			for k := range ds {
				if errs[k] == nil {
					if admitted[out[k].Ticket] {
						return "admitted twice"
					}
					admitted[out[k].Ticket] = true
				} else if !domain.IsCode(errs[k], domain.ESoldOut) {
					return domain.ErrorCode(errs[k])
				}
			}
			return ""
		})
		if codes[""] != users/4 || len(admitted) != 65 {
			t.Fatalf("got %v and %d admitted, want every batch fine and 65 admitted", codes, len(admitted))
		}
		if st := f.state(t, 2); st.Available() != 0 || st.Tickets != 65 || st.InFlight != 65 {
			t.Fatalf("got %+v", st)
		}
	})

	t.Run("ticket results expire", func(t *testing.T) {
		f := newLedgerFixture(newFn(t, time.Second))
		f.warm(t, f.sale(1, 5), true)
		d := f.admit(t, f.deduction(3, 1, "", 1))
		created := domain.Ticket{ID: d.Ticket, UserID: 3, Status: domain.TicketCreated, OrderID: 1}
		must2(t, f.settle(t, created, 1), "settle")
		f.Sleep(500 * time.Millisecond)
		f.wantTicket(t, "within the TTL", 3, d.Ticket, created)
		f.Sleep(700 * time.Millisecond)
		_, err := f.Ticket(ctx, 3, d.Ticket)
		wantCode(t, "past the TTL", err, domain.ENotFound)
		// Expired, the result can be recorded anew.
		failed := domain.Ticket{ID: d.Ticket, UserID: 3, Status: domain.TicketFailed, Reason: "stale"}
		if f.settle(t, failed, 1) {
			t.Fatal("settle after expiry: got true, want false")
		}
		f.wantTicket(t, "recorded anew", 3, d.Ticket, failed)
	})

	t.Run("a result TTL under a second is a second", func(t *testing.T) {
		f := newLedgerFixture(newFn(t, 500*time.Millisecond))
		f.warm(t, f.sale(1, 5), true)
		d := f.admit(t, f.deduction(3, 1, "", 1))
		failed := domain.Ticket{ID: d.Ticket, UserID: 3, Status: domain.TicketFailed, Reason: "x"}
		must2(t, f.settle(t, failed, 1), "settle")
		f.wantTicket(t, "the ticket", 3, d.Ticket, failed)
		f.wantStock(t, "after", 5)
	})

	t.Run("a request over no buckets takes from bucket 0", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(1, 5), true)
		got, err := f.deduct(1, 1, "", 0)
		if err != nil || got.Bucket != 0 {
			t.Fatalf("no buckets: got %+v, %v; want bucket 0", got, err)
		}
		_, err = f.deduct(1, 2, "", 0)
		wantCode(t, "no buckets, past the limit", err, domain.ELimitExceeded)
	})

	t.Run("Warm", func(t *testing.T) {
		f := fixture(t)
		s := f.sale(2, 5, 5)
		s.Buyers = map[int64]int64{1: 2, 2: 1}
		f.warm(t, s, false)
		f.wantStock(t, "first warm", 5, 5)
		_, err := f.deduct(1, 1, "", 2)
		wantCode(t, "a buyer at the limit", err, domain.ELimitExceeded)
		f.admit(t, f.deduction(2, 1, "", 2))
		f.wantStock(t, "sold one", 4, 5)
		// Live counters and buyers stay; new buckets and buyers are added; the
		// window and limit are replaced.
		s = f.sale(3, 9, 9, 9)
		s.Buyers = map[int64]int64{1: 0, 2: 0, 3: 3}
		f.warm(t, s, false)
		f.wantStock(t, "warm without overwrite", 4, 5, 9)
		f.admit(t, f.deduction(1, 1, "", 3))
		_, err = f.deduct(3, 1, "", 3)
		wantCode(t, "a buyer added", err, domain.ELimitExceeded)
		f.warm(t, f.sale(3, 7, 7), true)
		f.wantStock(t, "warm with overwrite", 7, 7, 9)
		s = f.sale(3, 7)
		s.State = domain.StateOffline
		f.warm(t, s, true)
		_, err = f.deduct(4, 1, "", 1)
		wantCode(t, "warmed offline", err, domain.ENotFound)
		if st := f.state(t, 3); st.Tickets != 2 || st.InFlight != 2 {
			t.Fatalf("got %+v, want the 2 tickets still in flight", st)
		}
	})

	t.Run("Warm adds the orders' idempotency keys where missing", func(t *testing.T) {
		// The ledger lost its data; the restore brings back the keys of orders written
		// before, so retries with them replay, whatever the limit or the stock says.
		f := fixture(t)
		s := f.sale(1, 0)
		s.Buyers = map[int64]int64{1: 1}
		first := f.ticket()
		s.Keys = []domain.KeyTicket{{UserID: 1, Key: "k", Ticket: first}, {UserID: 2, Key: "k", Ticket: f.ticket()}}
		f.warm(t, s, false)
		got, err := f.deduct(1, 1, "k", 1)
		if err != nil || !got.Replayed || got.Ticket != first {
			t.Fatalf("a retry with the key: got %+v, %v; want ticket %s replayed", got, err, first)
		}
		_, err = f.deduct(1, 1, "other", 1)
		wantCode(t, "another key", err, domain.ELimitExceeded)
		// A live key keeps its ticket.
		f.warm(t, f.sale(5, 5), true)
		live := f.admit(t, f.deduction(3, 1, "j", 1))
		s = f.sale(5, 5)
		s.Keys = []domain.KeyTicket{{UserID: 3, Key: "j", Ticket: f.ticket()}}
		f.warm(t, s, false)
		if got, err := f.deduct(3, 1, "j", 1); err != nil || !got.Replayed || got.Ticket != live.Ticket {
			t.Fatalf("a live key: got %+v, %v; want ticket %s", got, err, live.Ticket)
		}
	})

	t.Run("Warm marks released the orders its stock holds back", func(t *testing.T) {
		// The ledger lost its data after an order's end committed; the restore read the
		// stock with its units back, so the order's release, landing later, adds nothing.
		f := fixture(t)
		o := domain.Order{ID: 1, Ticket: f.ticket(), UserID: 5, ActivityID: f.a, ItemID: f.i, Bucket: 1, Quantity: 2, Status: domain.OrderCancelled}
		s := f.sale(2, 3, 4)
		s.Buyers = map[int64]int64{5: 1} // what the user holds besides the ended order
		s.Released = []string{o.Ticket}
		f.warm(t, s, false)
		if ok, err := f.Release(ctx, o); err != nil || ok {
			t.Fatalf("a release after the restore: got %v, %v; want false", ok, err)
		}
		f.wantStock(t, "after the release", 3, 4)
		f.admit(t, f.deduction(5, 1, "", 2))
		_, err := f.deduct(5, 1, "", 2)
		wantCode(t, "past the limit", err, domain.ELimitExceeded)
		// A warm that keeps live counters marks nothing: they do not hold the units.
		g := fixture(t)
		g.warm(t, g.sale(2, 3, 4), false)
		o = domain.Order{ID: 2, Ticket: g.ticket(), UserID: 5, ActivityID: g.a, ItemID: g.i, Bucket: 1, Quantity: 2, Status: domain.OrderCancelled}
		s = g.sale(2, 3, 6)
		s.Released = []string{o.Ticket}
		g.warm(t, s, false)
		if ok, err := g.Release(ctx, o); err != nil || !ok {
			t.Fatalf("a release after a warm that kept the counters: got %v, %v; want true", ok, err)
		}
		g.wantStock(t, "after the release", 3, 6)
	})

	t.Run("Epoch: a load anew refuses the deltas read before it", func(t *testing.T) {
		f := fixture(t)
		if e := f.epoch(t); e != "" {
			t.Fatalf("not loaded: got epoch %q, want none", e)
		}
		f.warm(t, f.sale(2, 3, 4), false)
		first := f.epoch(t)
		if first == "" {
			t.Fatalf("loaded: got no epoch")
		}
		// A warm that keeps live counters is the same load.
		f.warm(t, f.sale(2, 3, 4, 5), false)
		if e := f.epoch(t); e != first {
			t.Fatalf("a warm that kept counters: got epoch %q, want %q", e, first)
		}
		if n, err := f.Adjust(ctx, f.a, f.i, 0, 2, first); err != nil || n != 5 {
			t.Fatalf("adjust under the epoch: got %d, %v; want 5", n, err)
		}
		// Lost and loaded anew: the new load has its own epoch, and a delta read under
		// the old one is refused, whatever its sign.
		g := fixture(t)
		g.warm(t, g.sale(2, 3), false)
		old := g.epoch(t)
		g.warm(t, g.sale(2, 7), true)
		now := g.epoch(t)
		if now == "" || now == old {
			t.Fatalf("loaded anew: got epoch %q, want a new one (was %q)", now, old)
		}
		for _, d := range []int64{2, -2} {
			if _, err := g.Adjust(ctx, g.a, g.i, 0, d, old); !errors.Is(err, domain.ErrNotLoaded) {
				t.Fatalf("adjust %d under the old epoch: got %v, want ErrNotLoaded", d, err)
			}
		}
		g.wantStock(t, "after the refused deltas", 7)
	})

	t.Run("HoldResets: no reset while a change holds the item", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(2, 3, 4), false)
		reset := func(was, want int64) bool {
			t.Helper()
			ok, err := f.Reset(ctx, f.a, f.i, 0, was, want, 0, f.holds(t), -1, nil)
			must(t, err)
			return ok
		}
		hold := func(ttl time.Duration) string {
			t.Helper()
			h, err := f.HoldResets(ctx, f.a, f.i, ttl)
			must(t, err)
			return h
		}
		a, b := hold(time.Minute), hold(time.Minute) // two changes at once
		if reset(3, 5) {
			t.Fatalf("a reset while held: got done, want refused")
		}
		must(t, f.LetResets(ctx, f.a, f.i, a))
		must(t, f.LetResets(ctx, f.a, f.i, a)) // let twice: still b's
		if reset(3, 5) {
			t.Fatalf("a reset while the other change holds: got done, want refused")
		}
		must(t, f.LetResets(ctx, f.a, f.i, b))
		if !reset(3, 5) {
			t.Fatalf("a reset after both let go: got refused")
		}
		f.wantStock(t, "reset", 5, 4)
		// A change that dies holding the item lets go when its hold lapses; a late let
		// of a lapsed hold does not let another change's hold go.
		late := hold(300 * time.Millisecond)
		if reset(5, 6) {
			t.Fatalf("a reset while held: got done, want refused")
		}
		f.Sleep(500 * time.Millisecond)
		if !reset(5, 6) {
			t.Fatalf("a reset after the hold lapsed: got refused")
		}
		held := hold(time.Minute)
		must(t, f.LetResets(ctx, f.a, f.i, late))
		if reset(6, 7) {
			t.Fatalf("a reset while held, after another's late let: got done, want refused")
		}
		// A reset that read the item before a hold came is refused even once the hold
		// is let go: that change may have moved units after the read.
		seen := f.holds(t)
		must(t, f.LetResets(ctx, f.a, f.i, held))
		again := hold(time.Minute)
		must(t, f.LetResets(ctx, f.a, f.i, again))
		if ok, err := f.Reset(ctx, f.a, f.i, 0, 6, 7, 0, seen, -1, nil); err != nil || ok {
			t.Fatalf("a reset that read before a hold came and went: got %v, %v; want refused", ok, err)
		}
		if !reset(6, 7) {
			t.Fatalf("a reset that read after the hold went: got refused")
		}
	})

	t.Run("Reset releases the ended orders its count holds back", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(2, 3, 4), false)
		// User 5 holds 2 units of an order ended in MySQL whose release has not landed.
		held := f.admit(t, f.deduction(5, 2, "", 2))
		must2(t, f.settle(t, domain.Ticket{ID: held.Ticket, UserID: 5, Status: domain.TicketCreated, OrderID: 1}, 2), "settle")
		o := domain.Order{ID: 1, Ticket: held.Ticket, UserID: 5, ActivityID: f.a, ItemID: f.i, Bucket: held.Bucket, Quantity: 2, Status: domain.OrderCancelled}
		other := domain.Order{ID: 2, Ticket: f.ticket(), UserID: 6, ActivityID: f.a, ItemID: f.i, Bucket: held.Bucket, Quantity: 1, Status: domain.OrderCancelled}
		st := f.state(t, 2)
		have := st.BucketStock[held.Bucket]
		// A reset that finds the counter moved writes nothing and releases nothing.
		if ok, err := f.Reset(ctx, f.a, f.i, held.Bucket, have+5, have+2, 0, f.holds(t), -1, []domain.Order{o}); err != nil || ok {
			t.Fatalf("a reset of a moved counter: got %v, %v; want false", ok, err)
		}
		_, err := f.deduct(5, 1, "", 2)
		wantCode(t, "the buyer still holds 2", err, domain.ELimitExceeded)
		if ok, err := f.Reset(ctx, f.a, f.i, held.Bucket, have, have+2, 0, f.holds(t), -1, []domain.Order{o}); err != nil || !ok {
			t.Fatalf("reset: got %v, %v; want true", ok, err)
		}
		if ok, err := f.Release(ctx, o); err != nil || ok {
			t.Fatalf("a release after the reset: got %v, %v; want false", ok, err)
		}
		want := slices.Clone(st.BucketStock)
		want[held.Bucket] += 2
		f.wantStock(t, "after the reset and the release", want...)
		// The reset gave the buyer's units back (once): 2 more, not 3.
		f.admit(t, f.deduction(5, 2, "", 2))
		_, err = f.deduct(5, 1, "", 2)
		wantCode(t, "past the limit again", err, domain.ELimitExceeded)
		if ok, err := f.Release(ctx, other); err != nil || !ok {
			t.Fatalf("a release not reset: got %v, %v; want true", ok, err)
		}
	})

	t.Run("SetState", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(5, 5), true)
		must(t, f.SetState(ctx, f.a, f.i, domain.StateOffline))
		_, err := f.deduct(1, 1, "", 1)
		wantCode(t, "offline", err, domain.ENotFound)
		must(t, f.SetState(ctx, f.a, f.i, domain.StatePublished))
		f.admit(t, f.deduction(1, 1, "", 1))
		must(t, f.SetBuckets(ctx, f.a, f.i, 4)) // recorded; requests name their buckets
		f.admit(t, f.deduction(1, 1, "", 1))
		f.wantStock(t, "after", 3)
	})

	t.Run("Adjust, Take and Reset", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(5, 5, 0), true)
		for _, tt := range []struct {
			name  string
			op    func() (int64, error)
			want  int64
			err   string
			stock []int64
		}{
			{"add", func() (int64, error) { return f.Adjust(ctx, f.a, f.i, 1, 3, f.epoch(t)) }, 3, "", []int64{5, 3}},
			{"take to zero", func() (int64, error) { return f.Adjust(ctx, f.a, f.i, 1, -3, f.epoch(t)) }, 0, "", []int64{5, 0}},
			{"take below zero", func() (int64, error) { return f.Adjust(ctx, f.a, f.i, 0, -6, f.epoch(t)) }, 0, domain.EConflict, []int64{5, 0}},
			{"add to a bucket never set", func() (int64, error) { return f.Adjust(ctx, f.a, f.i, 2, 2, f.epoch(t)) }, 2, "", []int64{5, 0, 2}},
			{"add nothing", func() (int64, error) { return f.Adjust(ctx, f.a, f.i, 0, 0, f.epoch(t)) }, 5, "", []int64{5, 0, 2}},
			{"take some", func() (int64, error) { return f.Take(ctx, f.a, f.i, 0, 2, 0) }, 2, "", []int64{3, 0, 2}},
			{"take more than there is", func() (int64, error) { return f.Take(ctx, f.a, f.i, 2, 5, 0) }, 2, "", []int64{3, 0, 0}},
			{"take from nothing", func() (int64, error) { return f.Take(ctx, f.a, f.i, 1, 5, 0) }, 0, "", []int64{3, 0, 0}},
			{"take none", func() (int64, error) { return f.Take(ctx, f.a, f.i, 0, 0, 0) }, 0, "", []int64{3, 0, 0}},
			{"take a negative number", func() (int64, error) { return f.Take(ctx, f.a, f.i, 0, -2, 0) }, 0, "", []int64{3, 0, 0}},
			{"reset what is there", func() (int64, error) { return boolInt(f.Reset(ctx, f.a, f.i, 0, 3, 8, 0, f.holds(t), -1, nil)) }, 1, "", []int64{8, 0, 0}},
			{"reset what is not", func() (int64, error) { return boolInt(f.Reset(ctx, f.a, f.i, 0, 3, 1, 0, f.holds(t), -1, nil)) }, 0, "", []int64{8, 0, 0}},
			{"reset a bucket never set", func() (int64, error) { return boolInt(f.Reset(ctx, f.a, f.i, 3, 0, 4, 0, f.holds(t), -1, nil)) }, 1, "", []int64{8, 0, 0, 4}},
		} {
			got, err := tt.op()
			wantCode(t, tt.name, err, tt.err)
			if got != tt.want {
				t.Fatalf("%s: got %d, want %d", tt.name, got, tt.want)
			}
			f.wantStock(t, tt.name, tt.stock...)
		}
	})

	t.Run("a Reset is refused once the item changed since the count it was given", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(5, 10), true)
		c := f.state(t, 1).Changes
		d := f.admit(t, f.deduction(1, 1, "", 1)) // 9
		must2(t, f.settle(t, domain.Ticket{ID: d.Ticket, UserID: 1, Status: domain.TicketFailed, Reason: "write_failed"}, 1), "settle")
		after := f.state(t, 1) // 10 again: the counter came back, the count did not
		if after.BucketStock[0] != 10 || after.Changes < c+2 {
			t.Fatalf("after a deduction and its failure: got %+v, want 10 and at least 2 changes past %d", after, c)
		}
		if ok, err := f.Reset(ctx, f.a, f.i, 0, 10, 7, 0, f.holds(t), c, nil); err != nil || ok {
			t.Fatalf("reset at the count before the changes: got %v, %v; want refused", ok, err)
		}
		if ok, err := f.Reset(ctx, f.a, f.i, 0, 10, 7, 0, f.holds(t), after.Changes, nil); err != nil || !ok {
			t.Fatalf("reset at the count now: got %v, %v; want done", ok, err)
		}
		if st := f.state(t, 1); st.Changes <= after.Changes {
			t.Fatalf("a reset counts as a change: got %d, want past %d", st.Changes, after.Changes)
		}
		f.wantStock(t, "reset", 7)
	})

	t.Run("a load takes a pending take before it gives a pending release of the same order", func(t *testing.T) {
		f := fixture(t)
		id := f.ticket()
		w := &domain.OrderRequest{Ticket: id, UserID: 4, ActivityID: f.a, ItemID: f.i, Quantity: 2}
		// The cancel's release lands first, then the write's settle (its answer was slow).
		if _, err := f.Release(ctx, domain.Order{ID: 40, Ticket: id, UserID: 4, ActivityID: f.a, ItemID: f.i, Quantity: 2, Status: domain.OrderCancelled}); err != nil {
			t.Fatal(err)
		}
		f.settle(t, domain.Ticket{ID: id, UserID: 4, Status: domain.TicketCreated, OrderID: 40, Wrote: w}, 1) // written, not loaded
		// The load read MySQL before the order was written and cancelled.
		f.warm(t, f.sale(2, 10), true)
		f.wantStock(t, "taken and given back", 10)
		f.admit(t, f.deduction(4, 2, "", 1)) // the buyer holds nothing
	})

	t.Run("a fenced Take or Reset below the highest token seen is refused", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(5, 10), true)
		if ok, err := f.Reset(ctx, f.a, f.i, 0, 10, 9, 7, f.holds(t), -1, nil); err != nil || !ok {
			t.Fatalf("reset under token 7: got %v, %v; want done", ok, err)
		}
		if n, err := f.Take(ctx, f.a, f.i, 0, 1, 7); err != nil || n != 1 {
			t.Fatalf("take under the same token: got %d, %v; want 1", n, err)
		}
		if ok, err := f.Reset(ctx, f.a, f.i, 0, 8, 1, 6, f.holds(t), -1, nil); !errors.Is(err, domain.ErrFenced) || ok {
			t.Fatalf("reset under an older token: got %v, %v; want ErrFenced", ok, err)
		}
		if n, err := f.Take(ctx, f.a, f.i, 0, 1, 6); !errors.Is(err, domain.ErrFenced) || n != 0 {
			t.Fatalf("take under an older token: got %d, %v; want ErrFenced", n, err)
		}
		f.wantStock(t, "after the refused writes", 8)
		if n, err := f.Take(ctx, f.a, f.i, 0, 1, 0); err != nil || n != 1 {
			t.Fatalf("an operator's take (no token): got %d, %v; want 1", n, err)
		}
		if ok, err := f.Reset(ctx, f.a, f.i, 0, 7, 8, 9, f.holds(t), -1, nil); err != nil || !ok {
			t.Fatalf("reset under a newer token: got %v, %v; want done", ok, err)
		}
		if ok, err := f.Reset(ctx, f.a, f.i, 0, 8, 2, 7, f.holds(t), -1, nil); !errors.Is(err, domain.ErrFenced) || ok {
			t.Fatalf("reset under the token before: got %v, %v; want ErrFenced", ok, err)
		}
		f.wantStock(t, "at the end", 8)
	})

	t.Run("State reads the sale as the ledger runs it", func(t *testing.T) {
		f := fixture(t)
		if st := f.state(t, 1); st.Loaded || st.State != "" {
			t.Fatalf("before warming: got %+v, want nothing loaded", st)
		}
		want := f.sale(3, 5)
		f.warm(t, want, true)
		st := f.state(t, 1)
		if !st.Loaded || st.State != domain.StatePublished || st.PerUserLimit != 3 ||
			st.Start.UnixMilli() != want.Start.UnixMilli() || st.End.UnixMilli() != want.End.UnixMilli() {
			t.Fatalf("got %+v, want the warmed sale %+v", st, want)
		}
		must(t, f.SetState(ctx, f.a, f.i, domain.StateOffline))
		if st := f.state(t, 1); st.State != domain.StateOffline {
			t.Fatalf("got state %q, want offline", st.State)
		}
	})

	t.Run("InFlight carries the idempotency key; Mark is first once", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(5, 5), true)
		got := f.admit(t, f.deduction(3, 1, "key-1", 1))
		fl, err := f.InFlight(ctx, f.a, f.i)
		if err != nil || len(fl) != 1 || fl[0].IdemKey != "key-1" || fl[0].Request(f.a, f.i).IdemKey != "key-1" {
			t.Fatalf("got %+v, %v; want one flight with key key-1", fl, err)
		}
		for n, want := range []bool{true, false, false} {
			if first, err := f.Mark(ctx, f.a, f.i, got.Ticket, "republished"); err != nil || first != want {
				t.Fatalf("mark %d: got %v, %v; want %v", n, first, err, want)
			}
		}
		if first, err := f.Mark(ctx, f.a, f.i, got.Ticket, "other"); err != nil || !first {
			t.Fatalf("another mark: got %v, %v; want first", first, err)
		}
	})

	t.Run("State, InFlight and Available", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(10, 5, 5, 5), true)
		want := map[string]domain.Flight{}
		before := f.Now()
		for _, r := range []struct{ home, qty int }{{0, 1}, {2, 3}, {2, 2}} {
			d := f.deduction(1, r.qty, "", 3)
			d.HomeBucket = r.home
			got := f.admit(t, d)
			want[got.Ticket] = domain.Flight{Ticket: got.Ticket, UserID: 1, Quantity: r.qty, Parts: []domain.Part{{Bucket: got.Bucket, Quantity: r.qty}}}
		}
		after := f.Now()
		st := f.state(t, 3)
		wantSt := domain.ItemState{Loaded: true, BucketStock: []int64{4, 5, 0}, InFlight: 6, InFlightBy: []int64{1, 0, 5}, Tickets: 3}
		if !sameItemState(st, wantSt) {
			t.Fatalf("got %+v, want %+v", st, wantSt)
		}
		// Over fewer buckets, tickets of the others count in InFlight only.
		st = f.state(t, 2)
		wantSt = domain.ItemState{Loaded: true, BucketStock: []int64{4, 5}, InFlight: 6, InFlightBy: []int64{1, 0}, Tickets: 3}
		if !sameItemState(st, wantSt) {
			t.Fatalf("over 2 buckets: got %+v, want %+v", st, wantSt)
		}
		fl, err := f.InFlight(ctx, f.a, f.i)
		must(t, err)
		if len(fl) != len(want) {
			t.Fatalf("got in flight %+v, want %+v", fl, want)
		}
		for _, got := range fl {
			w, at := want[got.Ticket], got.AdmittedAt
			if got.UserID != w.UserID || got.Quantity != w.Quantity || !slices.Equal(got.Parts, w.Parts) {
				t.Fatalf("got in flight %+v, want %+v", got, w)
			}
			if at.Before(before.Truncate(time.Millisecond)) || at.After(after) || !at.Equal(at.Truncate(time.Millisecond)) {
				t.Fatalf("ticket %s admitted at %v, want between %v and %v to the millisecond", got.Ticket, at, before, after)
			}
		}
		for _, tt := range []struct {
			buckets int
			want    int64
		}{{3, 9}, {1, 4}, {5, 9}} {
			n, loaded, err := f.Available(ctx, f.a, f.i, tt.buckets)
			if err != nil || !loaded || n != tt.want {
				t.Fatalf("available over %d: got %d, %v, %v; want %d, loaded", tt.buckets, n, loaded, err, tt.want)
			}
		}
		// Pinned: no buckets is an error (Redis refuses an MGET of no keys).
		if _, err := f.State(ctx, f.a, f.i, 0); err == nil {
			t.Fatal("State over 0 buckets: got no error")
		}
		if _, _, err := f.Available(ctx, f.a, f.i, 0); err == nil {
			t.Fatal("Available over 0 buckets: got no error")
		}
		g := fixture(t)
		fl, err = g.InFlight(ctx, g.a, g.i)
		if err != nil || len(fl) != 0 {
			t.Fatalf("InFlight of an unknown item: got %v, %v; want none", fl, err)
		}
	})

	t.Run("hammer: concurrent buyers never oversell", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(1, 30, 20, 10), true)
		const users = 300
		var mu sync.Mutex
		held := map[int]int64{}
		codes := hammer(users, func(g int) string {
			d := f.deduction(int64(g+1), 1, "", 3)
			d.HomeBucket = g % 3
			got, err := f.Deduct(ctx, d)
			if err == nil {
				mu.Lock()
				held[got.Bucket]++
				mu.Unlock()
			}
			return domain.ErrorCode(err)
		})
		if codes[""] != 60 || codes[domain.ESoldOut] != users-60 {
			t.Fatalf("got %v, want 60 admitted and the rest sold_out", codes)
		}
		if held[0] != 30 || held[1] != 20 || held[2] != 10 {
			t.Fatalf("got %v admitted by bucket, want every unit of every bucket", held)
		}
		if st := f.state(t, 3); st.Available() != 0 || st.Tickets != 60 || st.InFlight != 60 {
			t.Fatalf("got %+v", st)
		}
	})

	t.Run("hammer: one user never passes the limit", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(3, 100), true)
		codes := hammer(40, func(int) string {
			_, err := f.deduct(1, 1, "", 1)
			return domain.ErrorCode(err)
		})
		if codes[""] != 3 || codes[domain.ELimitExceeded] != 37 {
			t.Fatalf("got %v, want 3 admitted", codes)
		}
		f.wantStock(t, "after", 97)
	})

	t.Run("hammer: one key admits once", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(5, 100), true)
		var mu sync.Mutex
		tickets := map[string]bool{}
		codes := hammer(40, func(int) string {
			got, err := f.deduct(1, 1, "same", 1)
			if err != nil {
				return domain.ErrorCode(err)
			}
			mu.Lock()
			tickets[got.Ticket] = true
			mu.Unlock()
			if got.Replayed {
				return "replayed"
			}
			return ""
		})
		if codes[""] != 1 || codes["replayed"] != 39 || len(tickets) != 1 {
			t.Fatalf("got %v and tickets %v, want one admission and its replays", codes, tickets)
		}
		f.wantStock(t, "after", 99)
	})

	t.Run("hammer: settle and release happen once", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(5, 10), true)
		failed := f.admit(t, f.deduction(1, 2, "", 1))
		created := f.admit(t, f.deduction(2, 3, "", 1))
		must2(t, f.settle(t, domain.Ticket{ID: created.Ticket, UserID: 2, Status: domain.TicketCreated, OrderID: 1}, 1), "settle")
		o := domain.Order{ID: 1, Ticket: created.Ticket, UserID: 2, ActivityID: f.a, ItemID: f.i, Quantity: 3}
		codes := hammer(40, func(g int) string {
			var ok bool
			var err error
			if g%2 == 0 {
				ok, err = f.Settle(ctx, domain.Ticket{ID: failed.Ticket, UserID: 1, Status: domain.TicketFailed, Reason: "write_failed"}, 1)
			} else {
				ok, err = f.Release(ctx, o)
			}
			if err != nil {
				return domain.ErrorCode(err)
			}
			return fmt.Sprintf("%s %v", map[bool]string{true: "settle", false: "release"}[g%2 == 0], ok)
		})
		if codes["settle true"] != 1 || codes["release true"] != 1 || codes["settle false"] != 19 || codes["release false"] != 19 {
			t.Fatalf("got %v, want one settle and one release to act", codes)
		}
		f.wantStock(t, "after", 10)
	})

	t.Run("hammer: moving units never makes or loses any", func(t *testing.T) {
		f := fixture(t)
		f.warm(t, f.sale(1000, 50, 50), true)
		epoch := f.epoch(t)
		hammer(40, func(g int) string {
			var err error
			switch g % 4 {
			case 0, 1: // take from one bucket and give to the other
				var n int64
				if n, err = f.Take(ctx, f.a, f.i, g%2, 7, 0); err == nil && n > 0 {
					_, err = f.Adjust(ctx, f.a, f.i, 1-g%2, n, epoch)
				}
			case 2: // buy and fail
				var got domain.Deducted
				if got, err = f.deduct(int64(g), 1, "", 2); err == nil {
					_, err = f.Settle(ctx, domain.Ticket{ID: got.Ticket, UserID: int64(g), Status: domain.TicketFailed, Reason: "x"}, 2)
				}
				if domain.IsCode(err, domain.ESoldOut) {
					err = nil
				}
			case 3:
				if _, err = f.Adjust(ctx, f.a, f.i, 0, -3, epoch); err == nil {
					_, err = f.Adjust(ctx, f.a, f.i, 1, 3, epoch)
				} else if domain.IsCode(err, domain.EConflict) {
					err = nil
				}
			}
			if err != nil {
				t.Error(err)
			}
			return ""
		})
		st := f.state(t, 2)
		if st.Available() != 100 || st.BucketStock[0] < 0 || st.BucketStock[1] < 0 || st.Tickets != 0 {
			t.Fatalf("got %+v, want 100 units in two buckets", st)
		}
	})
}

func must2(tb testing.TB, ok bool, what string) {
	tb.Helper()
	if !ok {
		tb.Fatalf("%s: got false, want true", what)
	}
}

func boolInt(ok bool, err error) (int64, error) {
	if ok {
		return 1, err
	}
	return 0, err
}

func sameItemState(a, b domain.ItemState) bool {
	return a.Loaded == b.Loaded && slices.Equal(a.BucketStock, b.BucketStock) && a.InFlight == b.InFlight &&
		slices.Equal(a.InFlightBy, b.InFlightBy) && a.Tickets == b.Tickets
}
