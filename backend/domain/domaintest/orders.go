package domaintest

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// orderFixture is one item on sale in a store under test.
type orderFixture struct {
	Stores
	a    *domain.Activity
	item int64
	seq  atomic.Int64
}

func newOrderFixture(t *testing.T, newFn func(t *testing.T) Stores, stock int64, buckets, limit int) *orderFixture {
	t.Helper()
	strategy := domain.StrategyAsync
	if buckets > 1 {
		strategy = domain.StrategyBucket
	}
	f := &orderFixture{Stores: newFn(t)}
	f.a = create(t, f.Catalog, newActivity(strategy, limit, buckets, stock))
	f.item = f.a.Items[0].ID
	return f
}

// req is a new request of user for qty units from bucket.
func (f *orderFixture) req(user int64, bucket, qty int) domain.OrderRequest {
	return domain.OrderRequest{Ticket: domain.NewTicket(f.a.ID, f.item, fmt.Sprintf("t%d", f.seq.Add(1))), UserID: user,
		ActivityID: f.a.ID, ItemID: f.item, Bucket: bucket, Quantity: qty, AmountCents: 100 * int64(qty), AdmittedAt: 1}
}

func (f *orderFixture) write(tb testing.TB, r domain.OrderRequest) domain.Order {
	tb.Helper()
	w, err := f.Orders.WriteOrder(context.Background(), r, f.a.PerUserLimit)
	if err != nil || w.Duplicate {
		tb.Fatalf("write %s: got %+v, %v; want a new order", r.Ticket, w, err)
	}
	return w.Order
}

// snapshot is everything the store says of the fixture's item.
type snapshot struct {
	rows   []domain.StockRow
	buyers map[int64]int64
	counts domain.ItemCounts
	total  int64
}

func (f *orderFixture) snap(tb testing.TB) snapshot {
	tb.Helper()
	ctx := context.Background()
	var s snapshot
	var err error
	s.rows = stockRows(tb, f.Orders, f.item)
	v, err := f.Orders.View(ctx, f.item, time.Now(), true)
	must(tb, err)
	s.buyers = v.Buyers
	s.counts, err = f.Orders.Counts(ctx, f.item)
	must(tb, err)
	it, err := f.Catalog.Item(ctx, f.item)
	must(tb, err)
	s.total = it.TotalStock
	return s
}

func (s snapshot) available() []int64 {
	var out []int64
	for _, r := range s.rows {
		out = append(out, r.Available)
	}
	return out
}

func (s snapshot) versions() []int64 {
	var out []int64
	for _, r := range s.rows {
		out = append(out, r.Version)
	}
	return out
}

func (s snapshot) String() string {
	return fmt.Sprintf("rows %v versions %v, buyers %v, counts %+v, total %d", s.available(), s.versions(), s.buyers, s.counts, s.total)
}

func (s snapshot) equal(o snapshot) bool {
	return slices.Equal(s.rows, o.rows) && maps.Equal(s.buyers, o.buyers) && s.counts == o.counts && s.total == o.total
}

// same fails unless the store still says what it said in before.
func (f *orderFixture) same(tb testing.TB, what string, before snapshot) {
	tb.Helper()
	if now := f.snap(tb); !now.equal(before) {
		tb.Fatalf("%s changed the store: got %s, want %s", what, now, before)
	}
}

// want fails unless the item's rows hold avail, its buyers hold buyers and its counts
// are counts.
func (f *orderFixture) want(tb testing.TB, what string, avail []int64, buyers map[int64]int64, counts domain.ItemCounts) snapshot {
	tb.Helper()
	s := f.snap(tb)
	if !slices.Equal(s.available(), avail) || !maps.Equal(s.buyers, buyers) || s.counts != counts {
		tb.Fatalf("%s: got %s; want rows %v, buyers %v, counts %+v", what, s, avail, buyers, counts)
	}
	return s
}

func sameOrder(tb testing.TB, what string, got, want domain.Order) {
	tb.Helper()
	if got.ID != want.ID || got.Ticket != want.Ticket || got.UserID != want.UserID || got.ActivityID != want.ActivityID ||
		got.ItemID != want.ItemID || got.Bucket != want.Bucket || got.Quantity != want.Quantity || got.AmountCents != want.AmountCents ||
		got.Status != want.Status || !got.CreatedAt.Equal(want.CreatedAt) {
		tb.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

// TestOrderStore checks a domain.OrderStore against its contract. newFn returns an
// empty store (with the catalog that creates its items) for each subtest.
func TestOrderStore(t *testing.T, newFn func(t *testing.T) Stores) {
	ctx := context.Background()
	testOrderStates(t, newFn)
	testOrderPages(t, newFn)

	t.Run("WriteOrder writes the order, the buyer and the stock row", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 2, 3)
		r := f.req(7, 1, 2)
		before := time.Now()
		o := f.write(t, r)
		after := time.Now()
		want := domain.Order{ID: o.ID, Ticket: r.Ticket, UserID: 7, ActivityID: f.a.ID, ItemID: f.item, Bucket: 1, Quantity: 2,
			AmountCents: 200, Status: domain.OrderCreated, CreatedAt: o.CreatedAt}
		sameOrder(t, "written", o, want)
		if o.ID <= 0 || o.CreatedAt.Before(before.Truncate(time.Millisecond)) || o.CreatedAt.After(after) || !o.CreatedAt.Equal(o.CreatedAt.Truncate(time.Millisecond)) {
			t.Fatalf("got id %d created %v; want a positive id, created between %v and %v to the millisecond", o.ID, o.CreatedAt, before, after)
		}
		s := f.want(t, "after", []int64{5, 3}, map[int64]int64{7: 2}, domain.ItemCounts{Orders: 1, Units: 2})
		if !slices.Equal(s.versions(), []int64{0, 1}) || s.total != 10 {
			t.Fatalf("got versions %v and total %d, want [0 1] and 10", s.versions(), s.total)
		}
		got, err := f.Orders.OrderByTicket(ctx, r.Ticket)
		must(t, err)
		sameOrder(t, "by ticket", got, want)
		got, err = f.Orders.Order(ctx, 7, o.ID)
		must(t, err)
		sameOrder(t, "by id", got, want)
		o2 := f.write(t, f.req(7, 0, 1))
		if o2.ID <= o.ID {
			t.Fatalf("second order: got id %d after %d, want a larger one", o2.ID, o.ID)
		}
		f.want(t, "second", []int64{4, 3}, map[int64]int64{7: 3}, domain.ItemCounts{Orders: 2, Units: 3})
	})

	t.Run("WriteOrder of a ticket written before changes nothing", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 1)
		r := f.req(1, 0, 1)
		o := f.write(t, r)
		before := f.snap(t)
		for _, again := range []domain.OrderRequest{r, {Ticket: r.Ticket, UserID: 2, ActivityID: f.a.ID, ItemID: f.item, Quantity: 5}} {
			w, err := f.Orders.WriteOrder(ctx, again, 1)
			if err != nil || !w.Duplicate {
				t.Fatalf("again: got %+v, %v; want a duplicate", w, err)
			}
			sameOrder(t, "duplicate", w.Order, o)
			f.same(t, "a duplicate", before)
		}
		// Whatever became of the order since.
		_, _, err := f.Orders.EndOrder(ctx, 1, o.ID, domain.OrderCancelled)
		must(t, err)
		before = f.snap(t)
		w, err := f.Orders.WriteOrder(ctx, r, 1)
		if err != nil || !w.Duplicate || w.Order.Status != domain.OrderCancelled {
			t.Fatalf("after cancel: got %+v, %v; want the cancelled order as a duplicate", w, err)
		}
		f.same(t, "a duplicate of a cancelled order", before)
	})

	t.Run("WriteOrder refusals leave nothing", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 6, 2, 3)
		for _, tt := range []struct {
			name string
			user int64
			b    int
			qty  int
			want string
		}{
			{"within the limit", 1, 0, 2, ""},
			{"past the limit", 1, 0, 2, domain.ELimitExceeded},
			{"up to the limit", 1, 0, 1, ""},
			{"at the limit", 1, 1, 1, domain.ELimitExceeded},
			{"more than the bucket holds", 2, 0, 1, domain.ESoldOut},
			{"more than the bucket, within the item", 2, 1, 3, ""},
			{"limit before stock", 3, 1, 4, domain.ELimitExceeded},
			{"no such bucket", 4, 2, 1, domain.ENotFound},
			{"sold out", 4, 1, 1, domain.ESoldOut},
		} {
			before := f.snap(t)
			r := f.req(tt.user, tt.b, tt.qty)
			w, err := f.Orders.WriteOrder(ctx, r, f.a.PerUserLimit)
			wantCode(t, tt.name, err, tt.want)
			if tt.want == "" {
				if w.Duplicate || w.Order.Ticket != r.Ticket {
					t.Fatalf("%s: got %+v", tt.name, w)
				}
				continue
			}
			if domain.IsNotCommitted(err) {
				t.Fatalf("%s: a refusal marked not committed: %v", tt.name, err)
			}
			f.same(t, tt.name, before)
			if _, err := f.Orders.OrderByTicket(ctx, r.Ticket); !domain.IsCode(err, domain.ENotFound) {
				t.Fatalf("%s: the refused ticket: got %v, want not_found", tt.name, err)
			}
		}
		f.want(t, "after", []int64{0, 0}, map[int64]int64{1: 3, 2: 3}, domain.ItemCounts{Orders: 3, Units: 6})
	})

	t.Run("WriteOrder with no limit", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 1)
		for n := 0; n < 3; n++ {
			if _, err := f.Orders.WriteOrder(ctx, f.req(1, 0, 3), 0); err != nil {
				t.Fatalf("order %d: %v", n, err)
			}
		}
		f.want(t, "after", []int64{1}, map[int64]int64{1: 9}, domain.ItemCounts{Orders: 3, Units: 9})
	})

	t.Run("WriteBatch is WriteOrder for each request, in order", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 2, 2)
		old := f.req(1, 1, 1)
		oldOrder := f.write(t, old)
		r2, r3, r4 := f.req(2, 1, 1), f.req(3, 1, 2), f.req(4, 1, 1)
		batch := []domain.OrderRequest{old, r2, r3, r3, f.req(2, 1, 2), r4}
		written, errs := f.Orders.WriteBatch(ctx, batch, 2)
		if len(written) != len(batch) || len(errs) != len(batch) {
			t.Fatalf("got %d results and %d errors for %d requests", len(written), len(errs), len(batch))
		}
		wantDup := []bool{true, false, false, true, false, false}
		wantErr := []string{"", "", "", "", domain.ELimitExceeded, ""}
		for i := range batch {
			wantCode(t, fmt.Sprintf("request %d", i), errs[i], wantErr[i])
			if written[i].Duplicate != wantDup[i] {
				t.Fatalf("request %d: got duplicate=%v, want %v", i, written[i].Duplicate, wantDup[i])
			}
			if wantErr[i] == "" && (written[i].Order.Ticket != batch[i].Ticket || written[i].Order.ID <= 0) {
				t.Fatalf("request %d: got %+v", i, written[i].Order)
			}
		}
		sameOrder(t, "the order written before", written[0].Order, oldOrder)
		sameOrder(t, "the copy", written[3].Order, written[2].Order)
		for i, r := range batch {
			if wantErr[i] != "" {
				continue
			}
			got, err := f.Orders.OrderByTicket(ctx, r.Ticket)
			must(t, err)
			sameOrder(t, fmt.Sprintf("request %d read back", i), got, written[i].Order)
		}
		f.want(t, "after", []int64{5, 0}, map[int64]int64{1: 1, 2: 1, 3: 2, 4: 1}, domain.ItemCounts{Orders: 4, Units: 5})

		// Fewer units than the batch needs: the first ones in order get them.
		g := newOrderFixture(t, newFn, 3, 1, 1)
		batch = []domain.OrderRequest{g.req(1, 0, 1), g.req(2, 0, 1), g.req(3, 0, 1), g.req(4, 0, 1)}
		batch = append(batch, batch[3])
		written, errs = g.Orders.WriteBatch(ctx, batch, 1)
		for i, want := range []string{"", "", "", domain.ESoldOut, domain.ESoldOut} {
			wantCode(t, fmt.Sprintf("short batch, request %d", i), errs[i], want)
		}
		// Pinned: a copy of a refused request gets its refusal, marked duplicate.
		if written[3].Duplicate || !written[4].Duplicate {
			t.Fatalf("short batch: got duplicate %v and %v, want false and true", written[3].Duplicate, written[4].Duplicate)
		}
		g.want(t, "short batch", []int64{0}, map[int64]int64{1: 1, 2: 1, 3: 1}, domain.ItemCounts{Orders: 3, Units: 3})

		if w, e := g.Orders.WriteBatch(ctx, nil, 1); len(w) != 0 || len(e) != 0 {
			t.Fatalf("empty batch: got %v, %v", w, e)
		}

		// Two copies of a ticket that replays its key's order (a message and the
		// reconciler's copy of it in one batch): both are the replay, so the ledger
		// gives its units back whichever settles first.
		h := newOrderFixture(t, newFn, 5, 1, 5)
		keyed := h.req(1, 0, 1)
		keyed.IdemKey = "k"
		keyOrder := h.write(t, keyed)
		again := h.req(1, 0, 1)
		again.IdemKey = "k"
		written, errs = h.Orders.WriteBatch(ctx, []domain.OrderRequest{again, again, h.req(2, 0, 1)}, 5)
		for i := range 2 {
			if errs[i] != nil || !written[i].Replay || written[i].Duplicate || written[i].Order.ID != keyOrder.ID {
				t.Fatalf("copy %d of the replaying ticket: got %+v, %v; want a replay of order %d", i, written[i], errs[i], keyOrder.ID)
			}
		}
		h.want(t, "replayed twice", []int64{3}, map[int64]int64{1: 1, 2: 1}, domain.ItemCounts{Orders: 2, Units: 2})
	})

	t.Run("OrderByTicket, Order and Orders", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 5)
		var mine []domain.Order
		for n := 0; n < 3; n++ {
			mine = append(mine, f.write(t, f.req(1, 0, 1)))
			f.write(t, f.req(2, 0, 1))
		}
		_, err := f.Orders.OrderByTicket(ctx, "no-such-ticket")
		wantCode(t, "unknown ticket", err, domain.ENotFound)
		_, err = f.Orders.Order(ctx, 2, mine[0].ID)
		wantCode(t, "someone else's order", err, domain.ENotFound)
		_, err = f.Orders.Order(ctx, 1, mine[2].ID+1000)
		wantCode(t, "unknown order", err, domain.ENotFound)
		got, err := f.Orders.Orders(ctx, domain.OrderQuery{UserID: 1})
		must(t, err)
		if len(got) != 3 {
			t.Fatalf("got %d orders, want 3", len(got))
		}
		for k, o := range got {
			sameOrder(t, fmt.Sprintf("order %d, newest first", k), o, mine[2-k])
		}
		if got, err := f.Orders.Orders(ctx, domain.OrderQuery{UserID: 3}); err != nil || len(got) != 0 {
			t.Fatalf("a user with no orders: got %v, %v", got, err)
		}
	})

	t.Run("EndOrder gives the units back once", func(t *testing.T) {
		for _, to := range []domain.OrderStatus{domain.OrderCancelled, domain.OrderExpired} {
			t.Run(string(to), func(t *testing.T) {
				f := newOrderFixture(t, newFn, 10, 2, 3)
				o := f.write(t, f.req(1, 1, 2))
				keep := f.write(t, f.req(1, 1, 1))
				user := o.UserID // the expiry names the owner too: there is no "any owner"
				_, _, err := f.Orders.EndOrder(ctx, 2, o.ID, to)
				wantCode(t, "someone else's order", err, domain.ENotFound)
				_, _, err = f.Orders.EndOrder(ctx, 1, keep.ID+1000, to)
				wantCode(t, "unknown order", err, domain.ENotFound)
				got, changed, err := f.Orders.EndOrder(ctx, user, o.ID, to)
				if err != nil || !changed {
					t.Fatalf("end: got %v, %v; want changed", changed, err)
				}
				want := o
				want.Status = to
				sameOrder(t, "ended", got, want)
				s := f.want(t, "ended", []int64{5, 4}, map[int64]int64{1: 1}, domain.ItemCounts{Orders: 1, Units: 1})
				if !slices.Equal(s.versions(), []int64{0, 3}) {
					t.Fatalf("got versions %v, want [0 3]", s.versions())
				}
				for _, again := range []domain.OrderStatus{to, domain.OrderCancelled, domain.OrderExpired} {
					got, changed, err = f.Orders.EndOrder(ctx, 1, o.ID, again)
					if err != nil || changed {
						t.Fatalf("end again as %s: got %v, %v; want unchanged", again, changed, err)
					}
					sameOrder(t, "ended again", got, want)
					f.same(t, "ending again", s)
				}
				stored, err := f.Orders.Order(ctx, 1, o.ID)
				must(t, err)
				sameOrder(t, "read back", stored, want)
				_, _, err = f.Orders.EndOrder(ctx, 1, keep.ID, to)
				must(t, err)
				f.want(t, "both ended", []int64{5, 5}, map[int64]int64{}, domain.ItemCounts{})
			})
		}
	})

	t.Run("PayOrder", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 5)
		o := f.write(t, f.req(1, 0, 1))
		ended := f.write(t, f.req(1, 0, 1))
		_, err := f.Orders.PayOrder(ctx, 2, o.ID)
		wantCode(t, "someone else's order", err, domain.ENotFound)
		for _, u := range []int64{0, 2} { // no "any owner": user 0 is nobody's
			unchanged := f.snap(t)
			_, _, err = f.Orders.EndOrder(ctx, u, o.ID, domain.OrderCancelled)
			wantCode(t, fmt.Sprintf("end an order as user %d", u), err, domain.ENotFound)
			f.same(t, fmt.Sprintf("ending as user %d", u), unchanged)
		}
		_, err = f.Orders.PayOrder(ctx, 1, ended.ID+1000)
		wantCode(t, "unknown order", err, domain.ENotFound)
		want := o
		want.Status = domain.OrderPaid
		for n := 0; n < 2; n++ {
			got, err := f.Orders.PayOrder(ctx, 1, o.ID)
			must(t, err)
			sameOrder(t, fmt.Sprintf("pay %d", n), got, want)
		}
		before := f.snap(t)
		got, changed, err := f.Orders.EndOrder(ctx, o.UserID, o.ID, domain.OrderExpired)
		if err != nil || changed {
			t.Fatalf("expire a paid order: got %v, %v; want unchanged", changed, err)
		}
		sameOrder(t, "a paid order ended", got, want)
		f.same(t, "ending a paid order", before)
		_, _, err = f.Orders.EndOrder(ctx, 1, ended.ID, domain.OrderCancelled)
		must(t, err)
		got, err = f.Orders.PayOrder(ctx, 1, ended.ID)
		wantCode(t, "pay a cancelled order", err, domain.EConflict)
		if got.ID != ended.ID || got.Status != domain.OrderCancelled {
			t.Fatalf("pay a cancelled order: got %+v, want it as it is", got)
		}
		f.want(t, "after", []int64{9}, map[int64]int64{1: 1}, domain.ItemCounts{Orders: 1, Units: 1})
	})

	t.Run("DeleteOrder racing the cancel answers deleted or conflict", func(t *testing.T) {
		// A delete that missed the cancelled state by a moment, and read the order
		// back once the cancel had landed, answered success without deleting.
		f := newOrderFixture(t, newFn, 100, 1, 100)
		for i := range 40 {
			o := f.write(t, f.req(int64(100+i), 0, 1))
			start := make(chan struct{})
			type answer struct {
				o   domain.Order
				err error
			}
			deletes := make(chan answer, 3)
			for range 3 {
				go func() {
					<-start
					got, err := f.Orders.DeleteOrder(ctx, o.UserID, o.ID)
					deletes <- answer{got, err}
				}()
			}
			close(start)
			if _, _, err := f.Orders.EndOrder(ctx, o.UserID, o.ID, domain.OrderCancelled); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				d := <-deletes
				switch {
				case d.err == nil && d.o.Status != domain.OrderDeleted:
					t.Fatalf("order %d: a delete answered %q without an error, want deleted or a conflict", o.ID, d.o.Status)
				case d.err != nil && !domain.IsCode(d.err, domain.EConflict):
					t.Fatalf("order %d: a delete failed: %v", o.ID, d.err)
				}
			}
		}
	})

	t.Run("StaleOrders", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 10)
		var os []domain.Order
		var marks []time.Time
		for n := 0; n < 5; n++ {
			time.Sleep(3 * time.Millisecond)
			marks = append(marks, time.Now())
			time.Sleep(3 * time.Millisecond)
			os = append(os, f.write(t, f.req(int64(n+1), 0, 1)))
		}
		_, err := f.Orders.PayOrder(ctx, os[1].UserID, os[1].ID)
		must(t, err)
		_, _, err = f.Orders.EndOrder(ctx, os[2].UserID, os[2].ID, domain.OrderExpired)
		must(t, err)
		for _, tt := range []struct {
			name   string
			before time.Time
			limit  int
			want   []int
		}{
			{"before any", marks[0], 10, nil},
			{"before the fourth", marks[3], 10, []int{0}},
			{"all", time.Now().Add(time.Second), 10, []int{0, 3, 4}},
			{"all, two at most", time.Now().Add(time.Second), 2, []int{0, 3}},
			{"none wanted", time.Now().Add(time.Second), 0, nil},
		} {
			got, err := f.Orders.StaleOrders(ctx, tt.before, tt.limit)
			must(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("%s: got %d orders, want %d", tt.name, len(got), len(tt.want))
			}
			for k, n := range tt.want {
				sameOrder(t, tt.name, got[k], os[n])
			}
		}
	})

	t.Run("View: ended orders", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 10)
		var os []domain.Order
		for n := 0; n < 4; n++ {
			os = append(os, f.write(t, f.req(int64(n+1), 0, 1)))
		}
		_, err := f.Orders.PayOrder(ctx, os[1].UserID, os[1].ID)
		must(t, err)
		time.Sleep(3 * time.Millisecond)
		first := time.Now()
		time.Sleep(3 * time.Millisecond)
		_, _, err = f.Orders.EndOrder(ctx, os[2].UserID, os[2].ID, domain.OrderCancelled)
		must(t, err)
		time.Sleep(3 * time.Millisecond)
		second := time.Now()
		time.Sleep(3 * time.Millisecond)
		_, _, err = f.Orders.EndOrder(ctx, os[3].UserID, os[3].ID, domain.OrderExpired)
		must(t, err)
		_, err = f.Orders.DeleteOrder(ctx, os[3].UserID, os[3].ID)
		must(t, err)
		for _, tt := range []struct {
			name  string
			item  int64
			since time.Time
			want  []int
		}{
			{"since before both", f.item, first, []int{2, 3}},
			{"since between", f.item, second, []int{3}},
			{"since after both", f.item, time.Now().Add(time.Second), nil},
			{"another item", f.item + 1000, first, nil},
		} {
			v, err := f.Orders.View(ctx, tt.item, tt.since, false)
			must(t, err)
			if len(v.Written) != 0 {
				t.Fatalf("%s: no tickets asked, got written %v", tt.name, v.Written)
			}
			got := v.Ended
			if v.Buyers != nil || v.Keys != nil {
				t.Fatalf("%s: a view not full: got buyers %v, keys %v", tt.name, v.Buyers, v.Keys)
			}
			if rows := stockRows(t, f.Orders, tt.item); !slices.Equal(v.Stock, rows) {
				t.Fatalf("%s: got stock %v, want %v", tt.name, v.Stock, rows)
			}
			slices.SortFunc(got, func(a, b domain.Order) int { return cmp.Compare(a.ID, b.ID) })
			if len(got) != len(tt.want) {
				t.Fatalf("%s: got %+v, want orders %v", tt.name, got, tt.want)
			}
			for k, n := range tt.want {
				if got[k].ID != os[n].ID || got[k].Ticket != os[n].Ticket || got[k].Quantity != os[n].Quantity {
					t.Fatalf("%s: got %+v, want %+v", tt.name, got[k], os[n])
				}
			}
		}
	})

	t.Run("View says which tickets asked have an order", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 1)
		live := f.write(t, f.req(1, 0, 1))
		ended := f.write(t, f.req(2, 0, 1))
		_, _, err := f.Orders.EndOrder(ctx, ended.UserID, ended.ID, domain.OrderCancelled)
		must(t, err)
		void := f.req(3, 0, 1)
		_, _, err = f.Orders.VoidTicket(ctx, void)
		must(t, err)
		v, err := f.Orders.View(ctx, f.item, time.Now(), false, live.Ticket, ended.Ticket, void.Ticket, "never-written")
		must(t, err)
		want := map[string]bool{live.Ticket: true, ended.Ticket: true}
		if !maps.Equal(v.Written, want) {
			t.Fatalf("written: got %v, want %v (a void mark and an unknown ticket are not)", v.Written, want)
		}
		if v.Recent != nil || !v.RecentSince.IsZero() {
			t.Fatalf("a view not full: got recent %v since %v, want none", v.Recent, v.RecentSince)
		}
		before := time.Now()
		v, err = f.Orders.View(ctx, f.item, time.Now(), true)
		must(t, err)
		recent := slices.Sorted(slices.Values(v.Recent))
		wantRecent := slices.Sorted(slices.Values([]string{live.Ticket, ended.Ticket}))
		if !slices.Equal(recent, wantRecent) {
			t.Fatalf("recent: got %v, want %v (the orders, not the void mark)", recent, wantRecent)
		}
		if lo, hi := before.Add(-domain.RecentWindow-time.Millisecond), time.Now().Add(-domain.RecentWindow); v.RecentSince.Before(lo) || v.RecentSince.After(hi) {
			t.Fatalf("recent since: got %v, want the window before the view (%v to %v)", v.RecentSince, lo, hi)
		}
	})

	t.Run("reads of an unknown item", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 1)
		if rows := stockRows(t, f.Orders, f.item+1000); len(rows) != 0 {
			t.Fatalf("stock: got %v", rows)
		}
		v, err := f.Orders.View(ctx, f.item+1000, time.Time{}, true)
		if err != nil || len(v.Stock) != 0 || v.Buyers == nil || len(v.Buyers) != 0 || len(v.Keys) != 0 || len(v.Ended) != 0 {
			t.Fatalf("view: got %+v, %v; want nothing, buyers an empty map", v, err)
		}
		c, err := f.Orders.Counts(ctx, f.item+1000)
		if err != nil || c != (domain.ItemCounts{}) {
			t.Fatalf("counts: got %+v, %v", c, err)
		}
	})

	t.Run("AddStock", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 4, 2, 5)
		for _, tt := range []struct {
			name   string
			bucket int
			delta  int64
			want   string
			avail  []int64
			total  int64
		}{
			{"add", 1, 5, "", []int64{2, 7}, 9},
			{"take", 1, -3, "", []int64{2, 4}, 6},
			{"take it all", 0, -2, "", []int64{0, 4}, 4},
			{"take more than there is", 1, -5, domain.ESoldOut, []int64{0, 4}, 4},
			{"no such bucket", 2, 1, domain.ENotFound, []int64{0, 4}, 4},
			{"nothing", 0, 0, "", []int64{0, 4}, 4},
		} {
			before := f.snap(t)
			err := f.Orders.AddStock(ctx, f.item, tt.bucket, tt.delta)
			wantCode(t, tt.name, err, tt.want)
			s := f.snap(t)
			if !slices.Equal(s.available(), tt.avail) || s.total != tt.total {
				t.Fatalf("%s: got %s; want rows %v, total %d", tt.name, s, tt.avail, tt.total)
			}
			if tt.want == "" && tt.delta != 0 && s.rows[tt.bucket].Version != before.rows[tt.bucket].Version+1 {
				t.Fatalf("%s: got version %d, want %d", tt.name, s.rows[tt.bucket].Version, before.rows[tt.bucket].Version+1)
			}
			if tt.want != "" || tt.delta == 0 { // a change of nothing changes nothing
				f.same(t, tt.name, before)
			}
		}
	})

	t.Run("MoveStock", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 9, 3, 5)
		for _, tt := range []struct {
			name     string
			from, to int
			n        int64
			want     string
			avail    []int64
		}{
			{"up", 0, 2, 2, "", []int64{1, 3, 5}},
			{"down", 2, 1, 4, "", []int64{1, 7, 1}},
			{"more than there is", 0, 1, 2, domain.ESoldOut, []int64{1, 7, 1}},
			{"to no such bucket", 1, 3, 1, domain.ENotFound, []int64{1, 7, 1}},
			{"from no such bucket", 3, 1, 1, domain.ENotFound, []int64{1, 7, 1}},
		} {
			before := f.snap(t)
			wantCode(t, tt.name, f.Orders.MoveStock(ctx, f.item, tt.from, tt.to, tt.n), tt.want)
			s := f.snap(t)
			if !slices.Equal(s.available(), tt.avail) || s.total != 9 {
				t.Fatalf("%s: got %s; want rows %v, total 9", tt.name, s, tt.avail)
			}
			if tt.want != "" {
				f.same(t, tt.name, before)
				continue
			}
			if s.rows[tt.from].Version != before.rows[tt.from].Version+1 || s.rows[tt.to].Version != before.rows[tt.to].Version+1 {
				t.Fatalf("%s: got versions %v after %v; want both rows bumped once", tt.name, s.versions(), before.versions())
			}
		}
	})

	t.Run("Orders lists the newest first, up to the limit, 100 by default", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 300, 1, 0)
		var last domain.Order
		for n := 0; n < 205; n++ {
			w, err := f.Orders.WriteOrder(ctx, f.req(1, 0, 1), 0)
			must(t, err)
			last = w.Order
		}
		for _, limit := range []int{0, 200} {
			got, err := f.Orders.Orders(ctx, domain.OrderQuery{UserID: 1, Limit: limit})
			must(t, err)
			want := cmp.Or(limit, 100)
			if len(got) != want || got[0].ID != last.ID || got[want-1].ID >= got[want-2].ID {
				t.Fatalf("limit %d: got %d orders from %d, want the newest %d from %d down", limit, len(got), got[0].ID, want, last.ID)
			}
		}
	})

	t.Run("what the store refuses", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 5)
		before := f.snap(t)
		for _, qty := range []int{0, -2} {
			_, err := f.Orders.WriteOrder(ctx, f.req(1, 0, qty), 5)
			wantCode(t, fmt.Sprintf("quantity %d", qty), err, domain.EBadRequest)
		}
		f.same(t, "no and negative units", before)
		o := f.write(t, f.req(2, 0, 3))
		before = f.snap(t)
		_, _, err := f.Orders.EndOrder(ctx, 2, o.ID, domain.OrderPaid)
		wantCode(t, "end as paid", err, domain.EBadRequest)
		f.same(t, "an order ended as paid", before)
	})

	t.Run("orders of several buckets", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 6, 3, 5)
		r := f.req(1, 2, 4)
		r.Parts = []domain.Part{{Bucket: 2, Quantity: 2}, {Bucket: 0, Quantity: 2}}
		o := f.write(t, r)
		if !slices.Equal(o.Parts, r.Parts) || o.Bucket != 2 {
			t.Fatalf("written: got %+v, want its parts", o)
		}
		f.want(t, "after", []int64{0, 2, 0}, map[int64]int64{1: 4}, domain.ItemCounts{Orders: 1, Units: 4})
		got, err := f.Orders.OrderByTicket(ctx, r.Ticket)
		if err != nil || !slices.Equal(got.Parts, r.Parts) {
			t.Fatalf("read back: got %+v, %v; want its parts", got, err)
		}
		_, changed, err := f.Orders.EndOrder(ctx, 1, o.ID, domain.OrderCancelled)
		if err != nil || !changed {
			t.Fatalf("cancel: got %v, %v", changed, err)
		}
		f.want(t, "cancelled", []int64{2, 2, 2}, map[int64]int64{}, domain.ItemCounts{})
		short := f.req(2, 1, 3)
		short.Parts = []domain.Part{{Bucket: 1, Quantity: 2}, {Bucket: 2, Quantity: 1}}
		short.Parts[0].Quantity = 3
		short.Quantity = 4
		_, err = f.Orders.WriteOrder(ctx, short, 5)
		wantCode(t, "a part more than its bucket holds", err, domain.ESoldOut)
		f.want(t, "refused", []int64{2, 2, 2}, map[int64]int64{}, domain.ItemCounts{})
	})

	t.Run("idempotency keys are unique per shopper and item", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 5)
		r := f.req(1, 0, 2)
		r.IdemKey = "k1"
		o := f.write(t, r)
		if o.IdemKey != "k1" {
			t.Fatalf("written: got key %q, want k1", o.IdemKey)
		}
		before := f.snap(t)
		again := f.req(1, 0, 2) // a new ticket: the ledger lost the key
		again.IdemKey = "k1"
		w, err := f.Orders.WriteOrder(ctx, again, 5)
		if err != nil || !w.Replay || w.Duplicate {
			t.Fatalf("another ticket of the key: got %+v, %v; want a replay", w, err)
		}
		sameOrder(t, "replayed", w.Order, o)
		f.same(t, "a replay", before)
		if _, err := f.Orders.OrderByTicket(ctx, again.Ticket); !domain.IsCode(err, domain.ENotFound) {
			t.Fatalf("the replayed ticket: got %v, want no row", err)
		}
		// The replay is kept: the ticket's result may live only in the ledger.
		if got, err := f.Orders.ReplayOf(ctx, again.Ticket); err != nil {
			t.Fatalf("the order the ticket replayed: %v", err)
		} else {
			sameOrder(t, "ReplayOf", got, o)
		}
		for _, tk := range []string{r.Ticket, "never-written"} {
			if _, err := f.Orders.ReplayOf(ctx, tk); !domain.IsCode(err, domain.ENotFound) {
				t.Fatalf("ReplayOf %s, which replayed nothing: got %v, want not_found", tk, err)
			}
		}
		// It is decided: a void of it finds the order it replayed and marks nothing.
		if got, voided, err := f.Orders.VoidTicket(ctx, again); err != nil || voided || !got.Replayed(again.Ticket) || got.ID != o.ID {
			t.Fatalf("void of the replayed ticket: got %+v, voided %v, %v; want order %d, not voided", got, voided, err, o.ID)
		}
		if _, err := f.Orders.OrderByTicket(ctx, again.Ticket); !domain.IsCode(err, domain.ENotFound) {
			t.Fatalf("the replayed ticket after a void: got %v, want still no row", err)
		}
		other := f.req(2, 0, 1) // another shopper, same key
		other.IdemKey = "k1"
		f.write(t, other)
		// After a cancel the key still names the first order.
		_, _, err = f.Orders.EndOrder(ctx, 1, o.ID, domain.OrderCancelled)
		must(t, err)
		w, err = f.Orders.WriteOrder(ctx, again, 5)
		if err != nil || !w.Replay || w.Order.Status != domain.OrderCancelled {
			t.Fatalf("after cancel: got %+v, %v; want the cancelled order replayed", w, err)
		}
		f.write(t, f.req(3, 0, 1)) // no key
		wantKeys(t, f.Orders, f.item, domain.KeyTicket{UserID: 1, Key: "k1", Ticket: r.Ticket}, domain.KeyTicket{UserID: 2, Key: "k1", Ticket: other.Ticket})
	})

	t.Run("keys and tickets compare exactly", func(t *testing.T) {
		// The ledger tells "k" from "K": so must the store, or the second shopper's
		// order would replay the first.
		f := newOrderFixture(t, newFn, 10, 1, 5)
		var written []domain.Order
		for _, key := range []string{"k", "K", "k "} {
			r := f.req(1, 0, 1)
			r.IdemKey = key
			w, err := f.Orders.WriteOrder(ctx, r, 5)
			if err != nil || w.Replay || w.Duplicate || w.Order.IdemKey != key {
				t.Fatalf("key %q after %d others: got %+v, %v; want an order of its own", key, len(written), w, err)
			}
			written = append(written, w.Order)
		}
		tk := written[0].Ticket
		for _, alias := range []string{strings.ToUpper(tk), tk + " "} {
			if _, err := f.Orders.OrderByTicket(ctx, alias); !domain.IsCode(err, domain.ENotFound) {
				t.Errorf("OrderByTicket(%q) of ticket %q: got %v, want not_found", alias, tk, err)
			}
		}
		f.want(t, "after", []int64{7}, map[int64]int64{1: 3}, domain.ItemCounts{Orders: 3, Units: 3})
	})

	t.Run("VoidTicket fences late writes", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 5)
		r := f.req(1, 0, 2)
		r.IdemKey = "k"
		v, voided, err := f.Orders.VoidTicket(ctx, r)
		if err != nil || !voided || v.Status != domain.OrderVoid {
			t.Fatalf("void: got %+v, %v, %v", v, voided, err)
		}
		f.want(t, "voided", []int64{10}, map[int64]int64{}, domain.ItemCounts{})
		_, err = f.Orders.WriteOrder(ctx, r, 5)
		wantCode(t, "a write of the voided ticket", err, domain.EVoided)
		f.want(t, "after the late write", []int64{10}, map[int64]int64{}, domain.ItemCounts{})
		if v2, voided, err := f.Orders.VoidTicket(ctx, r); err != nil || voided || v2.ID != v.ID {
			t.Fatalf("void again: got %+v, %v, %v; want the same mark", v2, voided, err)
		}
		// The void mark is no order: the key is free, and reads do not see it.
		retry := f.req(1, 0, 2)
		retry.IdemKey = "k"
		o := f.write(t, retry)
		if list, err := f.Orders.Orders(ctx, domain.OrderQuery{UserID: 1}); err != nil || len(list) != 1 || list[0].ID != o.ID {
			t.Fatalf("orders: got %+v, %v; want only the order", list, err)
		}
		_, err = f.Orders.Order(ctx, 1, v.ID)
		wantCode(t, "Order of a void mark", err, domain.ENotFound)
		_, _, err = f.Orders.EndOrder(ctx, 1, v.ID, domain.OrderCancelled)
		wantCode(t, "EndOrder of a void mark", err, domain.ENotFound)
		// A ticket written first is not voided.
		if got, voided, err := f.Orders.VoidTicket(ctx, retry); err != nil || voided || got.ID != o.ID || got.Status != domain.OrderCreated {
			t.Fatalf("void of a written ticket: got %+v, %v, %v; want its order", got, voided, err)
		}
		rows, err := f.Orders.OrdersByTickets(ctx, []string{r.Ticket, retry.Ticket, f.req(9, 0, 1).Ticket})
		if err != nil || len(rows) != 2 || rows[r.Ticket].Status != domain.OrderVoid || rows[retry.Ticket].ID != o.ID {
			t.Fatalf("OrdersByTickets: got %+v, %v", rows, err)
		}
		wantKeys(t, f.Orders, f.item, domain.KeyTicket{UserID: 1, Key: "k", Ticket: retry.Ticket}) // a void mark holds no key
	})

	t.Run("hammer: a write and a void of one ticket, one wins", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 100, 1, 100)
		const n = 40
		w := &oneWinner{won: map[string]string{}}
		hammer(2*n, func(g int) string {
			r := f.req(1, 0, 1)
			r.Ticket = domain.NewTicket(f.a.ID, f.item, fmt.Sprintf("race%d", g/2))
			var what string
			if g%2 == 0 {
				_, err := writeRetryingW(t, f.Orders, r, 100)
				if err == nil {
					what = "written"
				}
			} else if _, voided, err := f.Orders.VoidTicket(ctx, r); err == nil && voided {
				what = "voided"
			}
			w.record(t, r.Ticket, what)
			return what
		})
		won := w.won
		if len(won) != n {
			t.Fatalf("got %d tickets decided, want %d", len(won), n)
		}
		written := 0
		for _, w := range won {
			if w == "written" {
				written++
			}
		}
		buyers := map[int64]int64{}
		if written > 0 {
			buyers[1] = int64(written)
		}
		f.want(t, "after", []int64{int64(100 - written)}, buyers, domain.ItemCounts{Orders: int64(written), Units: int64(written)})
	})

	t.Run("hammer: a replay and a void of one ticket, one wins", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 100, 1, 100)
		first := f.req(1, 0, 1)
		first.IdemKey = "k"
		o := f.write(t, first) // the key's order
		const n = 40
		w := &oneWinner{won: map[string]string{}}
		hammer(2*n, func(g int) string {
			r := f.req(1, 0, 1)
			r.IdemKey = "k"
			r.Ticket = domain.NewTicket(f.a.ID, f.item, fmt.Sprintf("again%d", g/2))
			var what string
			if g%2 == 0 {
				if w, err := writeRetryingW(t, f.Orders, r, 100); err == nil && w.Replay && w.Order.ID == o.ID {
					what = "replayed"
				} else if !domain.IsCode(err, domain.EVoided) {
					t.Errorf("write %s: got %+v, %v; want a replay or voided", r.Ticket, w, err)
				}
			} else if got, voided, err := f.Orders.VoidTicket(ctx, r); err == nil && (voided || got.Ticket == r.Ticket && got.Status == domain.OrderVoid) {
				// A write that met this void's claim may have landed its mark first.
				what = "voided"
			} else if err != nil || got.ID != o.ID {
				t.Errorf("void %s: got %+v, %v; want voided or the key's order", r.Ticket, got, err)
			}
			w.record(t, r.Ticket, what)
			return what
		})
		won := w.won
		if len(won) != n {
			t.Fatalf("got %d tickets decided, want %d", len(won), n)
		}
		for ticket, w := range won {
			own, oerr := f.Orders.OrderByTicket(ctx, ticket)
			rep, rerr := f.Orders.ReplayOf(ctx, ticket)
			switch {
			case w == "voided" && (oerr != nil || own.Status != domain.OrderVoid):
				t.Errorf("ticket %s voided: its row %+v, %v", ticket, own, oerr)
			case w == "replayed" && (rerr != nil || rep.ID != o.ID || !domain.IsCode(oerr, domain.ENotFound)):
				t.Errorf("ticket %s replayed: ReplayOf %+v, %v; its own row %+v, %v", ticket, rep, rerr, own, oerr)
			}
		}
		f.want(t, "after", []int64{99}, map[int64]int64{1: 1}, domain.ItemCounts{Orders: 1, Units: 1})
	})

	t.Run("values are copies", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 5)
		o := f.write(t, f.req(1, 0, 1))
		before := f.snap(t)
		before.buyers[1] = 99
		before.rows[0].Available = 99
		f.want(t, "after changing what was read", []int64{9}, map[int64]int64{1: 1}, domain.ItemCounts{Orders: 1, Units: 1})
		list, err := f.Orders.Orders(ctx, domain.OrderQuery{UserID: 1})
		must(t, err)
		list[0].Status = domain.OrderPaid
		got, err := f.Orders.Order(ctx, 1, o.ID)
		must(t, err)
		sameOrder(t, "after changing a listed order", got, o)
	})

	t.Run("hammer: concurrent buyers never oversell", func(t *testing.T) {
		const stock, users = 25, 60
		f := newOrderFixture(t, newFn, stock, 1, 1)
		codes := hammer(users, func(g int) string {
			return writeRetrying(t, f.Orders, f.req(int64(g+1), 0, 1), 1)
		})
		if codes[""] != stock || codes[domain.ESoldOut] != users-stock {
			t.Fatalf("got outcomes %v, want %d written and %d sold_out", codes, stock, users-stock)
		}
		buyers := map[int64]int64{}
		for u, n := range f.snap(t).buyers {
			buyers[u] = n
		}
		if len(buyers) != stock {
			t.Fatalf("got %d buyers, want %d", len(buyers), stock)
		}
		f.want(t, "after", []int64{0}, buyers, domain.ItemCounts{Orders: stock, Units: stock})
	})

	t.Run("hammer: one user never passes the limit", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 100, 1, 3)
		codes := hammer(20, func(g int) string { return writeRetrying(t, f.Orders, f.req(1, 0, 1), 3) })
		if codes[""] != 3 || codes[domain.ELimitExceeded] != 17 {
			t.Fatalf("got outcomes %v, want 3 written and 17 limit_exceeded", codes)
		}
		f.want(t, "after", []int64{97}, map[int64]int64{1: 3}, domain.ItemCounts{Orders: 3, Units: 3})
	})

	t.Run("hammer: one ticket is written once", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 100, 1, 3)
		r := f.req(1, 0, 2)
		var mu sync.Mutex
		ids := map[int64]int{}
		codes := hammer(20, func(int) string {
			w, err := writeRetryingW(t, f.Orders, r, 3)
			if err != nil {
				return domain.ErrorCode(err)
			}
			mu.Lock()
			ids[w.Order.ID]++
			mu.Unlock()
			if w.Duplicate {
				return "duplicate"
			}
			return ""
		})
		if codes[""] != 1 || codes["duplicate"] != 19 || len(ids) != 1 {
			t.Fatalf("got outcomes %v and order ids %v, want one order written and 19 duplicates of it", codes, ids)
		}
		f.want(t, "after", []int64{98}, map[int64]int64{1: 2}, domain.ItemCounts{Orders: 1, Units: 2})
	})

	t.Run("hammer: batches and single writes share the row", func(t *testing.T) {
		const stock = 30
		f := newOrderFixture(t, newFn, stock, 1, 1)
		var mu sync.Mutex
		written := 0
		codes := hammer(16, func(g int) string {
			if g%2 == 0 {
				return writeRetrying(t, f.Orders, f.req(int64(1000+g), 0, 1), 1)
			}
			batch := make([]domain.OrderRequest, 5)
			for k := range batch {
				batch[k] = f.req(int64(g*10+k), 0, 1)
			}
			_, errs := f.Orders.WriteBatch(ctx, batch, 1)
			for k, err := range errs {
				ok := err == nil
				if transient(err) {
					ok = writeRetrying(t, f.Orders, batch[k], 1) == ""
				}
				if ok {
					mu.Lock()
					written++
					mu.Unlock()
				}
			}
			return "batch"
		})
		if got := codes[""] + written; got != stock {
			t.Fatalf("got %d orders written (%v, %d in batches), want %d", got, codes, written, stock)
		}
		c := f.snap(t)
		if c.counts != (domain.ItemCounts{Orders: stock, Units: stock}) || c.available()[0] != 0 {
			t.Fatalf("after: got %s", c)
		}
	})

	t.Run("hammer: an order ends once", func(t *testing.T) {
		f := newOrderFixture(t, newFn, 10, 1, 3)
		o := f.write(t, f.req(1, 0, 3))
		codes := hammer(16, func(g int) string {
			to := domain.OrderCancelled
			if g%2 == 1 {
				to = domain.OrderExpired
			}
			for {
				_, changed, err := f.Orders.EndOrder(ctx, o.UserID, o.ID, to)
				if transient(err) {
					continue
				}
				if err != nil {
					return domain.ErrorCode(err)
				}
				if changed {
					return "changed"
				}
				return "unchanged"
			}
		})
		if codes["changed"] != 1 || codes["unchanged"] != 15 {
			t.Fatalf("got outcomes %v, want one change", codes)
		}
		f.want(t, "after", []int64{10}, map[int64]int64{}, domain.ItemCounts{})
	})
}

// hammer runs f on n goroutines at once and counts what they return.
func hammer(n int, f func(g int) string) map[string]int {
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGate
			c := f(g)
			mu.Lock()
			codes[c]++
			mu.Unlock()
		}()
	}
	close(startGate)
	wg.Wait()
	return codes
}

// oneWinner records which of two racers decided each ticket ("" none), and fails a
// ticket two decided.
type oneWinner struct {
	mu  sync.Mutex
	won map[string]string
}

func (w *oneWinner) record(t *testing.T, ticket, what string) {
	if what == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if prev, ok := w.won[ticket]; ok {
		t.Errorf("ticket %s: %s and %s", ticket, prev, what)
	}
	w.won[ticket] = what
}

// writeRetryingW writes r, trying again after a failure the store marks as leaving
// nothing (a lost race, a deadlock), as a worker does; it returns the outcome.
func writeRetryingW(tb testing.TB, o domain.OrderStore, r domain.OrderRequest, limit int) (domain.Written, error) {
	for attempt := 1; ; attempt++ {
		w, err := o.WriteOrder(context.Background(), r, limit)
		if !transient(err) {
			return w, err
		}
		if !domain.IsNotCommitted(err) || attempt == 50 {
			tb.Errorf("write %s: %v", r.Ticket, err)
			return w, err
		}
		tb.Logf("write %s, attempt %d: %v; trying again", r.Ticket, attempt, err)
		time.Sleep(time.Millisecond)
	}
}

// writeRetrying is writeRetryingW that returns the error code, "" for written.
func writeRetrying(tb testing.TB, o domain.OrderStore, r domain.OrderRequest, limit int) string {
	_, err := writeRetryingW(tb, o, r, limit)
	return domain.ErrorCode(err)
}

// wantKeys fails unless the idempotency keys an item's orders hold are want, in any
// order.
func wantKeys(tb testing.TB, o domain.OrderStore, itemID int64, want ...domain.KeyTicket) {
	tb.Helper()
	v, err := o.View(context.Background(), itemID, time.Now(), true)
	must(tb, err)
	got := v.Keys
	order := func(a, b domain.KeyTicket) int { return strings.Compare(a.Ticket, b.Ticket) }
	slices.SortFunc(got, order)
	slices.SortFunc(want, order)
	if !slices.Equal(got, want) {
		tb.Fatalf("KeyTickets: got %+v, want %+v", got, want)
	}
}
