package gateway_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// itemsStub is what the stub backend saw of the item, list and export calls, and
// activity 8's orders it pages through (ids 1 to orders).
type itemsStub struct {
	mu        sync.Mutex
	seen      []any // requests, in order
	orders    int
	failCall  int // the ListActivityOrders call (from 1) that fails; 0: none
	pageCalls int
}

func (s *itemsStub) saw(req any) {
	s.mu.Lock()
	s.seen = append(s.seen, req)
	s.mu.Unlock()
}

// last is the last request of type T the stub saw.
func last[T any](s *itemsStub) T {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.seen) - 1; i >= 0; i-- {
		if r, ok := s.seen[i].(T); ok {
			return r
		}
	}
	var zero T
	return zero
}

func (s *stubBackend) AddItem(_ context.Context, req *rpc.AddItemReq) (*rpc.Activity, error) {
	s.items.saw(req)
	a := launch("draft")
	a.Items = append(a.Items, &rpc.Item{Id: 81, ActivityId: 8, Name: req.Item.Name, PriceCents: req.Item.PriceCents, TotalStock: req.Item.Stock,
		State: req.Item.State, StartMs: req.Item.StartMs, EndMs: req.Item.EndMs, Remaining: -1})
	return a, nil
}

func (s *stubBackend) SetItemState(_ context.Context, req *rpc.ItemStateReq) (*rpc.Activity, error) {
	s.items.saw(req)
	if req.ItemId != 80 {
		return nil, notFound(fmt.Sprintf("item %d", req.ItemId))
	}
	a := launch("published")
	a.Items[0].State = req.State
	return a, nil
}

func (s *stubBackend) DeleteOrder(_ context.Context, req *rpc.OrderReq) (*rpc.Order, error) {
	return s.orderAs(req, "deleted")
}

// ListActivityOrders pages through activity 8's orders as the backend does: keyed
// on the id, next the last id of a full page.
func (s *stubBackend) ListActivityOrders(_ context.Context, req *rpc.ActivityOrdersReq) (*rpc.ListOrdersResp, error) {
	s.items.saw(req)
	s.items.mu.Lock()
	defer s.items.mu.Unlock()
	s.items.pageCalls++
	if s.items.pageCalls == s.items.failCall {
		return nil, rpcerr.ToBiz(domain.Errorf(domain.EUnavailable, "injected"))
	}
	if req.ActivityId != 8 {
		return nil, notFound(fmt.Sprintf("activity %d", req.ActivityId))
	}
	limit := int(max(req.Limit, 1))
	if req.Limit == 0 {
		limit = 100
	}
	resp := &rpc.ListOrdersResp{Orders: []*rpc.Order{}}
	for k := 1; k <= s.items.orders; k++ {
		id := int64(k)
		if !req.OldestFirst {
			id = int64(s.items.orders + 1 - k)
		}
		if req.After > 0 && (req.OldestFirst && id <= req.After || !req.OldestFirst && id >= req.After) {
			continue
		}
		if len(resp.Orders) == limit {
			resp.Next, _ = strconv.ParseInt(resp.Orders[limit-1].Id, 10, 64)
			break
		}
		o := stubOrder(100+id, "paid")
		o.Id, o.ActivityId, o.ItemId = strconv.FormatInt(id, 10), 8, 80
		resp.Orders = append(resp.Orders, o)
	}
	return resp, nil
}

// TestAPIClientItemsAndLists drives the client's item, list and order-deletion
// methods against the gateway's real handlers: what they send reaches the backend
// as meant, and the answers come back typed.
func TestAPIClientItemsAndLists(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	ctx := context.Background()
	op := &api.Client{BaseURL: f.url, AdminToken: admin, Timeout: 10 * time.Second}
	shop := op.AsShopper(tok(t, 5))
	stub := &f.backend.items
	stub.mu.Lock()
	stub.orders = 5
	stub.mu.Unlock()

	a, err := op.AddItem(ctx, 8, api.ItemSpec{Name: "cap", PriceCents: 300, Stock: 7, State: "offline", Start: "2026-11-25T20:30:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	add := last[*rpc.AddItemReq](stub)
	want := &rpc.ItemSpec{Name: "cap", PriceCents: 300, Stock: 7, State: "offline", StartMs: time.Date(2026, 11, 25, 20, 30, 0, 0, time.UTC).UnixMilli()}
	if add.ActivityId != 8 || !reflect.DeepEqual(add.Item, want) {
		t.Fatalf("AddItem sent %+v, want %+v to activity 8", add, want)
	}
	if got := a.Items[1]; got.State != "offline" || got.Start != "2026-11-25T20:30:00Z" || got.End != "" {
		t.Fatalf("AddItem answered item %+v, want offline from 20:30 with no end of its own", got)
	}

	if _, err := op.UpdateItem(ctx, 8, 80, api.ItemChange{State: ptr("offline"), Start: ptr(""), End: ptr("2026-11-25T20:45:00Z")}); err != nil {
		t.Fatal(err)
	}
	upd := last[*rpc.UpdateActivityReq](stub)
	if upd == nil || upd.Id != 8 || len(upd.Items) != 1 || upd.Items[0].ItemId != 80 || *upd.Items[0].State != "offline" ||
		*upd.Items[0].StartMs != 0 || *upd.Items[0].EndMs != time.Date(2026, 11, 25, 20, 45, 0, 0, time.UTC).UnixMilli() || upd.Items[0].Name != nil {
		t.Fatalf("UpdateItem sent %+v", upd)
	}
	for _, tt := range []struct {
		call func(context.Context, int64, int64) (*api.Activity, error)
		want string
	}{{op.ItemOffline, "offline"}, {op.ItemOnline, "online"}} {
		a, err := tt.call(ctx, 8, 80)
		if err != nil || a.Items[0].State != tt.want || last[*rpc.ItemStateReq](stub).State != tt.want {
			t.Fatalf("item %s: got %+v, %v", tt.want, a, err)
		}
	}
	if _, err := op.ItemOffline(ctx, 8, 99); !isAPIError(err, 404, "not_found") {
		t.Fatalf("an unknown item offline: got %v, want 404", err)
	}

	o, err := shop.DeleteOrder(ctx, "o-5")
	if err != nil || o.Status != "deleted" || o.UserID != 0 {
		t.Fatalf("DeleteOrder: got %+v, %v; want deleted, no user id", o, err)
	}
	l, err := shop.OrdersPage(ctx, api.OrderQuery{PageQuery: api.PageQuery{After: "42", Limit: 7}, Status: []string{"paid", "created"}, ActivityID: 3})
	if err != nil || len(l.Orders) != 1 {
		t.Fatalf("OrdersPage: got %+v, %v", l, err)
	}
	lo := last[*rpc.ListOrdersReq](stub)
	if lo.UserId != 5 || lo.After != 42 || lo.Limit != 7 || lo.ActivityId != 3 || !reflect.DeepEqual(lo.Statuses, []string{"paid", "created"}) {
		t.Fatalf("OrdersPage sent %+v", lo)
	}
	if _, err := op.ActivitiesPage(ctx, api.PageQuery{After: "9", Limit: 2}, "offline"); err != nil {
		t.Fatal(err)
	}
	if la := last[*rpc.ListActivitiesReq](stub); !la.IncludeAll || la.Before != 9 || la.Limit != 2 || la.State != "offline" {
		t.Fatalf("ActivitiesPage sent %+v", la)
	}

	// The operators' view: pages with their shoppers, and the whole list.
	page, err := op.ActivityOrders(ctx, 8, api.OrderQuery{PageQuery: api.PageQuery{Limit: 2}, Oldest: true, ItemID: 80, Status: []string{"paid"}})
	if err != nil || len(page.Orders) != 2 || page.Orders[0].ID != "1" || page.Orders[0].UserID != 101 || page.Next != "2" {
		t.Fatalf("ActivityOrders: got %+v, %v; want orders 1 and 2 with their shoppers, next 2", page, err)
	}
	if r := last[*rpc.ActivityOrdersReq](stub); !r.OldestFirst || r.ItemId != 80 || r.Limit != 2 || !reflect.DeepEqual(r.Statuses, []string{"paid"}) {
		t.Fatalf("ActivityOrders sent %+v", r)
	}
	page, err = op.ActivityOrders(ctx, 8, api.OrderQuery{PageQuery: api.PageQuery{After: page.Next, Limit: 10}, Oldest: true})
	if err != nil || len(page.Orders) != 3 || page.Orders[0].ID != "3" || page.Next != "" {
		t.Fatalf("the next page: got %+v, %v; want orders 3 to 5, the last page", page, err)
	}
}

func isAPIError(err error, status int, code string) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Status == status && e.Code == code && e.Message != ""
}

// TestListQueries: the lists' query strings are read strictly, and a bad one is
// answered 400 with what is wrong, before the backend is called.
func TestListQueries(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	shopper := "Bearer " + tok(t, 5)
	for _, tt := range []struct {
		path, auth, want string
	}{
		{"/api/v1/orders?limt=5", shopper, `unknown query parameter \"limt\"; this list takes after, limit, status, activity_id`},
		{"/api/v1/orders?after=0", shopper, "after must be a positive integer"},
		{"/api/v1/orders?after=x", shopper, "after must be a positive integer"},
		{"/api/v1/orders?limit=-3", shopper, "limit must be a positive integer"},
		{"/api/v1/orders?limit=1&limit=2", shopper, `query parameter \"limit\" is given twice`},
		{"/api/v1/orders?activity_id=1.5", shopper, "activity_id must be a positive integer"},
		{"/api/v1/activities?state=draft", "", `unknown query parameter \"state\"`},
		{"/admin/v1/activities?after=-1", "Bearer " + admin, "after must be a positive integer"},
		{"/admin/v1/activities/8/orders?order=up", "Bearer " + admin, "order must be newest or oldest"},
		{"/admin/v1/activities/8/orders?format=xml", "Bearer " + admin, "format must be json or csv"},
		{"/admin/v1/activities/8/orders?user_id=1", "Bearer " + admin, `unknown query parameter \"user_id\"`},
	} {
		t.Run(tt.path, func(t *testing.T) {
			before := len(f.backend.items.seen)
			code, body := get(t, f.url+tt.path, tt.auth, "")
			if code != 400 || !strings.Contains(body, `"error":"bad_request"`) || !strings.Contains(body, tt.want) {
				t.Fatalf("got %d %s, want 400 saying %s", code, body, tt.want)
			}
			f.backend.items.mu.Lock()
			after := len(f.backend.items.seen)
			f.backend.items.mu.Unlock()
			if after != before {
				t.Fatalf("the backend was called")
			}
		})
	}
	// Empty values are no values.
	if code, body := get(t, f.url+"/api/v1/orders?after=&limit=&status=", shopper, ""); code != 200 {
		t.Fatalf("empty values: got %d %s", code, body)
	}
}

func get(t *testing.T, url, auth, accept string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestEdgeItemStateAndWindow: the edge cache refuses an item taken offline and one
// outside its own window without calling the backend.
func TestEdgeItemStateAndWindow(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	now := time.Now()
	f.backend.mu.Lock()
	f.backend.activity = &rpc.Activity{Id: 9, StartMs: now.Add(-time.Hour).UnixMilli(), EndMs: now.Add(time.Hour).UnixMilli(), State: "published",
		Strategy: "async", Items: []*rpc.Item{
			{Id: 90, ActivityId: 9, State: "offline"},
			{Id: 91, ActivityId: 9, State: "online", StartMs: now.Add(time.Minute).UnixMilli()},
			{Id: 92, ActivityId: 9, State: "online", EndMs: now.Add(-time.Minute).UnixMilli()},
			{Id: 93, ActivityId: 9, State: "online", StartMs: now.Add(-time.Minute).UnixMilli(), EndMs: now.Add(time.Minute).UnixMilli()},
		}}
	f.backend.mu.Unlock()
	shop := (&api.Client{BaseURL: f.url}).AsShopper(tok(t, 5))
	for _, tt := range []struct {
		item   int64
		status int
		code   string
	}{{90, 404, "not_found"}, {91, 409, "not_started"}, {92, 409, "ended"}, {93, 202, ""}} {
		before := f.backend.n("PlaceOrder")
		_, err := shop.PlaceOrder(context.Background(), api.PlaceOrderRequest{ActivityID: 9, ItemID: tt.item, Quantity: 1}, "")
		if tt.code == "" {
			if err != nil || f.backend.n("PlaceOrder") != before+1 {
				t.Fatalf("item %d: got %v, want it forwarded", tt.item, err)
			}
			continue
		}
		if !isAPIError(err, tt.status, tt.code) || f.backend.n("PlaceOrder") != before {
			t.Fatalf("item %d: got %v, want %d %s from the edge", tt.item, err, tt.status, tt.code)
		}
	}
}

// TestExportOrdersCSV: the export streams every order from the cursor on, over
// several of the backend's pages, as CSV; asked by format or by Accept; capped by
// limit; and a failure after the answer began breaks the transfer.
func TestExportOrdersCSV(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	ctx := context.Background()
	op := &api.Client{BaseURL: f.url, AdminToken: admin, Timeout: 10 * time.Second}
	stub := &f.backend.items
	stub.mu.Lock()
	stub.orders = 2500 // three of the backend's pages
	stub.mu.Unlock()

	read := func(t *testing.T, q api.OrderQuery) [][]string {
		t.Helper()
		var buf bytes.Buffer
		if err := op.ExportOrders(ctx, 8, q, &buf); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(rows[0], ","); got != "id,ticket,user_id,activity_id,item_id,item_name,quantity,amount_cents,status,created_at" {
			t.Fatalf("got header %s", got)
		}
		return rows[1:]
	}
	rows := read(t, api.OrderQuery{Oldest: true})
	if len(rows) != 2500 || rows[0][0] != "1" || rows[2499][0] != "2500" || rows[0][2] != "101" || rows[0][5] != "pen" || rows[0][8] != "paid" {
		t.Fatalf("got %d rows from %v to %v; want 2500, 1 to 2500", len(rows), rows[0], rows[len(rows)-1])
	}
	for k, r := range rows {
		if r[0] != strconv.Itoa(k+1) {
			t.Fatalf("row %d: got id %s", k, r[0])
		}
	}
	rows = read(t, api.OrderQuery{PageQuery: api.PageQuery{After: "2000", Limit: 1500}})
	if len(rows) != 1500 || rows[0][0] != "1999" || rows[1499][0] != "500" {
		t.Fatalf("from 2000 down, 1500 rows: got %d from %s to %s", len(rows), rows[0][0], rows[len(rows)-1][0])
	}
	code, body := get(t, f.url+"/admin/v1/activities/8/orders?limit=3", "Bearer "+admin, "text/csv")
	if code != 200 || strings.Count(body, "\n") != 4 || !strings.HasPrefix(body, "id,ticket") {
		t.Fatalf("Accept: text/csv: got %d %q", code, body)
	}
	code, body = get(t, f.url+"/admin/v1/activities/8/orders?limit=3&format=json", "Bearer "+admin, "text/csv")
	if code != 200 || !strings.HasPrefix(body, `{"orders":[`) {
		t.Fatalf("format=json over Accept: got %d %q", code, body)
	}
	// Before the answer begins, an error is an error answer.
	if err := op.ExportOrders(ctx, 99, api.OrderQuery{}, io.Discard); !isAPIError(err, 404, "not_found") {
		t.Fatalf("an unknown activity: got %v, want 404", err)
	}
	// After, the transfer breaks: no file that looks whole.
	stub.mu.Lock()
	stub.pageCalls, stub.failCall = 0, 2
	stub.mu.Unlock()
	var buf bytes.Buffer
	err := op.ExportOrders(ctx, 8, api.OrderQuery{Oldest: true}, &buf)
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a page failing mid-export: got %v after %d bytes, want a broken transfer", err, buf.Len())
	}
	if n := strings.Count(buf.String(), "\n"); n != 1001 {
		t.Fatalf("a page failing mid-export: got %d lines before the break, want the header and the first page", n)
	}
}
