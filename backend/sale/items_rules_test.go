package sale_test

import (
	"context"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/inmem"
	"github.com/seckill/flashsale/backend/sale"
)

// The rules of items' own life and of the lists, on the in-memory adapters; the
// hammer on the real services is items_test.go.

func (r *rig) placeItem(a *domain.Activity, itemID, user int64) (sale.Placed, error) {
	return r.svc.PlaceOrder(context.Background(), sale.PlaceOrder{UserID: user, ActivityID: a.ID, ItemID: itemID, Quantity: 1})
}

func TestRulesItemLifecycle(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	a := r.sale(t, domain.StrategySync, 10, 5, 1)
	first := a.Items[0].ID
	now := r.clock.Now()

	// Added to a published activity, an item sells at once; one added offline, or
	// with a window that has not begun, does not.
	a, err := r.svc.AddItem(ctx, a.ID, domain.Item{Name: "added", PriceCents: 70, TotalStock: 3})
	if err != nil {
		t.Fatal(err)
	}
	added := a.Items[1]
	if added.State != domain.ItemOnline || added.ActivityID != a.ID || len(a.Items) != 2 {
		t.Fatalf("added: got %+v", a.Items)
	}
	p, err := r.placeItem(a, added.ID, 1)
	if err != nil || p.Status != domain.TicketCreated {
		t.Fatalf("buy the added item: got %+v, %v", p, err)
	}
	if o, err := r.svc.Order(ctx, 1, p.OrderID); err != nil || o.AmountCents != 70 {
		t.Fatalf("its order: got %+v, %v; want its price", o, err)
	}
	a, err = r.svc.AddItem(ctx, a.ID, domain.Item{Name: "staged", TotalStock: 3, State: domain.ItemOffline})
	if err != nil {
		t.Fatal(err)
	}
	staged := a.Items[2].ID
	_, err = r.placeItem(a, staged, 1)
	wantErr(t, "an item added offline", err, domain.ENotFound)
	a, err = r.svc.AddItem(ctx, a.ID, domain.Item{Name: "later", TotalStock: 3, Start: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	later := a.Items[3].ID
	_, err = r.placeItem(a, later, 1)
	wantErr(t, "an item whose window has not begun", err, domain.ENotStarted)
	r.clock.Advance(61 * time.Minute)
	if _, err := r.placeItem(a, later, 1); err != nil {
		t.Fatalf("an item within its window: %v", err)
	}

	// What the operator may not do.
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"an item without a name", second(r.svc.AddItem(ctx, a.ID, domain.Item{TotalStock: 1})), domain.EBadRequest},
		{"an item with negative stock", second(r.svc.AddItem(ctx, a.ID, domain.Item{Name: "x", TotalStock: -1})), domain.EBadRequest},
		{"an item in an unknown state", second(r.svc.AddItem(ctx, a.ID, domain.Item{Name: "x", State: "sold"})), domain.EBadRequest},
		{"an item starting before the activity", second(r.svc.AddItem(ctx, a.ID, domain.Item{Name: "x", Start: a.Start.Add(-time.Second)})), domain.EBadRequest},
		{"an item ending after the activity", second(r.svc.AddItem(ctx, a.ID, domain.Item{Name: "x", End: a.End.Add(time.Second)})), domain.EBadRequest},
		{"an item ending before it starts", second(r.svc.AddItem(ctx, a.ID, domain.Item{Name: "x", Start: now.Add(time.Hour), End: now})), domain.EBadRequest},
		{"an item of an unknown activity", second(r.svc.AddItem(ctx, a.ID+100, domain.Item{Name: "x"})), domain.ENotFound},
		{"a state that is none", second(r.svc.SetItemState(ctx, a.ID, first, "closed")), domain.EBadRequest},
		{"an unknown item", second(r.svc.SetItemState(ctx, a.ID, first+100, domain.ItemOffline)), domain.ENotFound},
		{"an activity window leaving an item's outside", second(r.svc.Update(ctx, a.ID, domain.ActivityChange{End: ptr(now.Add(30 * time.Minute))})), domain.EBadRequest},
	} {
		wantErr(t, tt.name, tt.err, tt.want)
	}
	// The same window change with the item's own window moved along is fine.
	a, err = r.svc.Update(ctx, a.ID, domain.ActivityChange{End: ptr(now.Add(90 * time.Minute)),
		Items: []domain.ItemChange{{ItemID: later, End: ptr(now.Add(80 * time.Minute))}}})
	if err != nil {
		t.Fatal(err)
	}
	if it, _ := a.Item(later); !it.End.Equal(now.Add(80*time.Minute).Truncate(time.Millisecond)) || !a.End.Equal(now.Add(90*time.Minute).Truncate(time.Millisecond)) {
		t.Fatalf("after moving both windows: got activity to %v, item to %v", a.End, it.End)
	}
	r.clock.Advance(20 * time.Minute) // past the item's end, within the activity's
	_, err = r.placeItem(a, later, 2)
	wantErr(t, "an item past its own end", err, domain.EEnded)
	if _, err := r.placeItem(a, first, 2); err != nil {
		t.Fatalf("another item of the activity, meanwhile: %v", err)
	}

	// Offline on its own: refused, its stock and orders kept; back online it sells.
	a, err = r.svc.SetItemState(ctx, a.ID, first, domain.ItemOffline)
	if err != nil {
		t.Fatal(err)
	}
	if it, _ := a.Item(first); it.State != domain.ItemOffline || a.State != domain.StatePublished {
		t.Fatalf("offline: got activity %s, item %+v", a.State, it)
	}
	_, err = r.placeItem(a, first, 3)
	wantErr(t, "an item offline", err, domain.ENotFound)
	_, err = r.ledger.Deduct(ctx, domain.Deduction{ActivityID: a.ID, ItemID: first, UserID: 3, Quantity: 1, Ticket: domain.NewTicket(a.ID, first, "x"), Buckets: 1})
	wantErr(t, "the ledger, the item offline", err, domain.ENotFound)
	if _, err := r.placeItem(a, added.ID, 3); err != nil {
		t.Fatalf("another item while one is offline: %v", err)
	}
	// A backend whose ledger lost the item restores it offline.
	lost := r.service(t, inmem.NewLedger(time.Hour, inmem.WithClock(r.clock.Now)), nil)
	_, err = lost.PlaceOrder(ctx, sale.PlaceOrder{UserID: 4, ActivityID: a.ID, ItemID: first, Quantity: 1})
	wantErr(t, "restored while offline", err, domain.ENotFound)
	// Cancelled while offline, an order's units come back.
	if _, err := r.svc.Cancel(ctx, 2, r.mustOrder(t, 2, first).ID); err != nil {
		t.Fatal(err)
	}
	only := *a
	only.Items = []domain.Item{{ID: first}}
	r.wantStock(t, "offline, one cancelled", &only, 10)
	if _, err := r.svc.SetItemState(ctx, a.ID, first, domain.ItemOnline); err != nil {
		t.Fatal(err)
	}
	for u := int64(10); u < 20; u++ {
		if _, err := r.placeItem(a, first, u); err != nil {
			t.Fatalf("back online, user %d: %v", u, err)
		}
	}
	_, err = r.placeItem(a, first, 20)
	wantErr(t, "back online, all sold", err, domain.ESoldOut)
	r.wantStock(t, "back online, all sold", &only, 0)
	// The activity offline and back keeps the item's own state.
	if _, err := r.svc.SetItemState(ctx, a.ID, staged, domain.ItemOffline); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Offline(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Publish(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	_, err = r.placeItem(a, staged, 30)
	wantErr(t, "an offline item of a published-again activity", err, domain.ENotFound)
	if _, err := r.placeItem(a, added.ID, 30); err != nil {
		t.Fatalf("an online item of a published-again activity: %v", err)
	}
}

// TestRulesAddItemToDraft: an item added to a draft reaches the ledger when the
// activity is published, not before.
func TestRulesAddItemToDraft(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	now := r.clock.Now()
	a := &domain.Activity{Name: "draft", Start: now.Add(-time.Hour), End: now.Add(time.Hour), Strategy: domain.StrategyAsync, PerUserLimit: 1,
		BucketCount: 1, Items: []domain.Item{{Name: "one", TotalStock: 1}}}
	if err := r.svc.CreateActivity(ctx, a); err != nil {
		t.Fatal(err)
	}
	a, err := r.svc.AddItem(ctx, a.ID, domain.Item{Name: "two", TotalStock: 4})
	if err != nil {
		t.Fatal(err)
	}
	two := a.Items[1].ID
	if _, loaded, err := r.ledger.Available(ctx, a.ID, two, 1); err != nil || loaded {
		t.Fatalf("an item added to a draft: loaded %v, %v; want not loaded", loaded, err)
	}
	if a, err = r.svc.Publish(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if n, loaded, err := r.ledger.Available(ctx, a.ID, two, 1); err != nil || !loaded || n != 4 {
		t.Fatalf("published: got %d, loaded %v, %v; want 4 loaded", n, loaded, err)
	}
}

func (r *rig) mustOrder(t *testing.T, user, itemID int64) domain.Order {
	t.Helper()
	os, _, err := r.svc.ShopperOrders(context.Background(), user, domain.OrderQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range os {
		if o.ItemID == itemID {
			return o
		}
	}
	t.Fatalf("user %d has no order of item %d", user, itemID)
	return domain.Order{}
}

func second[T any](_ T, err error) error { return err }

func ptr[T any](v T) *T { return &v }
