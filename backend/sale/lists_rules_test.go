package sale_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/sale"
)

// TestRulesShopperOrders: a shopper's pages, filters and deleted orders.
func TestRulesShopperOrders(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.sale(t, domain.StrategySync, 100, 100, 1)
	b := r.sale(t, domain.StrategySync, 100, 100, 1)
	var ids []int64 // user 1's, oldest first
	for n := 0; n < 7; n++ {
		act := a
		if n%3 == 2 {
			act = b
		}
		ids = append(ids, r.buy(t, act, 1, 1, "").OrderID)
		r.buy(t, a, 2, 1, "")
	}
	if _, err := r.svc.Pay(ctx, 1, ids[0]); err != nil {
		t.Fatal(err)
	}
	_, err := r.svc.Delete(ctx, 1, ids[1])
	wantErr(t, "delete an unpaid order", err, domain.EConflict)
	_, err = r.svc.Delete(ctx, 1, ids[0])
	wantErr(t, "delete a paid order", err, domain.EConflict)
	_, err = r.svc.Delete(ctx, 2, ids[1])
	wantErr(t, "delete another's order", err, domain.ENotFound)
	if _, err := r.svc.Cancel(ctx, 1, ids[1]); err != nil {
		t.Fatal(err)
	}
	r.wantStock(t, "after a cancel", a, 100-5-7+1)
	for n := 0; n < 2; n++ {
		o, err := r.svc.Delete(ctx, 1, ids[1])
		if err != nil || o.Status != domain.OrderDeleted {
			t.Fatalf("delete %d: got %+v, %v; want deleted", n, o, err)
		}
	}
	r.wantStock(t, "after deleting it", a, 100-5-7+1)
	_, err = r.svc.Pay(ctx, 1, ids[1])
	wantErr(t, "pay a deleted order", err, domain.EConflict)
	if o, err := r.svc.Cancel(ctx, 1, ids[1]); err != nil || o.Status != domain.OrderDeleted {
		t.Fatalf("cancel a deleted order: got %+v, %v; want it as it is", o, err)
	}
	if o, err := r.svc.Order(ctx, 1, ids[1]); err != nil || o.Status != domain.OrderDeleted {
		t.Fatalf("read a deleted order: got %+v, %v", o, err)
	}
	visible := slices.Clone(ids)
	visible = slices.Delete(visible, 1, 2)
	slices.Reverse(visible)
	for _, tt := range []struct {
		name string
		q    domain.OrderQuery
		want []int64
	}{
		{"all", domain.OrderQuery{}, visible},
		{"two a page", domain.OrderQuery{Limit: 2}, visible},
		{"paid", domain.OrderQuery{Statuses: []domain.OrderStatus{domain.OrderPaid}}, []int64{ids[0]}},
		{"one activity", domain.OrderQuery{ActivityID: b.ID, Limit: 1}, []int64{ids[5], ids[2]}},
		{"unpaid in a", domain.OrderQuery{ActivityID: a.ID, Statuses: []domain.OrderStatus{domain.OrderCreated}, Limit: 3}, []int64{ids[6], ids[4], ids[3]}},
		{"from a cursor", domain.OrderQuery{After: ids[4]}, []int64{ids[3], ids[2], ids[0]}},
	} {
		var got []int64
		q := tt.q
		for pages := 0; ; pages++ {
			page, next, err := r.svc.ShopperOrders(ctx, 1, q)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			for _, o := range page {
				if o.UserID != 1 || o.Status == domain.OrderDeleted {
					t.Fatalf("%s: got %+v", tt.name, o)
				}
				got = append(got, o.ID)
			}
			if q.Limit > 0 && len(page) > q.Limit || next != 0 && len(page) == 0 || pages > 20 {
				t.Fatalf("%s: a page of %d with next %d", tt.name, len(page), next)
			}
			if next == 0 {
				break
			}
			q.After = next
		}
		if !slices.Equal(got, tt.want) {
			t.Fatalf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	for _, tt := range []struct {
		name string
		q    domain.OrderQuery
	}{
		{"deleted ones", domain.OrderQuery{Statuses: []domain.OrderStatus{domain.OrderDeleted}}},
		{"an unknown state", domain.OrderQuery{Statuses: []domain.OrderStatus{"lost"}}},
		{"a void mark", domain.OrderQuery{Statuses: []domain.OrderStatus{domain.OrderVoid}}},
		{"a negative limit", domain.OrderQuery{Limit: -1}},
		{"a limit past the bound", domain.OrderQuery{Limit: domain.ShopperOrdersPage.Max + 1}},
		{"a negative cursor", domain.OrderQuery{After: -5}},
	} {
		_, _, err := r.svc.ShopperOrders(ctx, 1, tt.q)
		wantErr(t, tt.name, err, domain.EBadRequest)
	}
}

// TestRulesActivityOrders: the operators' view of an activity's orders.
func TestRulesActivityOrders(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.sale(t, domain.StrategySync, 100, 100, 1)
	a, err := r.svc.AddItem(ctx, a.ID, domain.Item{Name: "second", TotalStock: 100})
	if err != nil {
		t.Fatal(err)
	}
	other := r.sale(t, domain.StrategySync, 100, 100, 1)
	var all, second []int64
	for n := int64(0); n < 9; n++ {
		it := a.Items[n%2].ID
		p, err := r.placeItem(a, it, 1+n%3)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.OrderID)
		if n%2 == 1 {
			second = append(second, p.OrderID)
		}
		r.buy(t, other, 1, 1, "")
	}
	if _, err := r.svc.Cancel(ctx, 1, all[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Delete(ctx, 1, all[0]); err != nil {
		t.Fatal(err)
	}
	newest := slices.Clone(all)
	slices.Reverse(newest)
	for _, tt := range []struct {
		name string
		q    domain.OrderQuery
		want []int64
	}{
		{"all, deleted ones too", domain.OrderQuery{}, newest},
		{"oldest first, 4 a page", domain.OrderQuery{Oldest: true, Limit: 4}, all},
		{"deleted", domain.OrderQuery{Statuses: []domain.OrderStatus{domain.OrderDeleted}}, all[:1]},
		{"one item", domain.OrderQuery{ItemID: a.Items[1].ID, Oldest: true, Limit: 1}, second},
		{"the bound", domain.OrderQuery{Limit: domain.ActivityOrdersPage.Max}, newest},
	} {
		var got []int64
		q := tt.q
		for {
			page, next, err := r.svc.ActivityOrders(ctx, a.ID, q)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			for _, o := range page {
				if o.ActivityID != a.ID {
					t.Fatalf("%s: got an order of activity %d", tt.name, o.ActivityID)
				}
				got = append(got, o.ID)
			}
			if next == 0 {
				break
			}
			q.After = next
		}
		if !slices.Equal(got, tt.want) {
			t.Fatalf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	_, _, err = r.svc.ActivityOrders(ctx, a.ID+100, domain.OrderQuery{})
	wantErr(t, "an unknown activity", err, domain.ENotFound)
	_, _, err = r.svc.ActivityOrders(ctx, a.ID, domain.OrderQuery{ItemID: other.Items[0].ID})
	wantErr(t, "another activity's item", err, domain.ENotFound)
	_, _, err = r.svc.ActivityOrders(ctx, a.ID, domain.OrderQuery{Limit: domain.ActivityOrdersPage.Max + 1})
	wantErr(t, "past the bound", err, domain.EBadRequest)
}

// TestRulesActivityPages: activities a page at a time, by state.
func TestRulesActivityPages(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	var ids []int64
	for n := 0; n < 5; n++ {
		a := &domain.Activity{Name: fmt.Sprintf("a%d", n), Start: time.Now(), End: time.Now().Add(time.Hour), Strategy: domain.StrategySync,
			Items: []domain.Item{{Name: "x"}}}
		if err := r.svc.CreateActivity(ctx, a); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	for _, n := range []int{1, 2, 4} {
		if _, err := r.svc.Publish(ctx, ids[n]); err != nil {
			t.Fatal(err)
		}
	}
	list := func(q domain.ActivityQuery) []int64 {
		var got []int64
		for {
			page, next, err := r.svc.Activities(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range page {
				got = append(got, a.ID)
			}
			if next == 0 {
				return got
			}
			q.Before = next
		}
	}
	for _, tt := range []struct {
		q    domain.ActivityQuery
		want []int64
	}{
		{domain.ActivityQuery{Limit: 1}, []int64{ids[4], ids[2], ids[1]}},
		{domain.ActivityQuery{All: true, Limit: 2}, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{domain.ActivityQuery{All: true, State: domain.StateDraft, Limit: 1}, []int64{ids[3], ids[0]}},
	} {
		if got := list(tt.q); !slices.Equal(got, tt.want) {
			t.Fatalf("%+v: got %v, want %v", tt.q, got, tt.want)
		}
	}
	for _, q := range []domain.ActivityQuery{{State: domain.StateDraft}, {All: true, State: "closed"}, {Limit: domain.ActivitiesPage.Max + 1}, {Before: -1}} {
		_, _, err := r.svc.Activities(ctx, q)
		wantErr(t, fmt.Sprintf("%+v", q), err, domain.EBadRequest)
	}
}

// TestRulesActivityOrdersSettle: the operators' pages hold back orders written in the
// last Config.OrdersSettle (an order still committing could otherwise be passed by
// the cursor for good); older ones are listed.
func TestRulesActivityOrdersSettle(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	svc := sale.New(sale.Deps{Catalog: faultyCatalog{r.store, r.orders}, Orders: r.orders, Ledger: r.ledger, Cache: r.cache, Log: testLog(t)},
		sale.Config{OrdersSettle: time.Minute})
	a := r.sale(t, domain.StrategySync, 10, 5, 1)
	r.clock.Set(time.Now().Add(-2 * time.Minute))
	old := r.buy(t, a, 1, 1, "")
	r.clock.Set(time.Now())
	r.buy(t, a, 2, 1, "")
	page, next, err := svc.ActivityOrders(ctx, a.ID, domain.OrderQuery{})
	if err != nil || next != 0 || len(page) != 1 || page[0].ID != old.OrderID {
		t.Fatalf("got %+v (next %d), %v; want only the order written two minutes ago", page, next, err)
	}
}
