package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/gateway/wasm/wasmtest"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// The stub backend's answers for the API client's test: activity 8 ("launch")
// for the operators' routes, echoing what the gateway made of the request, and
// one order a shopper ("o-<user>", ticket "t-<user>").

var launchStart, launchEnd = time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC)

func launch(state string) *rpc.Activity {
	return &rpc.Activity{Id: 8, Name: "launch", StartMs: launchStart.UnixMilli(), EndMs: launchEnd.UnixMilli(), State: state,
		Strategy: "bucket", PerUserLimit: 2, BucketCount: 4, Version: 1,
		Items: []*rpc.Item{{Id: 80, ActivityId: 8, Name: "pen", PriceCents: 100, TotalStock: 5, Remaining: -1}}}
}

func notFound(what string) error {
	return rpcerr.ToBiz(domain.Errorf(domain.ENotFound, "%s not found", what))
}

func (s *stubBackend) CreateActivity(_ context.Context, req *rpc.CreateActivityReq) (*rpc.Activity, error) {
	s.mu.Lock()
	d := s.adminDelay
	s.mu.Unlock()
	time.Sleep(d)
	a := &rpc.Activity{Id: 8, Name: req.Name, StartMs: req.StartMs, EndMs: req.EndMs, State: "draft", Strategy: req.Strategy,
		PerUserLimit: req.PerUserLimit, BucketCount: req.BucketCount, Version: 1}
	for i, it := range req.Items {
		a.Items = append(a.Items, &rpc.Item{Id: 80 + int64(i), ActivityId: 8, Name: it.Name, PriceCents: it.PriceCents, TotalStock: it.Stock, Remaining: -1})
	}
	return a, nil
}

func (s *stubBackend) UpdateActivity(_ context.Context, req *rpc.UpdateActivityReq) (*rpc.Activity, error) {
	s.items.saw(req)
	a := launch("draft")
	a.Version = 2
	if req.Name != nil {
		a.Name = *req.Name
	}
	if req.EndMs != nil {
		a.EndMs = *req.EndMs
	}
	for _, ch := range req.Items {
		if ch.ItemId == 80 && ch.TotalStock != nil {
			a.Items[0].TotalStock = *ch.TotalStock
		}
	}
	return a, nil
}

func (s *stubBackend) AdminGetActivity(_ context.Context, req *rpc.IDReq) (*rpc.Activity, error) {
	if req.Id != 8 {
		return nil, notFound(fmt.Sprintf("activity %d", req.Id))
	}
	return launch("draft"), nil
}

func (s *stubBackend) PublishActivity(context.Context, *rpc.IDReq) (*rpc.Activity, error) {
	return launch("published"), nil
}

func (s *stubBackend) OfflineActivity(context.Context, *rpc.IDReq) (*rpc.Activity, error) {
	return launch("offline"), nil
}

func (s *stubBackend) ListActivities(_ context.Context, req *rpc.ListActivitiesReq) (*rpc.ListActivitiesResp, error) {
	s.count(fmt.Sprintf("ListActivities:%v", req.IncludeAll))
	s.items.saw(req)
	if req.IncludeAll {
		return &rpc.ListActivitiesResp{Activities: []*rpc.Activity{launch("draft")}}, nil
	}
	return &rpc.ListActivitiesResp{Activities: []*rpc.Activity{launch("published")}}, nil
}

func stubOrder(user int64, status string) *rpc.Order {
	return &rpc.Order{Id: fmt.Sprintf("o-%d", user), UserId: user, ActivityId: 7, ItemId: 70, Quantity: 1, AmountCents: 100,
		Status: status, CreatedMs: launchStart.UnixMilli(), Ticket: fmt.Sprintf("t-%d", user)}
}

// GetTicket answers t-<user> of its user: pending while the stub's pending says so,
// else created, at once whatever wait_ms asks (as a backend that does not know it).
func (s *stubBackend) GetTicket(_ context.Context, req *rpc.TicketReq) (*rpc.TicketResp, error) {
	s.count("GetTicket")
	s.mu.Lock()
	s.waits = append(s.waits, req.WaitMs)
	s.mu.Unlock()
	if req.Ticket != fmt.Sprintf("t-%d", req.UserId) {
		return nil, notFound("ticket " + req.Ticket)
	}
	s.mu.Lock()
	pending := s.pending[req.Ticket]
	s.mu.Unlock()
	if pending {
		return &rpc.TicketResp{Status: "pending"}, nil
	}
	return &rpc.TicketResp{Status: "created", OrderId: fmt.Sprintf("o-%d", req.UserId)}, nil
}

func (s *stubBackend) setPending(ticket string, pending bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = map[string]bool{}
	}
	s.pending[ticket] = pending
}

func (s *stubBackend) ListOrders(_ context.Context, req *rpc.ListOrdersReq) (*rpc.ListOrdersResp, error) {
	s.count("ListOrders")
	s.items.saw(req)
	return &rpc.ListOrdersResp{Orders: []*rpc.Order{stubOrder(req.UserId, "created")}}, nil
}

func (s *stubBackend) orderAs(req *rpc.OrderReq, status string) (*rpc.Order, error) {
	s.count("order:" + status)
	if req.OrderId != fmt.Sprintf("o-%d", req.UserId) {
		return nil, notFound("order " + req.OrderId)
	}
	return stubOrder(req.UserId, status), nil
}

func (s *stubBackend) GetOrder(_ context.Context, req *rpc.OrderReq) (*rpc.Order, error) {
	return s.orderAs(req, "created")
}

func (s *stubBackend) CancelOrder(_ context.Context, req *rpc.OrderReq) (*rpc.Order, error) {
	return s.orderAs(req, "cancelled")
}

func (s *stubBackend) PayOrder(_ context.Context, req *rpc.OrderReq) (*rpc.Order, error) {
	return s.orderAs(req, "paid")
}

func ptr[T any](v T) *T { return &v }

// TestAPIClient drives every method of api.Client against the gateway's real
// handlers: what the client sends must reach the backend as meant, and what the
// gateway answers must come back typed.
func TestAPIClient(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	ctx := context.Background()
	op := &api.Client{BaseURL: f.url, AdminToken: admin, Timeout: 10 * time.Second}
	shop := op.AsShopper(tok(t, 5))

	launchJSON := func(state string, version int64) *api.Activity {
		return &api.Activity{ID: 8, Name: "launch", Start: "2026-11-25T20:00:00Z", End: "2026-11-25T21:00:00Z", State: state,
			Strategy: "bucket", PerUserLimit: 2, BucketCount: 4, Version: version,
			Items: []api.Item{{ID: 80, ActivityID: 8, Name: "pen", PriceCents: 100, TotalStock: 5, State: "online"}}}
	}
	changed := launchJSON("draft", 2)
	changed.Name, changed.End, changed.Items[0].TotalStock = "relaunch", "2026-11-25T22:00:00Z", 9
	orderJSON := func(status string) *api.Order {
		return &api.Order{ID: "o-5", Ticket: "t-5", ActivityID: 7, ItemID: 70, Quantity: 1, AmountCents: 100, Status: status,
			CreatedAt: "2026-11-25T20:00:00Z"}
	}
	f.backend.mu.Lock()
	sale := f.backend.activity
	f.backend.mu.Unlock()
	rfc := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
	limits := api.Limits{User: api.Rule{RPS: 100, Burst: 100}, IP: api.Rule{RPS: 1000, Burst: 10}}

	tests := []struct {
		name string
		call func() (any, error)
		want any
	}{
		{"CreateActivity", func() (any, error) {
			return op.CreateActivity(ctx, api.CreateActivityRequest{Name: "launch", Start: "2026-11-25T20:00:00Z", End: "2026-11-25T21:00:00Z",
				Strategy: "bucket", PerUserLimit: 2, BucketCount: 4, Items: []api.ItemSpec{{Name: "pen", PriceCents: 100, Stock: 5}}})
		}, launchJSON("draft", 1)},
		{"Activity", func() (any, error) { return op.Activity(ctx, 8) }, launchJSON("draft", 1)},
		{"Activities", func() (any, error) { return op.Activities(ctx) }, []api.Activity{*launchJSON("draft", 1)}},
		{"UpdateActivity", func() (any, error) {
			return op.UpdateActivity(ctx, 8, api.UpdateActivityRequest{Name: ptr("relaunch"), End: ptr("2026-11-25T22:00:00Z"),
				Items: []api.ItemChange{{ID: 80, TotalStock: ptr[int64](9)}}})
		}, changed},
		{"Publish", func() (any, error) { return op.Publish(ctx, 8) }, launchJSON("published", 1)},
		{"Offline", func() (any, error) { return op.Offline(ctx, 8) }, launchJSON("offline", 1)},
		{"Stats", func() (any, error) { return op.Stats(ctx, 8) },
			&api.Stats{ActivityID: 8, BackendShed: map[string]int64{}, GatewayShed: map[string]int64{}, Items: []api.ItemStats{}}},
		{"SetLimits", func() (any, error) { return rulesOf(op.SetLimits(ctx, limits)) }, limits},
		{"Limits", func() (any, error) { return rulesOf(op.Limits(ctx)) }, limits},
		{"SetLimits of limits as read (version, gateways and all)", func() (any, error) {
			read, err := op.Limits(ctx)
			if err != nil {
				return nil, err
			}
			if read.Version == 0 {
				return nil, fmt.Errorf("limits read after a change have version 0")
			}
			return rulesOf(op.SetLimits(ctx, *read))
		}, limits},
		{"a change that changes nothing stores no version", func() (any, error) {
			before, err := op.Limits(ctx)
			if err != nil {
				return nil, err
			}
			for _, body := range []string{`{}`, `null`, `{"user": {"rps": 100}}`} {
				var after api.Limits
				if err := op.Do(ctx, "PUT", "/admin/v1/limits", []byte(body), &after); err != nil {
					return nil, err
				}
				if after.Version != before.Version {
					return nil, fmt.Errorf("%s: version %d -> %d", body, before.Version, after.Version)
				}
			}
			return "same version", nil
		}, "same version"},
		{"Do, the answer as sent", func() (any, error) {
			var raw json.RawMessage
			err := op.Do(ctx, "GET", "/admin/v1/limits", nil, &raw)
			rules, _, _ := strings.Cut(string(raw), `,"version"`)
			return rules, err
		}, `{"global":{"rps":0,"burst":0},"read":{"rps":0,"burst":0},"user":{"rps":100,"burst":100},"user_read":{"rps":0,"burst":0},"item":{"rps":0,"burst":0},"ip":{"rps":1000,"burst":10}`},
		{"PlaceOrder", func() (any, error) {
			return shop.PlaceOrder(ctx, api.PlaceOrderRequest{ActivityID: 7, ItemID: 70, Quantity: 1}, "k-1")
		}, &api.PlaceOrderResponse{Status: "pending", Ticket: "7-70-t5"}},
		{"the key reached the backend", func() (any, error) {
			f.backend.mu.Lock()
			defer f.backend.mu.Unlock()
			return f.backend.keys[len(f.backend.keys)-1], nil
		}, "k-1"},
		{"Ticket", func() (any, error) { return shop.Ticket(ctx, "t-5") }, &api.Ticket{Status: "created", OrderID: "o-5"}},
		{"Orders", func() (any, error) { return shop.Orders(ctx) }, []api.Order{*orderJSON("created")}},
		{"Order", func() (any, error) { return shop.Order(ctx, "o-5") }, orderJSON("created")},
		{"Cancel", func() (any, error) { return shop.Cancel(ctx, "o-5") }, orderJSON("cancelled")},
		{"Pay", func() (any, error) { return shop.Pay(ctx, "o-5") }, orderJSON("paid")},
		{"PublicActivities", func() (any, error) { return shop.PublicActivities(ctx) }, []api.Activity{*launchJSON("published", 1)}},
		{"PublicActivity", func() (any, error) { return shop.PublicActivity(ctx, 7) },
			&api.Activity{ID: 7, Name: "sale", Start: rfc(sale.StartMs), End: rfc(sale.EndMs), State: "published", Strategy: "async",
				Items: []api.Item{{ID: 70, ActivityID: 7, Remaining: ptr[int64](0), State: "online"}}}},
		{"Item", func() (any, error) { return shop.Item(ctx, 70) }, &api.Item{ID: 70, ActivityID: 7, Remaining: ptr[int64](5), State: "online"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(tt.want)
				t.Errorf("got %s, want %s", g, w)
			}
		})
	}

	t.Run("plugins", func(t *testing.T) {
		wasmBytes := wasmtest.ReadModule(t, "../plugins/examples/blocklist/blocklist.wasm")
		p, err := op.PutPlugin(ctx, "blocklist", api.PutPluginRequest{WasmBase64: base64.StdEncoding.EncodeToString(wasmBytes),
			Config: json.RawMessage(`{"users":["13"]}`), FailPolicy: "closed"})
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != "blocklist" || string(p.Config) != `{"users":["13"]}` || p.FailPolicy != "closed" || len(p.SHA256) != 64 {
			t.Errorf("got %+v, want blocklist as put", p)
		}
		list, err := op.Plugins(ctx)
		if err != nil || len(list) != 1 || list[0].SHA256 != p.SHA256 {
			t.Errorf("got %+v, %v, want [blocklist]", list, err)
		}
		if err := op.DeletePlugin(ctx, "blocklist"); err != nil {
			t.Errorf("got %v, want it unloaded", err)
		}
	})

	limited := op.AsShopper(tok(t, 6))
	tests2 := []struct {
		name       string
		call       func() error
		wantStatus int
		wantCode   string
	}{
		{"someone else's order", func() error { _, err := shop.Order(ctx, "o-6"); return err }, 404, "not_found"},
		{"unknown plugin", func() error { return op.DeletePlugin(ctx, "blocklist") }, 404, "not_found"},
		{"bad module", func() error {
			_, err := op.PutPlugin(ctx, "bad", api.PutPluginRequest{WasmBase64: base64.StdEncoding.EncodeToString([]byte("garbage"))})
			return err
		}, 400, "bad_request"},
		{"bad body", func() error { return op.Do(ctx, "PUT", "/admin/v1/limits", []byte(`{"user": {"rps": -1}}`), nil) }, 400, "bad_request"},
		{"a number in a string", func() error { return op.Do(ctx, "PUT", "/admin/v1/limits", []byte(`{"user": {"rps": "7"}}`), nil) }, 400, "bad_request"},
		{"zero quantity", func() error {
			_, err := shop.PlaceOrder(ctx, api.PlaceOrderRequest{ActivityID: 7, ItemID: 70}, "")
			return err
		}, 400, "bad_request"},
		{"no shopper token", func() error { _, err := op.Orders(ctx); return err }, 401, "unauthorized"},
		{"shopper token on the admin API", func() error {
			_, err := (&api.Client{BaseURL: f.url, AdminToken: tok(t, 5)}).Limits(ctx)
			return err
		}, 403, "forbidden"},
		{"rate limited", func() error {
			if _, err := op.SetLimits(ctx, api.Limits{User: api.Rule{RPS: 0.1, Burst: 1}}); err != nil {
				return err
			}
			if _, err := limited.PlaceOrder(ctx, api.PlaceOrderRequest{ActivityID: 7, ItemID: 70, Quantity: 1}, ""); err != nil {
				return fmt.Errorf("the first order: %w", err)
			}
			_, err := limited.PlaceOrder(ctx, api.PlaceOrderRequest{ActivityID: 7, ItemID: 70, Quantity: 1}, "")
			return err
		}, 429, "rate_limited"},
	}
	for _, tt := range tests2 {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *api.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *api.Error", err)
			}
			if e.Status != tt.wantStatus || e.Code != tt.wantCode || e.Message == "" {
				t.Errorf("got %d %q %q, want %d %q with a message", e.Status, e.Code, e.Message, tt.wantStatus, tt.wantCode)
			}
			if tt.wantStatus == 429 && e.RetryAfter < time.Second {
				t.Errorf("got RetryAfter %v, want at least 1s", e.RetryAfter)
			}
		})
	}
}

// rulesOf is the four rules of an answer of the limits (without its version and the
// fleet's view).
func rulesOf(l *api.Limits, err error) (api.Limits, error) {
	if l == nil {
		return api.Limits{}, err
	}
	return api.Limits{Global: l.Global, User: l.User, Item: l.Item, IP: l.IP}, err
}
