package domaintest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// testOrderStates checks DeleteOrder and how the deleted state meets the others.
func testOrderStates(t *testing.T, newFn func(t *testing.T) Stores) {
	ctx := context.Background()

	t.Run("DeleteOrder deletes ended orders only, once", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 5)
		unpaid := f.write(t, f.req(1, 0, 1))
		paid := f.write(t, f.req(1, 0, 1))
		cancelled := f.write(t, f.req(1, 0, 1))
		expired := f.write(t, f.req(1, 0, 1))
		_, err := f.Orders.PayOrder(ctx, 1, paid.ID)
		must(t, err)
		_, _, err = f.Orders.EndOrder(ctx, 1, cancelled.ID, domain.OrderCancelled)
		must(t, err)
		_, _, err = f.Orders.EndOrder(ctx, 1, expired.ID, domain.OrderExpired)
		must(t, err)
		before := f.want(t, "before", []int64{8}, map[int64]int64{1: 2}, domain.ItemCounts{Orders: 2, Units: 2})
		for _, tt := range []struct {
			name string
			user int64
			id   int64
			code string
			want domain.OrderStatus // the order as answered
		}{
			{"an unpaid order", 1, unpaid.ID, domain.EConflict, domain.OrderCreated},
			{"a paid order", 1, paid.ID, domain.EConflict, domain.OrderPaid},
			{"someone else's", 2, cancelled.ID, domain.ENotFound, ""},
			{"an unknown order", 1, expired.ID + 1000, domain.ENotFound, ""},
			{"a cancelled order", 1, cancelled.ID, "", domain.OrderDeleted},
			{"a cancelled order again", 1, cancelled.ID, "", domain.OrderDeleted},
			{"an expired order", 1, expired.ID, "", domain.OrderDeleted},
		} {
			got, err := f.Orders.DeleteOrder(ctx, tt.user, tt.id)
			wantCode(t, tt.name, err, tt.code)
			if tt.want != "" && (got.ID != tt.id || got.Status != tt.want) {
				t.Fatalf("%s: got %+v, want order %d %s", tt.name, got, tt.id, tt.want)
			}
			f.same(t, tt.name, before) // deleting never touches stock or buyers
		}
		stored, err := f.Orders.Order(ctx, 1, cancelled.ID)
		must(t, err)
		want := cancelled
		want.Status = domain.OrderDeleted
		sameOrder(t, "a deleted order read back", stored, want)
		got, err := f.Orders.PayOrder(ctx, 1, cancelled.ID)
		wantCode(t, "pay a deleted order", err, domain.EConflict)
		if got.Status != domain.OrderDeleted {
			t.Fatalf("pay a deleted order: got %+v, want it as it is", got)
		}
		got, changed, err := f.Orders.EndOrder(ctx, 1, expired.ID, domain.OrderCancelled)
		if err != nil || changed || got.Status != domain.OrderDeleted {
			t.Fatalf("cancel a deleted order: got %+v, %v, %v; want it unchanged", got, changed, err)
		}
		f.same(t, "after", before)
	})

	t.Run("concurrent deletes of one order: one changes it", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 5)
		o := f.write(t, f.req(1, 0, 1))
		_, _, err := f.Orders.EndOrder(ctx, 1, o.ID, domain.OrderCancelled)
		must(t, err)
		codes := hammer(12, func(int) string {
			got, err := f.Orders.DeleteOrder(ctx, 1, o.ID)
			if err != nil || got.Status != domain.OrderDeleted {
				return fmt.Sprintf("%v %v", got.Status, err)
			}
			return "deleted"
		})
		if codes["deleted"] != 12 {
			t.Fatalf("got outcomes %v, want 12 answers of a deleted order", codes)
		}
	})
}

// testOrderPages checks Orders: its filters, its order and its pages, also while
// orders are being written.
func testOrderPages(t *testing.T, newFn func(t *testing.T) Stores) {
	ctx := context.Background()

	t.Run("Orders filters and pages by id", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategySync, 100, 1, 100, 100))
		b := create(t, s.Catalog, newActivity(domain.StrategySync, 100, 1, 100))
		var all []domain.Order // in the order written: ascending ids
		write := func(act *domain.Activity, item int, user int64) domain.Order {
			it := act.Items[item]
			r := domain.OrderRequest{Ticket: domain.NewTicket(act.ID, it.ID, fmt.Sprintf("p%d", len(all))), UserID: user, ActivityID: act.ID,
				ItemID: it.ID, Quantity: 1, AmountCents: it.PriceCents, AdmittedAt: 1}
			w, err := s.Orders.WriteOrder(ctx, r, 100)
			must(t, err)
			all = append(all, w.Order)
			return w.Order
		}
		for n := 0; n < 12; n++ {
			write(a, n%2, int64(1+n%3))
			if n%4 == 0 {
				write(b, 0, 1)
			}
		}
		// A void mark is never an order.
		_, voided, err := s.Orders.VoidTicket(ctx, domain.OrderRequest{Ticket: domain.NewTicket(a.ID, a.Items[0].ID, "void"), UserID: 1,
			ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1})
		must(t, err)
		must2(t, voided, "void a ticket")
		status := func(i int, act string) {
			var err error
			o := all[i]
			switch act {
			case "pay":
				all[i], err = s.Orders.PayOrder(ctx, o.UserID, o.ID)
			case "cancel":
				all[i], _, err = s.Orders.EndOrder(ctx, o.UserID, o.ID, domain.OrderCancelled)
			case "delete":
				all[i], _, err = s.Orders.EndOrder(ctx, o.UserID, o.ID, domain.OrderExpired)
				if err == nil {
					all[i], err = s.Orders.DeleteOrder(ctx, o.UserID, o.ID)
				}
			}
			must(t, err)
		}
		status(0, "pay")
		status(2, "cancel")
		status(4, "delete")
		status(7, "pay")
		status(9, "delete")
		pick := func(keep func(o domain.Order) bool, oldest bool) []int64 {
			var ids []int64
			for _, o := range all {
				if keep(o) {
					ids = append(ids, o.ID)
				}
			}
			if !oldest {
				slices.Reverse(ids)
			}
			return ids
		}
		for _, tt := range []struct {
			name string
			q    domain.OrderQuery
			keep func(o domain.Order) bool
		}{
			{"a shopper's", domain.OrderQuery{UserID: 1}, func(o domain.Order) bool { return o.UserID == 1 }},
			{"a shopper's, oldest first", domain.OrderQuery{UserID: 1, Oldest: true}, func(o domain.Order) bool { return o.UserID == 1 }},
			{"a shopper's in one activity", domain.OrderQuery{UserID: 1, ActivityID: b.ID}, func(o domain.Order) bool { return o.UserID == 1 && o.ActivityID == b.ID }},
			{"an activity's", domain.OrderQuery{ActivityID: a.ID}, func(o domain.Order) bool { return o.ActivityID == a.ID }},
			{"an item's", domain.OrderQuery{ItemID: a.Items[1].ID, Oldest: true}, func(o domain.Order) bool { return o.ItemID == a.Items[1].ID }},
			{"paid ones", domain.OrderQuery{ActivityID: a.ID, Statuses: []domain.OrderStatus{domain.OrderPaid}},
				func(o domain.Order) bool { return o.ActivityID == a.ID && o.Status == domain.OrderPaid }},
			{"all but deleted", domain.OrderQuery{UserID: 2, Statuses: domain.ShopperStatuses},
				func(o domain.Order) bool { return o.UserID == 2 && o.Status != domain.OrderDeleted }},
			{"deleted ones", domain.OrderQuery{Statuses: []domain.OrderStatus{domain.OrderDeleted}, Oldest: true},
				func(o domain.Order) bool { return o.Status == domain.OrderDeleted }},
			{"nobody's", domain.OrderQuery{UserID: 99}, func(domain.Order) bool { return false }},
			{"written before the first", domain.OrderQuery{ActivityID: a.ID, WrittenBefore: all[0].CreatedAt}, func(domain.Order) bool { return false }},
			{"written before now and then", domain.OrderQuery{ActivityID: a.ID, WrittenBefore: all[len(all)-1].CreatedAt.Add(time.Hour)},
				func(o domain.Order) bool { return o.ActivityID == a.ID }},
		} {
			want := pick(tt.keep, tt.q.Oldest)
			for _, limit := range []int{1, 2, 5, 100} {
				q := tt.q
				q.Limit = limit
				got := pageAll(t, s.Orders, q, func(page []domain.Order) {
					for _, o := range page {
						k := slices.IndexFunc(all, func(w domain.Order) bool { return w.ID == o.ID })
						if k < 0 {
							t.Fatalf("%s: got order %+v, which is no order written", tt.name, o)
						}
						sameOrder(t, tt.name, o, all[k])
					}
				})
				if !slices.Equal(got, want) {
					t.Fatalf("%s, %d a page: got ids %v, want %v", tt.name, limit, got, want)
				}
			}
		}
	})

	t.Run("pages neither repeat nor skip an order while orders are written", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategySync, domain.MaxPerUserLimit, 1, 100_000))
		it := a.Items[0]
		var seq, written atomic.Int64
		write := func(user int64) domain.Order {
			r := domain.OrderRequest{Ticket: domain.NewTicket(a.ID, it.ID, fmt.Sprintf("c%d", seq.Add(1))), UserID: user, ActivityID: a.ID,
				ItemID: it.ID, Quantity: 1, AmountCents: it.PriceCents, AdmittedAt: 1}
			w, err := writeRetryingW(t, s.Orders, r, domain.MaxPerUserLimit)
			if err != nil {
				t.Errorf("write: %v", err)
			}
			written.Add(1)
			return w.Order
		}
		var before []int64
		for k := 0; k < 60; k++ {
			before = append(before, write(int64(1+k%2)).ID)
		}
		for _, tt := range []struct {
			name string
			q    domain.OrderQuery
			had  func(o int) bool // which of before the list holds
		}{
			{"a shopper's, newest first", domain.OrderQuery{UserID: 1, Limit: 7}, func(k int) bool { return k%2 == 0 }},
			{"a shopper's, oldest first", domain.OrderQuery{UserID: 1, Limit: 7, Oldest: true}, func(k int) bool { return k%2 == 0 }},
			{"an activity's, newest first", domain.OrderQuery{ActivityID: a.ID, Limit: 9}, func(int) bool { return true }},
			{"an activity's, oldest first", domain.OrderQuery{ActivityID: a.ID, Limit: 9, Oldest: true}, func(int) bool { return true }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var running atomic.Int64
				for g := 0; g < 4; g++ {
					wg.Add(1)
					running.Add(1)
					go func() {
						defer wg.Done()
						defer running.Add(-1)
						for k := 0; k < 40; k++ { // bounded, so an oldest-first reader reaches the end
							select {
							case <-stop:
								return
							default:
							}
							write(int64(1 + (g+k)%2))
						}
					}()
				}
				seen := map[int64]int{}
				pages := 0
				got := pageAll(t, s.Orders, tt.q, func(page []domain.Order) {
					pages++
					for _, o := range page {
						seen[o.ID]++
					}
					// Orders are written between every two pages.
					for w := written.Load(); written.Load() < w+2 && running.Load() > 0; {
						time.Sleep(time.Millisecond)
					}
				})
				close(stop)
				wg.Wait()
				for id, c := range seen {
					if c != 1 {
						t.Fatalf("order %d seen %d times", id, c)
					}
				}
				for k, id := range before {
					if tt.had(k) && seen[id] != 1 {
						t.Fatalf("order %d, written before the pages were read, seen %d times (in %d pages)", id, seen[id], pages)
					}
				}
				if pages < 4 {
					t.Fatalf("got %d pages, want several", pages)
				}
				t.Logf("%d orders in %d pages", len(got), pages)
			})
		}
	})
}

// pageAll reads every page of q, calling each with every page, and returns the ids
// in the order read. It fails unless the ids go strictly one way (as q.Oldest says)
// across the pages.
func pageAll(tb testing.TB, o domain.OrderStore, q domain.OrderQuery, each func([]domain.Order)) []int64 {
	tb.Helper()
	var ids []int64
	for n := 0; ; n++ {
		page, err := o.Orders(context.Background(), q)
		must(tb, err)
		if len(page) > q.Limit && q.Limit > 0 {
			tb.Fatalf("page %d: got %d orders, more than the limit %d", n, len(page), q.Limit)
		}
		each(page)
		for _, ord := range page {
			if len(ids) > 0 {
				last := ids[len(ids)-1]
				if q.Oldest && ord.ID <= last || !q.Oldest && ord.ID >= last {
					tb.Fatalf("page %d: order %d after %d (oldest first: %v)", n, ord.ID, last, q.Oldest)
				}
			}
			ids = append(ids, ord.ID)
		}
		if len(page) < max(q.Limit, 1) || len(page) == 0 {
			return ids
		}
		q.After = page[len(page)-1].ID
		if n > 10_000 {
			tb.Fatal("no end of pages")
		}
	}
}
