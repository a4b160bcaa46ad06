package domaintest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// testSaleVersions checks SetSale and the versions Warm honours: an operator's change
// of an item (taken offline, given a window) reaches a loaded item's sale state at
// once, leaves its counters alone, and no older state (a warm that read the order
// store before the change) undoes it.
func testSaleVersions(t *testing.T, fixture func(t *testing.T) *ledgerFixture) {
	ctx := context.Background()

	t.Run("SetSale writes a loaded item's sale state and nothing else", func(t *testing.T) {
		f := fixture(t)
		s := f.sale(2, 4, 4)
		if loaded, err := f.SetSale(ctx, withVersion(s, 3)); err != nil || loaded {
			t.Fatalf("an item not loaded: got %v, %v; want false", loaded, err)
		}
		_, err := f.deduct(1, 1, "", 2)
		if !errors.Is(err, domain.ErrNotLoaded) {
			t.Fatalf("after SetSale on an item not loaded: got %v, want ErrNotLoaded", err)
		}
		f.warm(t, withVersion(s, 3), true)
		held := f.admit(t, f.deduction(1, 1, "", 2))
		off := withVersion(s, 4)
		off.State = domain.StateOffline
		off.BucketStock = []int64{9, 9} // not counters: SetSale leaves those
		if loaded, err := f.SetSale(ctx, off); err != nil || !loaded {
			t.Fatalf("taken offline: got %v, %v; want loaded", loaded, err)
		}
		_, err = f.deduct(2, 1, "", 2)
		wantCode(t, "offline", err, domain.ENotFound)
		f.wantStock(t, "offline", 3, 4)
		if st := f.state(t, 2); st.Tickets != 1 || st.InFlight != 1 {
			t.Fatalf("offline: got %+v, want the ticket admitted before still in flight", st)
		}
		// The admitted ticket ends as it would have: its units come back to the counters.
		f.settle(t, domain.Ticket{ID: held.Ticket, UserID: 1, Status: domain.TicketFailed, Reason: "write_failed"}, 2)
		f.wantStock(t, "a ticket ended while offline", 4, 4)

		later := withVersion(s, 5)
		later.Start = f.Now().Add(time.Hour)
		later.End = f.Now().Add(2 * time.Hour)
		must2(t, mustLoaded(f.SetSale(ctx, later)), "SetSale with a window of its own")
		_, err = f.deduct(2, 1, "", 2)
		wantCode(t, "before the item's window", err, domain.ENotStarted)
		early := withVersion(s, 6)
		early.End = f.Now().Add(-time.Minute)
		must2(t, mustLoaded(f.SetSale(ctx, early)), "SetSale with a window that ended")
		_, err = f.deduct(2, 1, "", 2)
		wantCode(t, "after the item's window", err, domain.EEnded)
		limit := withVersion(s, 7)
		limit.PerUserLimit = 1
		must2(t, mustLoaded(f.SetSale(ctx, limit)), "SetSale with a lower limit")
		f.admit(t, f.deduction(2, 1, "", 2))
		_, err = f.deduct(2, 1, "", 2)
		wantCode(t, "past the new limit", err, domain.ELimitExceeded)
		f.wantStock(t, "on sale again", 3, 4)
	})

	t.Run("no older version replaces a newer one", func(t *testing.T) {
		f := fixture(t)
		s := f.sale(5, 5)
		f.warm(t, withVersion(s, 10), true)
		off := withVersion(s, 11)
		off.State = domain.StateOffline
		must2(t, mustLoaded(f.SetSale(ctx, off)), "offline at 11")
		for _, tt := range []struct {
			name string
			op   func() error
		}{
			{"SetSale at the same version", func() error { _, err := f.SetSale(ctx, withVersion(s, 11)); return err }},
			{"SetSale at an older version", func() error { _, err := f.SetSale(ctx, withVersion(s, 9)); return err }},
			{"Warm at the same version", func() error { return f.Warm(ctx, withVersion(s, 11), false) }},
			{"Warm at an older version", func() error { return f.Warm(ctx, withVersion(s, 10), false) }},
		} {
			must(t, tt.op())
			_, err := f.deduct(1, 1, "", 1)
			wantCode(t, tt.name, err, domain.ENotFound)
		}
		// An older warm still adds what is missing: a bucket counter, a buyer.
		old := withVersion(s, 10)
		old.BucketStock = []int64{99, 7}
		old.Buyers = map[int64]int64{3: 5}
		must(t, f.Warm(ctx, old, false))
		f.wantStock(t, "an older warm", 5, 7)
		// A newer version goes on sale again, and the buyer added counts.
		must2(t, mustLoaded(f.SetSale(ctx, withVersion(s, 12))), "published at 12")
		_, err := f.deduct(3, 1, "", 1)
		wantCode(t, "a buyer the older warm added", err, domain.ELimitExceeded)
		f.admit(t, f.deduction(1, 1, "", 1))
		// A warm without a version (0) writes whatever the ledger holds.
		unversioned := withVersion(s, 0)
		unversioned.State = domain.StateOffline
		must(t, f.Warm(ctx, unversioned, false))
		_, err = f.deduct(2, 1, "", 1)
		wantCode(t, "an unversioned warm", err, domain.ENotFound)
		// ... and leaves the version it held: 12 still refuses older ones.
		must2(t, mustLoaded(f.SetSale(ctx, withVersion(s, 12))), "SetSale at 12 again")
		_, err = f.deduct(2, 1, "", 1)
		wantCode(t, "SetSale at the version held", err, domain.ENotFound)
		must2(t, mustLoaded(f.SetSale(ctx, withVersion(s, 13))), "SetSale at 13")
		f.admit(t, f.deduction(2, 1, "", 1))
	})
}

func withVersion(s domain.SaleState, v int64) domain.SaleState {
	s.Version = v
	return s
}

// mustLoaded is SetSale's answer as must2 takes it: true when the item was loaded.
func mustLoaded(loaded bool, err error) bool { return err == nil && loaded }
