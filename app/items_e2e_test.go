package app_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/ratelimit"
)

// twoGateways is the whole system on the real services and a second gateway on the
// same backend, each with its own edge cache.
func twoGateways(t *testing.T) (one, two *stack) {
	t.Helper()
	cfg, db := realConfig(t)
	cfg.Gateway.Limits.User = ratelimit.Rule{RPS: 10_000, Burst: 10_000}
	cfg.Backend.OrdersSettle = ordersSettle
	one = start(t, cfg, app.Options{})
	one.db = db
	gcfg := cfg
	gcfg.Gateway.BackendAddrs = []string{one.sys.Backend.Addr().String()}
	two = start(t, gcfg, app.Options{Roles: []app.Role{app.Gateway}})
	return one, two
}

// ordersSettle is how long the operators' pages hold new orders back in these tests.
const ordersSettle = 300 * time.Millisecond

func (s *stack) operator() *api.Client {
	return &api.Client{BaseURL: s.url, AdminToken: adminToken, Timeout: 30 * time.Second}
}

func (s *stack) shopper(t *testing.T, user int64) *api.Client {
	return (&api.Client{BaseURL: s.url, Timeout: 30 * time.Second}).AsShopper(token(t, user))
}

func wantAPIError(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) || e.Status != status || e.Code != code {
		t.Fatalf("%s: got %v, want %d %s", what, err, status, code)
	}
}

// settled waits until a ticket is created and returns its order (long polls: the
// backend waits on the ticket).
func settled(t *testing.T, c *api.Client, ticket string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		tk, err := c.WaitTicket(context.Background(), ticket, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case tk.Status == "created":
			return tk.OrderID
		case tk.Status != "pending" || time.Now().After(deadline):
			t.Fatalf("ticket %s: got %+v", ticket, tk)
		}
	}
}

// seesItem waits until gw's shoppers read the item as ok says, within 2 s.
func seesItem(t *testing.T, gw *stack, item int64, ok func(*api.Item) bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		it, err := gw.shopper(t, 1).Item(context.Background(), item)
		if err == nil && ok(it) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("item %d at the other gateway after 2 s: %+v, %v", item, it, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestItemLifecycleEndToEnd: through two gateways on the real services, an operator
// adds an item to a running sale, gives one a window of its own, takes an item
// offline (the other gateway, which had it cached, refuses it from the answer on)
// and back online; shoppers' orders go through their states; the sale ends with
// every unit sold once and Redis equal to MySQL.
func TestItemLifecycleEndToEnd(t *testing.T) {
	ctx := context.Background()
	one, two := twoGateways(t)
	op := one.operator()
	now := time.Now().UTC()
	a, err := op.CreateActivity(ctx, api.CreateActivityRequest{Name: "items e2e", Start: now.Add(-time.Minute).Format(time.RFC3339),
		End: now.Add(time.Hour).Format(time.RFC3339), Strategy: "async", PerUserLimit: 1, Items: []api.ItemSpec{{Name: "mug", PriceCents: 900, Stock: 12}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Publish(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	mug := a.Items[0].ID
	buy := func(gw *stack, user, item int64) (*api.PlaceOrderResponse, error) {
		return gw.shopper(t, user).PlaceOrder(ctx, api.PlaceOrderRequest{ActivityID: a.ID, ItemID: item, Quantity: 1}, "")
	}
	// Both gateways cache the activity with the mug on sale.
	for _, gw := range []*stack{one, two} {
		if pa, err := gw.shopper(t, 1).PublicActivity(ctx, a.ID); err != nil || pa.Items[0].State != "online" {
			t.Fatalf("the sale: got %+v, %v", pa, err)
		}
	}
	var tickets []string
	var users []int64
	for u := int64(1); u <= 4; u++ {
		p, err := buy(two, u, mug)
		if err != nil {
			t.Fatal(err)
		}
		tickets, users = append(tickets, p.Ticket), append(users, u)
	}

	// Offline through gateway one: gateway two refuses at once.
	off, err := op.ItemOffline(ctx, a.ID, mug)
	if err != nil || off.Items[0].State != "offline" || off.State != "published" {
		t.Fatalf("offline: got %+v, %v", off, err)
	}
	for u := int64(100); u < 110; u++ {
		_, err := buy(two, u, mug)
		wantAPIError(t, "the mug offline, at gateway two", err, 404, "not_found")
	}
	for _, gw := range []*stack{one, two} {
		if it, err := gw.shopper(t, 1).Item(ctx, mug); err != nil || it.State != "offline" {
			t.Fatalf("the mug read while offline: got %+v, %v", it, err)
		}
	}
	// The orders admitted before finish.
	for k, tk := range tickets {
		settled(t, two.shopper(t, users[k]), tk)
	}

	// An item added to the running sale sells at once; one with a window of its own
	// that has not begun does not.
	a, err = op.AddItem(ctx, a.ID, api.ItemSpec{Name: "cap", PriceCents: 500, Stock: 3})
	if err != nil {
		t.Fatal(err)
	}
	capID := a.Items[1].ID
	p, err := buy(two, 1, capID)
	if err != nil {
		t.Fatalf("buy the added cap: %v", err)
	}
	settled(t, two.shopper(t, 1), p.Ticket)
	later := now.Add(30 * time.Minute).Format(time.RFC3339)
	if _, err := op.UpdateItem(ctx, a.ID, capID, api.ItemChange{Start: &later}); err != nil {
		t.Fatal(err)
	}
	// A window change reaches the other gateway by the activity's announcement, within
	// milliseconds; its cache answers from then on.
	seesItem(t, two, capID, func(it *api.Item) bool { return it.Start == later })
	_, err = buy(two, 2, capID)
	wantAPIError(t, "the cap before its own window", err, 409, "not_started")
	if _, err := op.UpdateItem(ctx, a.ID, capID, api.ItemChange{Start: ptr("")}); err != nil {
		t.Fatal(err)
	}
	seesItem(t, two, capID, func(it *api.Item) bool { return it.Start == "" })
	if _, err := buy(two, 2, capID); err != nil {
		t.Fatalf("the cap with its window dropped: %v", err)
	}
	wrong := now.Add(2 * time.Hour).Format(time.RFC3339)
	_, err = op.UpdateItem(ctx, a.ID, capID, api.ItemChange{End: &wrong})
	wantAPIError(t, "a window past the activity's", err, 400, "bad_request")

	// Order states: user 1's mug order is cancelled and deleted; its unit comes back.
	mine := one.shopper(t, 1)
	list, err := mine.OrdersPage(ctx, api.OrderQuery{PageQuery: api.PageQuery{Limit: 1}})
	if err != nil || len(list.Orders) != 1 || list.Next == "" {
		t.Fatalf("user 1's first page: got %+v, %v; want one order and a next page", list, err)
	}
	rest, err := mine.OrdersPage(ctx, api.OrderQuery{PageQuery: api.PageQuery{After: list.Next, Limit: 1}})
	if err != nil || len(rest.Orders) != 1 || rest.Next != "" || rest.Orders[0].ItemID != mug {
		t.Fatalf("user 1's second page: got %+v, %v; want the mug, the last page", rest, err)
	}
	mugOrder := rest.Orders[0].ID
	_, err = mine.DeleteOrder(ctx, mugOrder)
	wantAPIError(t, "delete an unpaid order", err, 409, "conflict")
	if _, err := mine.Cancel(ctx, mugOrder); err != nil {
		t.Fatal(err)
	}
	_, err = mine.Pay(ctx, mugOrder)
	wantAPIError(t, "pay a cancelled order", err, 409, "conflict")
	for n := 0; n < 2; n++ {
		if o, err := mine.DeleteOrder(ctx, mugOrder); err != nil || o.Status != "deleted" {
			t.Fatalf("delete %d: got %+v, %v", n, o, err)
		}
	}
	if o, err := mine.Order(ctx, mugOrder); err != nil || o.Status != "deleted" {
		t.Fatalf("a deleted order read: got %+v, %v", o, err)
	}
	if os, err := mine.Orders(ctx); err != nil || len(os) != 1 || os[0].ItemID != capID {
		t.Fatalf("user 1's list: got %+v, %v; want the cap only", os, err)
	}
	_, err = mine.OrdersPage(ctx, api.OrderQuery{Status: []string{"deleted"}})
	wantAPIError(t, "a shopper asking for deleted orders", err, 400, "bad_request")
	_, err = mine.Pay(ctx, mugOrder)
	wantAPIError(t, "pay a deleted order", err, 409, "conflict")

	// Back online through gateway two, the mug sells what is left (12 - 4 + 1), through
	// both gateways, and no more.
	if _, err := two.operator().ItemOnline(ctx, a.ID, mug); err != nil {
		t.Fatal(err)
	}
	var sold []string
	for u := int64(1000); ; u++ {
		gw := []*stack{one, two}[u%2]
		p, err := buy(gw, u, mug)
		var e *api.Error
		if errors.As(err, &e) && e.Code == "sold_out" {
			break
		}
		if err != nil {
			t.Fatalf("back online, user %d: %v", u, err)
		}
		sold = append(sold, p.Ticket)
		settled(t, gw.shopper(t, u), p.Ticket)
	}
	if len(sold) != 9 {
		t.Fatalf("back online: sold %d, want the 9 left", len(sold))
	}
	st, err := op.Stats(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range st.Items {
		if it.RedisStock+it.InFlight != it.MySQLStock || it.PendingTickets != 0 {
			t.Fatalf("stats of item %d: got %+v, want Redis equal to MySQL, nothing pending", it.ItemID, it)
		}
	}
	if m := st.Items[0]; m.MySQLStock != 0 || m.Orders != 12 || m.UnitsSold != 12 {
		t.Fatalf("the mug: got %+v, want all 12 sold", m)
	}

	// The operators see every order, the deleted one too, and export them (once the
	// last ones are older than the pages hold back).
	time.Sleep(ordersSettle + 100*time.Millisecond)
	view, err := op.ActivityOrders(ctx, a.ID, api.OrderQuery{Status: []string{"deleted"}})
	if err != nil || len(view.Orders) != 1 || view.Orders[0].ID != mugOrder || view.Orders[0].UserID != 1 {
		t.Fatalf("the deleted order, as operators see it: got %+v, %v", view, err)
	}
	var ids []string
	for q := (api.OrderQuery{PageQuery: api.PageQuery{Limit: 4}, Oldest: true}); ; {
		page, err := op.ActivityOrders(ctx, a.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Orders {
			ids = append(ids, o.ID)
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	var buf bytes.Buffer
	if err := op.ExportOrders(ctx, a.ID, api.OrderQuery{Oldest: true}, &buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, r := range rows[1:] {
		exported = append(exported, r[0])
	}
	// 4 + 9 mugs (one cancelled, then deleted) and 2 caps.
	if len(ids) != 15 || !slices.Equal(ids, exported) {
		t.Fatalf("operators' pages: got %v; export: got %v; want the same 15 orders", ids, exported)
	}
}

// TestOrderPagesWhileWriting: a shopper and an operator page through orders with
// small pages while the shopper's orders keep being written through another
// gateway: no order is seen twice, and none that existed when the paging began is
// missed.
func TestOrderPagesWhileWriting(t *testing.T) {
	ctx := context.Background()
	one, two := twoGateways(t)
	op := one.operator()
	now := time.Now().UTC()
	a, err := op.CreateActivity(ctx, api.CreateActivityRequest{Name: "pages", Start: now.Add(-time.Minute).Format(time.RFC3339),
		End: now.Add(time.Hour).Format(time.RFC3339), Strategy: "sync", PerUserLimit: 1000, Items: []api.ItemSpec{{Name: "pen", Stock: 5000}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Publish(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	shopper := two.shopper(t, 7)
	write := func() string {
		p, err := shopper.PlaceOrder(ctx, api.PlaceOrderRequest{ActivityID: a.ID, ItemID: a.Items[0].ID, Quantity: 1}, "")
		if err != nil {
			t.Error(err)
			return ""
		}
		return p.OrderID
	}
	var before []string
	for n := 0; n < 40; n++ {
		before = append(before, write())
	}
	time.Sleep(ordersSettle + 100*time.Millisecond) // the operators' pages show them now
	for _, tt := range []struct {
		name string
		page func(after string) ([]api.Order, string, error)
	}{
		{"the shopper's, newest first", func(after string) ([]api.Order, string, error) {
			l, err := one.shopper(t, 7).OrdersPage(ctx, api.OrderQuery{PageQuery: api.PageQuery{After: after, Limit: 6}})
			return orders(l, err)
		}},
		{"the operators', oldest first", func(after string) ([]api.Order, string, error) {
			l, err := op.ActivityOrders(ctx, a.ID, api.OrderQuery{PageQuery: api.PageQuery{After: after, Limit: 7}, Oldest: true})
			return orders(l, err)
		}},
		{"the operators', newest first", func(after string) ([]api.Order, string, error) {
			l, err := op.ActivityOrders(ctx, a.ID, api.OrderQuery{PageQuery: api.PageQuery{After: after, Limit: 5}})
			return orders(l, err)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var written atomic.Int64
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for g := 0; g < 3; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; k < 15; k++ {
						select {
						case <-stop:
							return
						default:
						}
						write()
						written.Add(1)
					}
				}()
			}
			seen := map[string]int{}
			pages := 0
			for after := ""; ; pages++ {
				page, next, err := tt.page(after)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range page {
					seen[o.ID]++
				}
				if next == "" {
					break
				}
				after = next
				// Orders are written between the pages.
				for w := written.Load(); written.Load() < w+1 && written.Load() < 45; {
					time.Sleep(time.Millisecond)
				}
			}
			close(stop)
			wg.Wait()
			for id, n := range seen {
				if n != 1 {
					t.Fatalf("order %s seen %d times", id, n)
				}
			}
			for _, id := range before {
				if seen[id] != 1 {
					t.Fatalf("order %s, written before the paging began, seen %d times", id, seen[id])
				}
			}
			t.Logf("%d orders in %d pages, %d written meanwhile", len(seen), pages+1, written.Load())
		})
	}
}

func orders(l *api.OrderList, err error) ([]api.Order, string, error) {
	if err != nil {
		return nil, "", err
	}
	return l.Orders, l.Next, nil
}

func ptr[T any](v T) *T { return &v }

// TestRetryAfterItemOffSale: a shopper whose answer was lost retries with the same
// key after the operator took the item offline, or after the item's window closed:
// the retry gets the first attempt's outcome (API.md: the same key, the same
// outcome), through either gateway; a new key, or another shopper, is refused.
// Fails before the fix: the retry was refused 404 not_found (409 ended).
func TestRetryAfterItemOffSale(t *testing.T) {
	ctx := context.Background()
	one, two := twoGateways(t)
	op := one.operator()
	for _, strategy := range []string{"sync", "async"} {
		for _, how := range []string{"offline", "ended", "moved later"} {
			t.Run(strategy+" "+how, func(t *testing.T) {
				now := time.Now().UTC()
				a, err := op.CreateActivity(ctx, api.CreateActivityRequest{Name: "retry " + how, Start: now.Add(-time.Minute).Format(time.RFC3339),
					End: now.Add(time.Hour).Format(time.RFC3339), Strategy: strategy, PerUserLimit: 1,
					Items: []api.ItemSpec{{Name: "lamp", PriceCents: 900, Stock: 5}}})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := op.Publish(ctx, a.ID); err != nil {
					t.Fatal(err)
				}
				lamp := a.Items[0].ID
				buy := func(gw *stack, user int64, key string) (*api.PlaceOrderResponse, error) {
					return gw.shopper(t, user).PlaceOrder(ctx, api.PlaceOrderRequest{ActivityID: a.ID, ItemID: lamp, Quantity: 1}, key)
				}
				first, err := buy(one, 1, "k-first")
				if err != nil {
					t.Fatal(err)
				}
				refusal := 404
				switch how {
				case "offline":
					if _, err := op.ItemOffline(ctx, a.ID, lamp); err != nil {
						t.Fatal(err)
					}
				case "ended":
					end := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
					if _, err := op.UpdateItem(ctx, a.ID, lamp, api.ItemChange{End: &end}); err != nil {
						t.Fatal(err)
					}
					time.Sleep(2 * time.Second)
					refusal = 409
				case "moved later":
					start := time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)
					if _, err := op.UpdateItem(ctx, a.ID, lamp, api.ItemChange{Start: &start}); err != nil {
						t.Fatal(err)
					}
					refusal = 409
				}
				gws := []*stack{one, two}
				if how == "moved later" {
					// Before a window opens only a gateway that forwarded the key
					// looks it up (API.md). Once it refuses new orders not_started:
					for u := int64(100); ; u++ {
						_, err := buy(one, u, fmt.Sprintf("k-%d", u))
						if e := new(api.Error); errors.As(err, &e) && e.Code == "not_started" {
							break
						}
						if u > 200 {
							t.Fatalf("gateway one still sells after the start moved: %v", err)
						}
						time.Sleep(20 * time.Millisecond)
					}
					gws = gws[:1]
				}
				for _, gw := range gws {
					var again *api.PlaceOrderResponse
					// The gateway's copy follows the change's announcement.
					for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
						if again, err = buy(gw, 1, "k-first"); err == nil || time.Since(start) > 3*time.Second {
							break
						}
					}
					if err != nil || again.Ticket != first.Ticket || again.OrderID != first.OrderID {
						t.Fatalf("the retry: got %+v, %v; want the first answer %+v", again, err, first)
					}
				}
				_, err = buy(two, 1, "k-new")
				if e := new(api.Error); !errors.As(err, &e) || e.Status != refusal {
					t.Fatalf("a new key: got %v, want %d", err, refusal)
				}
				_, err = buy(one, 2, "k-first")
				if e := new(api.Error); !errors.As(err, &e) || e.Status != refusal {
					t.Fatalf("another shopper with the same key: got %v, want %d", err, refusal)
				}
			})
		}
	}
}
