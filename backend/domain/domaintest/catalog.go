package domaintest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// Stores is a catalog and the order store that holds its items' stock, orders and
// buyers, as one adapter (or two sharing a database) provides them.
type Stores struct {
	Catalog domain.Catalog
	Orders  domain.OrderStore
}

// newActivity describes an activity of one item per stock figure, open from an hour
// ago for two hours, with times at millisecond precision (what the stores keep).
func newActivity(strategy domain.Strategy, limit, buckets int, stock ...int64) *domain.Activity {
	now := time.Now().UTC().Truncate(time.Millisecond)
	a := &domain.Activity{Name: "contract sale", Start: now.Add(-time.Hour), End: now.Add(time.Hour),
		Strategy: strategy, PerUserLimit: limit, BucketCount: buckets}
	for n, s := range stock {
		a.Items = append(a.Items, domain.Item{Name: fmt.Sprintf("item %d", n), PriceCents: 100 * int64(n+1), TotalStock: s})
	}
	return a
}

func create(tb testing.TB, c domain.Catalog, a *domain.Activity) *domain.Activity {
	tb.Helper()
	must(tb, c.CreateActivity(context.Background(), a))
	return a
}

func readActivity(tb testing.TB, c domain.Catalog, id int64) *domain.Activity {
	tb.Helper()
	a, err := c.Activity(context.Background(), id)
	must(tb, err)
	return a
}

func stockRows(tb testing.TB, o domain.OrderStore, itemID int64) []domain.StockRow {
	tb.Helper()
	rows, err := o.Stock(context.Background(), itemID)
	must(tb, err)
	return rows
}

// available is an item's available units by bucket, checking the rows come in
// bucket order.
func available(tb testing.TB, o domain.OrderStore, itemID int64) []int64 {
	tb.Helper()
	var out []int64
	for b, r := range stockRows(tb, o, itemID) {
		if r.Bucket != b {
			tb.Fatalf("item %d: got row of bucket %d at %d", itemID, r.Bucket, b)
		}
		out = append(out, r.Available)
	}
	return out
}

// sameActivity fails unless got is want as stored: same fields, same times, items in
// order.
func sameActivity(tb testing.TB, what string, got, want *domain.Activity) {
	tb.Helper()
	if got.ID != want.ID || got.Name != want.Name || !got.Start.Equal(want.Start) || !got.End.Equal(want.End) ||
		got.State != want.State || got.Strategy != want.Strategy || got.PerUserLimit != want.PerUserLimit ||
		got.BucketCount != want.BucketCount || got.Version != want.Version || !slices.Equal(got.Items, want.Items) || got.Room != want.Room {
		tb.Fatalf("%s: got %+v, want %+v", what, *got, *want)
	}
}

// TestCatalog checks a domain.Catalog against its contract. newFn returns an empty
// catalog (and the order store that shares its items) for each subtest.
func TestCatalog(t *testing.T, newFn func(t *testing.T) Stores) {
	ctx := context.Background()
	testItems(t, newFn)

	t.Run("CreateActivity fills in ids, state and version", func(t *testing.T) {
		s := newFn(t)
		a := newActivity(domain.StrategyBucket, 2, 3, 10, 0, 2)
		a.State, a.Version = domain.StatePublished, 7 // whatever the caller says
		create(t, s.Catalog, a)
		if a.ID <= 0 || a.State != domain.StateDraft || a.Version != 1 {
			t.Fatalf("got id %d, state %q, version %d; want a positive id, draft, 1", a.ID, a.State, a.Version)
		}
		if a.Room != (domain.Room{Factor: domain.DefaultRoomFactor}) {
			t.Fatalf("got waiting room %+v; want off with the default k %g", a.Room, domain.DefaultRoomFactor)
		}
		seen := map[int64]bool{}
		for n, it := range a.Items {
			if it.ID <= 0 || seen[it.ID] || it.ActivityID != a.ID || n > 0 && it.ID <= a.Items[n-1].ID {
				t.Fatalf("item %d: got id %d of activity %d; want a new ascending id of activity %d", n, it.ID, it.ActivityID, a.ID)
			}
			seen[it.ID] = true
		}
		sameActivity(t, "read back", readActivity(t, s.Catalog, a.ID), a)
		b := create(t, s.Catalog, newActivity(domain.StrategySync, 1, 1, 1))
		if b.ID <= a.ID || b.Items[0].ID <= a.Items[2].ID {
			t.Fatalf("second activity: got ids %d/%d after %d/%d; want larger ones", b.ID, b.Items[0].ID, a.ID, a.Items[2].ID)
		}
	})

	t.Run("CreateActivity splits the stock over the buckets", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategyBucket, 1, 3, 10, 0, 2))
		for n, want := range [][]int64{{4, 3, 3}, {0, 0, 0}, {1, 1, 0}} {
			rows := stockRows(t, s.Orders, a.Items[n].ID)
			var got []int64
			for b, r := range rows {
				if r.Bucket != b || r.Version != 0 {
					t.Fatalf("item %d row %d: got bucket %d version %d; want bucket %d version 0", n, b, r.Bucket, r.Version, b)
				}
				got = append(got, r.Available)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("item %d: got rows %v, want %v", n, got, want)
			}
		}
	})

	t.Run("times are kept to the millisecond, in UTC", func(t *testing.T) {
		s := newFn(t)
		a := newActivity(domain.StrategySync, 1, 1, 1)
		loc := time.FixedZone("UTC+8", 8*3600)
		a.Start = time.Date(2030, 1, 2, 3, 4, 5, 123_987_654, loc)
		a.End = a.Start.Add(time.Hour + 999_999)
		create(t, s.Catalog, a)
		got := readActivity(t, s.Catalog, a.ID)
		wantStart, wantEnd := a.Start.Truncate(time.Millisecond), a.End.Truncate(time.Millisecond)
		if !got.Start.Equal(wantStart) || !got.End.Equal(wantEnd) || got.Start.Location() != time.UTC || got.End.Location() != time.UTC {
			t.Fatalf("got %v to %v; want %v to %v in UTC", got.Start, got.End, wantStart.UTC(), wantEnd.UTC())
		}
		later := a.End.Add(1_500_000) // 1.5 ms
		must(t, s.Catalog.UpdateActivity(ctx, a.ID, domain.ActivityChange{End: &later}))
		if got := readActivity(t, s.Catalog, a.ID).End; !got.Equal(later.Truncate(time.Millisecond)) {
			t.Fatalf("updated end: got %v, want %v", got, later.Truncate(time.Millisecond))
		}
	})

	t.Run("unknown ids are not_found", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategySync, 1, 1, 1))
		_, err := s.Catalog.Activity(ctx, a.ID+1000)
		wantCode(t, "Activity", err, domain.ENotFound)
		_, err = s.Catalog.Item(ctx, a.Items[0].ID+1000)
		wantCode(t, "Item", err, domain.ENotFound)
		wantCode(t, "SetState", s.Catalog.SetState(ctx, a.ID+1000, domain.StatePublished), domain.ENotFound)
		name := "x"
		wantCode(t, "UpdateActivity", s.Catalog.UpdateActivity(ctx, a.ID+1000, domain.ActivityChange{Name: &name}), domain.ENotFound)
		wantCode(t, "UpdateActivity of an item not in it", s.Catalog.UpdateActivity(ctx, a.ID,
			domain.ActivityChange{Items: []domain.ItemChange{{ItemID: a.Items[0].ID + 1000, Name: &name}}}), domain.ENotFound)
		sameActivity(t, "after the refusals", readActivity(t, s.Catalog, a.ID), a)
	})

	t.Run("Item", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategySync, 1, 1, 5, 6))
		for _, want := range a.Items {
			got, err := s.Catalog.Item(ctx, want.ID)
			if err != nil || got != want {
				t.Fatalf("got %+v, %v; want %+v", got, err, want)
			}
		}
	})

	t.Run("Activities lists newest first, published or all", func(t *testing.T) {
		s := newFn(t)
		if as, err := s.Catalog.Activities(ctx, domain.ActivityQuery{All: true}); err != nil || len(as) != 0 {
			t.Fatalf("empty catalog: got %d activities, %v", len(as), err)
		}
		var all []*domain.Activity
		for n := 0; n < 4; n++ {
			all = append(all, create(t, s.Catalog, newActivity(domain.StrategyAsync, 1, 1, int64(n+1))))
		}
		for _, n := range []int{0, 2} {
			must(t, s.Catalog.SetState(ctx, all[n].ID, domain.StatePublished))
			all[n].State, all[n].Version = domain.StatePublished, 2
		}
		must(t, s.Catalog.SetState(ctx, all[3].ID, domain.StateOffline))
		all[3].State, all[3].Version = domain.StateOffline, 2
		for _, tt := range []struct {
			q    domain.ActivityQuery
			want []int
		}{
			{domain.ActivityQuery{}, []int{2, 0}},
			{domain.ActivityQuery{All: true}, []int{3, 2, 1, 0}},
			{domain.ActivityQuery{All: true, Limit: 2}, []int{3, 2}},
			{domain.ActivityQuery{All: true, Before: all[2].ID, Limit: 2}, []int{1, 0}},
			{domain.ActivityQuery{Before: all[2].ID}, []int{0}},
		} {
			got, err := s.Catalog.Activities(ctx, tt.q)
			must(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("%+v: got %d activities, want %d", tt.q, len(got), len(tt.want))
			}
			for k, n := range tt.want {
				sameActivity(t, fmt.Sprintf("%+v, #%d", tt.q, k), got[k], all[n])
			}
		}
	})

	t.Run("SetState changes the state and bumps the version", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategySync, 1, 1, 1))
		for n, st := range []domain.State{domain.StatePublished, domain.StateOffline, domain.StateOffline, domain.StatePublished} {
			must(t, s.Catalog.SetState(ctx, a.ID, st))
			got := readActivity(t, s.Catalog, a.ID)
			if got.State != st || got.Version != int64(n+2) {
				t.Fatalf("step %d: got %s v%d, want %s v%d", n, got.State, got.Version, st, n+2)
			}
		}
	})

	t.Run("UpdateActivity changes the given fields and bumps the version", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategySync, 1, 1, 1))
		name, limit := "renamed", 5
		start, end := a.Start.Add(time.Minute), a.End.Add(time.Minute)
		on, off, k := true, false, 2.25
		for _, tt := range []struct {
			name   string
			change domain.ActivityChange
			apply  func(*domain.Activity)
		}{
			{"nothing", domain.ActivityChange{}, func(*domain.Activity) {}},
			{"name", domain.ActivityChange{Name: &name}, func(a *domain.Activity) { a.Name = name }},
			{"window", domain.ActivityChange{Start: &start, End: &end}, func(a *domain.Activity) { a.Start, a.End = start, end }},
			{"limit", domain.ActivityChange{PerUserLimit: &limit}, func(a *domain.Activity) { a.PerUserLimit = limit }},
			{"waiting room on, k", domain.ActivityChange{RoomOn: &on, RoomFactor: &k}, func(a *domain.Activity) { a.Room = domain.Room{On: true, Factor: k} }},
			{"waiting room off", domain.ActivityChange{RoomOn: &off}, func(a *domain.Activity) { a.Room.On = false }},
		} {
			must(t, s.Catalog.UpdateActivity(ctx, a.ID, tt.change))
			tt.apply(a)
			a.Version++
			sameActivity(t, tt.name, readActivity(t, s.Catalog, a.ID), a)
		}
	})

	t.Run("UpdateActivity changes items and stock in one step", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategyBucket, 1, 2, 5, 2))
		name, price := "renamed", int64(777)
		must(t, s.Catalog.UpdateActivity(ctx, a.ID, domain.ActivityChange{Items: []domain.ItemChange{
			{ItemID: a.Items[0].ID, Name: &name, Stock: []domain.StockDelta{{Bucket: 0, Delta: -3}, {Bucket: 1, Delta: 4}}},
			{ItemID: a.Items[1].ID, PriceCents: &price},
		}}))
		a.Items[0].Name, a.Items[0].TotalStock, a.Items[1].PriceCents = name, 6, price
		a.Version++
		sameActivity(t, "after", readActivity(t, s.Catalog, a.ID), a)
		if got := available(t, s.Orders, a.Items[0].ID); !slices.Equal(got, []int64{0, 6}) {
			t.Fatalf("stock: got %v, want [0 6]", got)
		}
		// A delta that takes more than a bucket holds refuses the whole change.
		other := "never"
		err := s.Catalog.UpdateActivity(ctx, a.ID, domain.ActivityChange{Name: &other, Items: []domain.ItemChange{
			{ItemID: a.Items[1].ID, Name: &other},
			{ItemID: a.Items[0].ID, Stock: []domain.StockDelta{{Bucket: 1, Delta: 2}, {Bucket: 0, Delta: -1}}},
		}})
		wantCode(t, "taking more than a bucket holds", err, domain.EConflict)
		sameActivity(t, "after the refusal", readActivity(t, s.Catalog, a.ID), a)
		if got := available(t, s.Orders, a.Items[0].ID); !slices.Equal(got, []int64{0, 6}) {
			t.Fatalf("stock after the refusal: got %v, want [0 6]", got)
		}
	})

	t.Run("UpdateActivity refuses stock worked out from another total", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategySync, 1, 1, 5))
		stale, total := int64(4), int64(5)
		name := "never"
		err := s.Catalog.UpdateActivity(ctx, a.ID, domain.ActivityChange{Name: &name, Items: []domain.ItemChange{
			{ItemID: a.Items[0].ID, Stock: []domain.StockDelta{{Bucket: 0, Delta: 3}}, FromTotal: &stale},
		}})
		if !errors.Is(err, domain.ErrStockChanged) || !domain.IsNotCommitted(err) {
			t.Fatalf("a change worked out from 4 units on an item of 5: got %v, want ErrStockChanged, not committed", err)
		}
		sameActivity(t, "after the refusal", readActivity(t, s.Catalog, a.ID), a)
		if got := available(t, s.Orders, a.Items[0].ID); !slices.Equal(got, []int64{5}) {
			t.Fatalf("stock after the refusal: got %v, want [5]", got)
		}
		must(t, s.Catalog.UpdateActivity(ctx, a.ID, domain.ActivityChange{Items: []domain.ItemChange{
			{ItemID: a.Items[0].ID, Stock: []domain.StockDelta{{Bucket: 0, Delta: 3}}, FromTotal: &total},
		}}))
		a.Items[0].TotalStock = 8
		a.Version++
		sameActivity(t, "worked out from the right total", readActivity(t, s.Catalog, a.ID), a)
	})

	t.Run("a bucket count adds empty rows and keeps the ones past the count", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategyBucket, 1, 2, 5, 2))
		for _, tt := range []struct {
			n    int
			want [][]int64
		}{
			{4, [][]int64{{3, 2, 0, 0}, {1, 1, 0, 0}}},
			{1, [][]int64{{3, 2, 0, 0}, {1, 1, 0, 0}}},
			{5, [][]int64{{3, 2, 0, 0, 0}, {1, 1, 0, 0, 0}}},
		} {
			must(t, s.Catalog.UpdateActivity(ctx, a.ID, domain.ActivityChange{BucketCount: &tt.n}))
			a.BucketCount = tt.n
			a.Version++
			sameActivity(t, fmt.Sprintf("%d buckets", tt.n), readActivity(t, s.Catalog, a.ID), a)
			for k, it := range a.Items {
				if got := available(t, s.Orders, it.ID); !slices.Equal(got, tt.want[k]) {
					t.Fatalf("%d buckets, item %d: got %v, want %v", tt.n, k, got, tt.want[k])
				}
			}
		}
	})

	t.Run("values are copies", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategySync, 1, 1, 3, 4))
		want := *a
		want.Items = slices.Clone(a.Items)
		a.Name, a.Items[0].Name = "changed by the caller", "changed by the caller"
		got := readActivity(t, s.Catalog, a.ID)
		sameActivity(t, "after changing what was created", got, &want)
		got.Name, got.Items[1].TotalStock = "changed by the reader", 999
		list, err := s.Catalog.Activities(ctx, domain.ActivityQuery{All: true})
		must(t, err)
		list[0].Items[0].PriceCents = -1
		sameActivity(t, "after changing what was read", readActivity(t, s.Catalog, a.ID), &want)
	})

	t.Run("concurrent state changes each bump the version once", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategySync, 1, 1, 1))
		const n = 16
		var wg sync.WaitGroup
		for g := 0; g < n; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := domain.StatePublished
				if g%2 == 1 {
					st = domain.StateOffline
				}
				if err := s.Catalog.SetState(ctx, a.ID, st); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got := readActivity(t, s.Catalog, a.ID).Version; got != 1+n {
			t.Fatalf("got version %d, want %d", got, 1+n)
		}
	})
}
