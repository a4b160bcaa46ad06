package domaintest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// testItems checks the catalog's side of an item's own life: its state and window
// kept as given, items added to an activity after its creation, and changes of an
// item's state and window, each bumping the activity's version.
func testItems(t *testing.T, newFn func(t *testing.T) Stores) {
	ctx := context.Background()

	t.Run("items keep their state and window", func(t *testing.T) {
		s := newFn(t)
		a := newActivity(domain.StrategySync, 1, 1, 1, 2, 3)
		a.Items[1].State = domain.ItemOffline
		a.Items[2].Start = a.Start.Add(10*time.Minute + 1_500_000) // 1.5 ms: kept to the millisecond
		a.Items[2].End = a.End.Add(-10 * time.Minute)
		start := a.Items[2].Start
		create(t, s.Catalog, a)
		want := []domain.ItemStatus{domain.ItemOnline, domain.ItemOffline, domain.ItemOnline}
		for n, it := range a.Items {
			if it.State != want[n] {
				t.Fatalf("item %d as created: got state %q, want %q", n, it.State, want[n])
			}
		}
		if !a.Items[0].Start.IsZero() || !a.Items[0].End.IsZero() {
			t.Fatalf("an item without a window: got %v to %v, want zero times", a.Items[0].Start, a.Items[0].End)
		}
		if got := a.Items[2].Start; !got.Equal(start.Truncate(time.Millisecond)) || got.Location() != time.UTC {
			t.Fatalf("an item's start as created: got %v, want %v in UTC", got, start.Truncate(time.Millisecond))
		}
		sameActivity(t, "read back", readActivity(t, s.Catalog, a.ID), a)
		for _, want := range a.Items {
			if got, err := s.Catalog.Item(ctx, want.ID); err != nil || got != want {
				t.Fatalf("Item: got %+v, %v; want %+v", got, err, want)
			}
		}
		list, err := s.Catalog.Activities(ctx, domain.ActivityQuery{All: true})
		must(t, err)
		sameActivity(t, "listed", list[0], a)
	})

	t.Run("AddItem adds an item with its stock and bumps the version", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategyBucket, 1, 3, 4))
		other := create(t, s.Catalog, newActivity(domain.StrategySync, 1, 1, 1))
		it := domain.Item{Name: "added", PriceCents: 150, TotalStock: 10, State: domain.ItemOffline, End: a.End.Add(-time.Minute)}
		must(t, s.Catalog.AddItem(ctx, a.ID, &it))
		if it.ID <= other.Items[0].ID || it.ActivityID != a.ID || it.State != domain.ItemOffline {
			t.Fatalf("added: got %+v; want a new id of activity %d, offline", it, a.ID)
		}
		a.Items = append(a.Items, it)
		a.Version++
		sameActivity(t, "after adding", readActivity(t, s.Catalog, a.ID), a)
		if got := available(t, s.Orders, it.ID); !slices.Equal(got, []int64{4, 3, 3}) {
			t.Fatalf("the added item's stock: got %v, want [4 3 3]", got)
		}
		plain := domain.Item{Name: "plain", TotalStock: 0}
		must(t, s.Catalog.AddItem(ctx, other.ID, &plain))
		if plain.State != domain.ItemOnline || !plain.Start.IsZero() {
			t.Fatalf("an item added without state or window: got %+v, want online, no window", plain)
		}
		if got := available(t, s.Orders, plain.ID); !slices.Equal(got, []int64{0}) {
			t.Fatalf("an item added without stock: got %v, want [0]", got)
		}
		wantCode(t, "an unknown activity", s.Catalog.AddItem(ctx, a.ID+1000, &domain.Item{Name: "x"}), domain.ENotFound)
		// An activity of MaxItems items takes no more.
		full := newActivity(domain.StrategySync, 1, 1)
		for n := 0; n < domain.MaxItems; n++ {
			full.Items = append(full.Items, domain.Item{Name: fmt.Sprintf("i%d", n)})
		}
		create(t, s.Catalog, full)
		wantCode(t, "an activity full of items", s.Catalog.AddItem(ctx, full.ID, &domain.Item{Name: "one too many"}), domain.EBadRequest)
		sameActivity(t, "after the refusal", readActivity(t, s.Catalog, full.ID), full)
	})

	t.Run("UpdateActivity changes items' state and window", func(t *testing.T) {
		s := newFn(t)
		a := create(t, s.Catalog, newActivity(domain.StrategySync, 1, 1, 5, 6))
		off, on := domain.ItemOffline, domain.ItemOnline
		start, end := a.Start.Add(time.Minute), a.End.Add(-time.Minute)
		var zero time.Time
		for _, tt := range []struct {
			name   string
			change []domain.ItemChange
			apply  func(its []domain.Item)
		}{
			{"offline", []domain.ItemChange{{ItemID: a.Items[0].ID, State: &off}},
				func(its []domain.Item) { its[0].State = off }},
			{"a window of its own", []domain.ItemChange{{ItemID: a.Items[1].ID, Start: &start, End: &end}},
				func(its []domain.Item) { its[1].Start, its[1].End = start, end }},
			{"back online, the window dropped", []domain.ItemChange{{ItemID: a.Items[0].ID, State: &on}, {ItemID: a.Items[1].ID, Start: &zero, End: &zero}},
				func(its []domain.Item) { its[0].State, its[1].Start, its[1].End = on, zero, zero }},
		} {
			must(t, s.Catalog.UpdateActivity(ctx, a.ID, domain.ActivityChange{Items: tt.change}))
			tt.apply(a.Items)
			a.Version++
			sameActivity(t, tt.name, readActivity(t, s.Catalog, a.ID), a)
		}
		if got := available(t, s.Orders, a.Items[0].ID); !slices.Equal(got, []int64{5}) {
			t.Fatalf("stock after the changes: got %v, want [5]", got)
		}
	})

	t.Run("Activities selects one state", func(t *testing.T) {
		s := newFn(t)
		var all []*domain.Activity
		for n := 0; n < 5; n++ {
			all = append(all, create(t, s.Catalog, newActivity(domain.StrategySync, 1, 1, 1)))
		}
		for _, n := range []int{1, 3} {
			must(t, s.Catalog.SetState(ctx, all[n].ID, domain.StateOffline))
			all[n].State, all[n].Version = domain.StateOffline, 2
		}
		must(t, s.Catalog.SetState(ctx, all[4].ID, domain.StatePublished))
		all[4].State, all[4].Version = domain.StatePublished, 2
		for _, tt := range []struct {
			q    domain.ActivityQuery
			want []int
		}{
			{domain.ActivityQuery{State: domain.StateOffline}, []int{3, 1}},
			{domain.ActivityQuery{State: domain.StateDraft, All: true}, []int{2, 0}},
			{domain.ActivityQuery{State: domain.StateDraft, Before: all[2].ID}, []int{0}},
			{domain.ActivityQuery{State: domain.StatePublished, Limit: 1}, []int{4}},
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
}
