package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend"
	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcauth"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/gateway/auth"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/internal/reqid"
)

const (
	secret = "gateway-test-jwt-9f86d081884c7d65"
	admin  = "gateway-test-admin-a2feaa0c55ad015"
)

// rpcSecrets are the RPC credentials of the tests' gateways and stub backends: every
// stub checks them as a backend does (rpcauth.ServerMiddleware), so each test also
// shows that the gateway sends the operator credential exactly where it must.
var rpcSecrets = rpcauth.Secrets{Service: "gateway-test-rpc-service-c81e728d9d4c2f", Operator: "gateway-test-rpc-operator-eccbc87e4b5ce2"}

// stubBackend is a kitex backend whose answers the test sets; the gateway is the
// subject here, the backend has tests of its own on the real services.
type stubBackend struct {
	fallback            // methods the tests do not use panic
	*backend.ControlRPC // the fleet's control state, in memory
	mu                  sync.Mutex
	activity            *rpc.Activity
	placeErr            error
	remaining           int64
	calls               map[string]int
	lastUser            int64
	placeDelay          time.Duration   // PlaceOrder answers this late (after taking the order)
	adminDelay          time.Duration   // CreateActivity answers this late (after creating it)
	keys                []string        // the idempotency keys PlaceOrder saw
	items               itemsStub       // items, lists and exports (items_test.go)
	pending             map[string]bool // tickets GetTicket answers pending
	lastRequestID       string          // the request id of the last PlaceOrder
	waits               []int64         // the wait_ms of each GetTicket
}

// fallback puts the service's methods one level below the stub's own and the
// control state's.
type fallback struct{ rpc.Seckill }

func (s *stubBackend) count(m string) {
	s.mu.Lock()
	s.calls[m]++
	s.mu.Unlock()
}

func (s *stubBackend) n(m string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[m]
}

func (s *stubBackend) GetActivity(_ context.Context, req *rpc.IDReq) (*rpc.Activity, error) {
	s.count("GetActivity")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.activity == nil || req.Id != s.activity.Id {
		return nil, rpcerr.ToBiz(domain.Errorf(domain.ENotFound, "activity %d not found", req.Id))
	}
	return s.activity, nil
}

// GetItem answers any id below unknownItems, with the stub's remaining stock: the
// items of the stub's activity in it, the others in another activity (otherActivity).
func (s *stubBackend) GetItem(_ context.Context, req *rpc.IDReq) (*rpc.Item, error) {
	s.count("GetItem")
	if req.Id >= unknownItems {
		return nil, rpcerr.ToBiz(domain.Errorf(domain.ENotFound, "item %d not found", req.Id))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	in := int64(otherActivity)
	if s.activity != nil {
		for _, it := range s.activity.Items {
			if it.Id == req.Id {
				in = s.activity.Id
			}
		}
	}
	return &rpc.Item{Id: req.Id, ActivityId: in, Remaining: s.remaining}, nil
}

// otherActivity is the activity of the stub's items outside its own activity.
const otherActivity = 9

// unknownItems is where the stub's unknown item ids start.
const unknownItems = 1_000_000

func (s *stubBackend) PlaceOrder(ctx context.Context, req *rpc.PlaceOrderReq) (*rpc.PlaceOrderResp, error) {
	s.count("PlaceOrder")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastUser = req.UserId
	s.lastRequestID = reqid.From(ctx)
	s.keys = append(s.keys, req.IdempotencyKey)
	if s.placeErr != nil {
		return nil, rpcerr.ToBiz(s.placeErr)
	}
	if d := s.placeDelay; d > 0 {
		s.mu.Unlock()
		time.Sleep(d)
		s.mu.Lock()
	}
	return &rpc.PlaceOrderResp{Status: "pending", Ticket: fmt.Sprintf("%d-%d-t%d", req.ActivityId, req.ItemId, req.UserId)}, nil
}

func (s *stubBackend) Ping(context.Context, *rpc.PingReq) (*rpc.PingResp, error) {
	return &rpc.PingResp{}, nil
}

func (s *stubBackend) GetActivityStats(_ context.Context, req *rpc.IDReq) (*rpc.ActivityStats, error) {
	return &rpc.ActivityStats{ActivityId: req.Id, Shed: map[string]int64{}}, nil
}

type fixture struct {
	url     string
	backend *stubBackend
	gw      *gateway.Main
}

// start is startGateway (faults_test.go) with the given rate limits.
func start(t *testing.T, limits ratelimit.Limits, opts ...func(*gateway.Config)) *fixture {
	t.Helper()
	return startGateway(t, append([]func(*gateway.Config){func(c *gateway.Config) { c.Limits = limits }}, opts...)...)
}

func tok(t testing.TB, user int64) string {
	t.Helper()
	s, err := auth.Mint([]byte(secret), user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type resp struct {
	status int
	body   map[string]any
	header http.Header
}

func (f *fixture) do(t testing.TB, method, path, token, body string, hdr ...string) resp {
	t.Helper()
	req, _ := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	out := resp{status: r.StatusCode, header: r.Header}
	json.NewDecoder(r.Body).Decode(&out.body)
	return out
}

const order = `{"activity_id": 7, "item_id": 70, "quantity": 1}`

func TestRefusalsByLayer(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	expired := func() string {
		s, _ := auth.Mint([]byte(secret), 5, -time.Minute)
		return s
	}()
	other, _ := auth.Mint([]byte("another-secret-0123456789abcdef"), 5, time.Hour)
	tests := []struct {
		name       string
		token      string
		body       string
		hdr        []string
		wantStatus int
		wantCode   string
	}{
		{"no token", "", order, nil, 401, "unauthorized"},
		{"expired token", expired, order, nil, 401, "unauthorized"},
		{"badly signed", other, order, nil, 401, "unauthorized"},
		{"malformed json", tok(t, 5), `{"activity_id": 7,`, nil, 400, "bad_request"},
		{"unknown field", tok(t, 5), `{"activity_id": 7, "item_id": 70, "quantity": 1, "price": 0}`, nil, 400, "bad_request"},
		{"two objects", tok(t, 5), order + order, nil, 400, "bad_request"},
		{"zero quantity", tok(t, 5), `{"activity_id": 7, "item_id": 70, "quantity": 0}`, nil, 400, "bad_request"},
		{"negative id", tok(t, 5), `{"activity_id": -7, "item_id": 70, "quantity": 1}`, nil, 400, "bad_request"},
		{"string id", tok(t, 5), `{"activity_id": "7", "item_id": 70, "quantity": 1}`, nil, 400, "bad_request"},
		{"too large", tok(t, 5), `{"activity_id": 7, "item_id": 70, "quantity": 1, "x": "` + strings.Repeat("a", 5000) + `"}`, nil, 413, "too_large"},
		{"bad idempotency key", tok(t, 5), order, []string{"Idempotency-Key", strings.Repeat("k", 200)}, 400, "bad_request"},
		{"unknown activity", tok(t, 5), `{"activity_id": 8, "item_id": 70, "quantity": 1}`, nil, 404, "not_found"},
		{"item not in activity", tok(t, 5), `{"activity_id": 7, "item_id": 71, "quantity": 1}`, nil, 404, "not_found"},
		{"admitted", tok(t, 5), order, nil, 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(t, "POST", "/api/v1/orders", tt.token, tt.body, tt.hdr...)
			code, _ := r.body["error"].(string)
			if r.status != tt.wantStatus || code != tt.wantCode {
				t.Fatalf("got %d %v, want %d %q", r.status, r.body, tt.wantStatus, tt.wantCode)
			}
			if tt.wantCode != "" && r.body["message"] == "" {
				t.Fatalf("got no message in %v", r.body)
			}
		})
	}
	if n := f.backend.n("PlaceOrder"); n != 1 {
		t.Fatalf("got %d orders at the backend, want only the admitted one", n)
	}
}

func TestAdminIdentity(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	if r := f.do(t, "GET", "/admin/v1/limits", "", ""); r.status != 401 {
		t.Fatalf("no token: got %d, want 401", r.status)
	}
	if r := f.do(t, "GET", "/admin/v1/limits", tok(t, 5), ""); r.status != 403 || r.body["error"] != "forbidden" {
		t.Fatalf("shopper token: got %d %v, want 403 forbidden", r.status, r.body)
	}
	if r := f.do(t, "GET", "/admin/v1/limits", admin, ""); r.status != 200 {
		t.Fatalf("admin token: got %d %v, want 200", r.status, r.body)
	}
}

// TestLimitChangesAtOnce: changes of different rules made at once all land: each
// is applied over the limits as stored, not over what was read before another
// change was stored (through this gateway or another of the fleet).
func TestLimitChangesAtOnce(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	kinds := []string{"global", "read", "user", "user_read", "item", "ip"}
	for round := range 5 {
		var wg sync.WaitGroup
		for i, k := range kinds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := fmt.Sprintf(`{%q: {"rps": %d, "burst": %d}}`, k, 100+round, 10+i)
				if r := f.do(t, "PUT", "/admin/v1/limits", admin, body); r.status != 200 {
					t.Errorf("round %d %s: got %d %v", round, body, r.status, r.body)
				}
			}()
		}
		wg.Wait()
		r := f.do(t, "GET", "/admin/v1/limits", admin, "")
		for i, k := range kinds {
			rule, _ := r.body[k].(map[string]any)
			if rule["rps"] != float64(100+round) || rule["burst"] != float64(10+i) {
				t.Fatalf("round %d: %s is %v after changes made at once, want rps %d burst %d (a change was lost)", round, k, rule, 100+round, 10+i)
			}
		}
	}
}

func TestRateLimitsAndRunTimeChange(t *testing.T) {
	f := start(t, ratelimit.Limits{User: ratelimit.Rule{RPS: 0.5, Burst: 1}})
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), order); r.status != 202 {
		t.Fatalf("first: got %d %v", r.status, r.body)
	}
	r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), order)
	if r.status != 429 || r.body["error"] != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Fatalf("second: got %d %v %v, want 429 with Retry-After", r.status, r.body, r.header)
	}
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 6), order); r.status != 202 {
		t.Fatalf("another user: got %d %v", r.status, r.body)
	}
	// An operator lifts the limit at run time.
	if r := f.do(t, "PUT", "/admin/v1/limits", admin, `{"user": {"rps": 100, "burst": 100}}`); r.status != 200 {
		t.Fatalf("put limits: got %d %v", r.status, r.body)
	}
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), order); r.status != 202 {
		t.Fatalf("after lifting: got %d %v", r.status, r.body)
	}
	if r := f.do(t, "PUT", "/admin/v1/limits", admin, `{"user": {"rps": -1}}`); r.status != 400 {
		t.Fatalf("negative limit: got %d, want 400", r.status)
	}
	// Rates the buckets cannot run (the shared bucket's arithmetic fails past them, and
	// each gateway then applies the limit alone) and bursts past 2^30 are refused.
	for _, body := range []string{`{"user": {"rps": 1e308}}`, `{"user": {"rps": 1e-300}}`, `{"user": {"rps": 1e-6}}`,
		`{"global": {"rps": 2e9}}`, `{"user": {"burst": 9223372036854775807}}`} {
		if r := f.do(t, "PUT", "/admin/v1/limits", admin, body); r.status != 400 || !strings.Contains(fmt.Sprint(r.body["message"]), "must be") {
			t.Fatalf("%s: got %d %v, want 400 naming the bounds", body, r.status, r.body)
		}
	}
	for _, body := range []string{`{"user": {"rps": 0}}`, `{"user": {"rps": 0.0001, "burst": 1}}`, `{"global": {"rps": 1e9, "burst": 1073741824}}`} {
		if r := f.do(t, "PUT", "/admin/v1/limits", admin, body); r.status != 200 {
			t.Fatalf("%s: got %d %v, want 200", body, r.status, r.body)
		}
	}
}

func TestEdgeCache(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	// Null objects: an unknown id reaches the backend once.
	for i := 0; i < 20; i++ {
		if r := f.do(t, "GET", "/api/v1/activities/999", "", ""); r.status != 404 || r.body["error"] != "not_found" {
			t.Fatalf("unknown activity: got %d %v", r.status, r.body)
		}
	}
	if n := f.backend.n("GetActivity"); n != 1 {
		t.Fatalf("got %d backend reads of an unknown id, want 1", n)
	}
	// Sold out: after the backend says so once, the edge answers alone.
	f.backend.mu.Lock()
	f.backend.placeErr = domain.Errorf(domain.ESoldOut, "item 70 is sold out")
	f.backend.remaining = 0
	f.backend.mu.Unlock()
	for i := 0; i < 10; i++ {
		if r := f.do(t, "POST", "/api/v1/orders", tok(t, int64(10+i)), order); r.status != 409 || r.body["error"] != "sold_out" {
			t.Fatalf("sold out: got %d %v", r.status, r.body)
		}
	}
	if n := f.backend.n("PlaceOrder"); n != 1 {
		t.Fatalf("got %d orders at the backend after it said sold out, want 1", n)
	}
	// Stock comes back (a cancel): the flag clears within about a second.
	f.backend.mu.Lock()
	f.backend.placeErr = nil
	f.backend.remaining = 1
	f.backend.mu.Unlock()
	deadline := time.Now().Add(2 * time.Second)
	for {
		r := f.do(t, "POST", "/api/v1/orders", tok(t, 50), order)
		if r.status == 202 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sold-out flag did not clear: %d %v", r.status, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The shed counts by layer and reason show in the stats.
	r := f.do(t, "GET", "/admin/v1/activities/7/stats", admin, "")
	shed, _ := r.body["gateway_shed"].(map[string]any)
	if shed["cache/sold_out"] == nil || shed["cache/sold_out"].(float64) < 9 || shed["backend/sold_out"].(float64) != 1 || shed["plugin/rejected"] != nil {
		t.Fatalf("stats: got %v, want cache/sold_out >= 9, backend/sold_out 1 and no plugin rejections", r.body)
	}
}

func TestOutsideWindowAtTheEdge(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	f.backend.mu.Lock()
	f.backend.activity.StartMs = time.Now().Add(time.Hour).UnixMilli()
	f.backend.activity.EndMs = time.Now().Add(2 * time.Hour).UnixMilli()
	f.backend.mu.Unlock()
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), order); r.status != 409 || r.body["error"] != "not_started" {
		t.Fatalf("got %d %v, want 409 not_started", r.status, r.body)
	}
	if n := f.backend.n("PlaceOrder"); n != 0 {
		t.Fatalf("got %d orders at the backend, want 0", n)
	}
}

// TestTrustedHeadersAndPlugins: a client cannot pose as another user to plugins, and a
// plugin loaded at run time rejects with its reason.
func TestTrustedHeadersAndPlugins(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	wasmBytes, err := os.ReadFile("../plugins/examples/blocklist/blocklist.wasm")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"wasm_base64": base64.StdEncoding.EncodeToString(wasmBytes), "config": map[string]any{"users": []string{"999"}}})
	if r := f.do(t, "PUT", "/admin/v1/plugins/blocklist", admin, string(body)); r.status != 200 && r.status != 201 {
		t.Fatalf("load plugin: got %d %v", r.status, r.body)
	}
	r := f.do(t, "POST", "/api/v1/orders", tok(t, 999), order)
	if r.status != 403 || r.body["error"] != "rejected" || !strings.Contains(fmt.Sprint(r.body["message"]), "blocklist") {
		t.Fatalf("blocked user: got %d %v, want 403 rejected by blocklist", r.status, r.body)
	}
	// User 5 claims to be 999, then to be 1 while 999 claims to be 5.
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), order, gateway.HeaderUser, "999"); r.status != 202 {
		t.Fatalf("spoofed header: got %d %v, want 202 (the header ignored)", r.status, r.body)
	}
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 999), order, gateway.HeaderUser, "5"); r.status != 403 {
		t.Fatalf("blocked user with a spoofed header: got %d %v, want 403", r.status, r.body)
	}
	f.backend.mu.Lock()
	last := f.backend.lastUser
	f.backend.mu.Unlock()
	if last != 5 {
		t.Fatalf("backend saw user %d, want 5", last)
	}
	if r := f.do(t, "PUT", "/admin/v1/plugins/bad", admin, `{"wasm_base64": "`+base64.StdEncoding.EncodeToString([]byte("garbage"))+`"}`); r.status != 400 {
		t.Fatalf("garbage module: got %d %v, want 400", r.status, r.body)
	}
	if r := f.do(t, "DELETE", "/admin/v1/plugins/blocklist", admin, ""); r.status >= 300 {
		t.Fatalf("unload: got %d %v", r.status, r.body)
	}
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 999), order); r.status != 202 {
		t.Fatalf("after unload: got %d %v, want 202", r.status, r.body)
	}
}

// TestBackendDown: with no backend, orders get 503 unavailable.
func TestBackendDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	g, err := gateway.Open(context.Background(), gateway.Config{Listen: "127.0.0.1:0", BackendAddrs: []string{addr}, JWTSecret: secret, AdminToken: admin, RPCSecrets: rpcSecrets,
		RPCTimeout: 500 * time.Millisecond}, gateway.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	f := &fixture{url: "http://" + g.Addr().String()}
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), order); r.status != 503 || r.body["error"] != "unavailable" {
		t.Fatalf("got %d %v, want 503 unavailable", r.status, r.body)
	}
	if r := f.do(t, "GET", "/readyz", "", ""); r.status != 503 {
		t.Fatalf("readyz: got %d, want 503", r.status)
	}
	if r := f.do(t, "GET", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthz: got %d, want 200", r.status)
	}
}

// TestBackendTooSlow: an order the backend takes but answers too late gets 504
// outcome_unknown, not 503 "nothing was taken", with the key that learns its outcome;
// a retry with that key reaches the backend with the same key (the backend answers it
// from the first attempt, never placing a second order).
func TestBackendTooSlow(t *testing.T) {
	f := start(t, ratelimit.Limits{}, func(c *gateway.Config) { c.RPCTimeout = 200 * time.Millisecond })
	f.backend.mu.Lock()
	f.backend.placeDelay = time.Second
	f.backend.mu.Unlock()
	for _, sent := range []string{"", "my-key-1"} {
		req, _ := http.NewRequest("POST", f.url+"/api/v1/orders", strings.NewReader(order))
		req.Header.Set("Authorization", "Bearer "+tok(t, 5))
		if sent != "" {
			req.Header.Set("Idempotency-Key", sent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		key := resp.Header.Get("Idempotency-Key")
		if resp.StatusCode != 504 || body["error"] != "outcome_unknown" || key == "" || (sent != "" && key != sent) ||
			!strings.Contains(fmt.Sprint(body["message"]), key) {
			t.Fatalf("key %q: got %d %v, key %q; want 504 outcome_unknown naming the key", sent, resp.StatusCode, body, key)
		}
		f.backend.mu.Lock()
		seen := f.backend.keys[len(f.backend.keys)-1]
		f.backend.mu.Unlock()
		if seen != key {
			t.Fatalf("the backend saw key %q, the answer says %q", seen, key)
		}
	}
	// An operator's change the backend makes but answers late: the activity may exist,
	// so the answer is 504 outcome_unknown, not 503 "nothing was taken".
	f.backend.mu.Lock()
	f.backend.adminDelay = time.Second
	f.backend.mu.Unlock()
	r := f.do(t, "POST", "/admin/v1/activities", admin, `{"name":"late","start":"2030-01-01T00:00:00Z","end":"2030-01-02T00:00:00Z","strategy":"sync","per_user_limit":1,"items":[{"name":"x","price_cents":1,"stock":1}]}`)
	if r.status != 504 || r.body["error"] != "outcome_unknown" {
		t.Fatalf("a create answered late: got %d %v, want 504 outcome_unknown", r.status, r.body)
	}
	f.backend.mu.Lock()
	f.backend.adminDelay = 0
	f.backend.mu.Unlock()

	// A refusal before the request leaves (nobody listening) is still 503 unavailable:
	// TestBackendDown.

	// A backend that failed inside the call (a panic it recovered, INTERNAL) may have
	// taken a unit first: the same answer, with the key.
	f.backend.mu.Lock()
	f.backend.placeDelay, f.backend.placeErr = 0, domain.Errorf(domain.EInternal, "panic")
	f.backend.mu.Unlock()
	r = f.do(t, "POST", "/api/v1/orders", tok(t, 6), order)
	if r.status != 504 || r.body["error"] != "outcome_unknown" || r.header.Get("Idempotency-Key") == "" {
		t.Fatalf("backend INTERNAL: got %d %v, key %q; want 504 outcome_unknown with a key", r.status, r.body, r.header.Get("Idempotency-Key"))
	}
}

func FuzzDecodeOrder(f *testing.F) {
	for _, s := range []string{order, `{}`, `{"activity_id": 1e400}`, `[]`, `{"activity_id": 1, "item_id": 2, "quantity": 3}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := gateway.DecodeOrder(b)
		if err == nil && (o.ActivityID <= 0 || o.ItemID <= 0 || o.Quantity <= 0 || o.Quantity > domain.MaxQuantity) {
			t.Fatalf("accepted %+v from %q", o, b)
		}
		if err != nil && !domain.IsCode(err, domain.EBadRequest) {
			t.Fatalf("got %v, want bad_request", err)
		}
	})
}

// TestRetryAfterSoldOutReachesBackend: a client's retry (same Idempotency-Key) of an
// order this gateway forwarded is answered by the backend, not refused as sold out.
func TestRetryAfterSoldOutReachesBackend(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), order, "Idempotency-Key", "first"); r.status != 202 {
		t.Fatalf("first: got %d %v", r.status, r.body)
	}
	f.backend.mu.Lock()
	f.backend.placeErr = domain.Errorf(domain.ESoldOut, "sold out")
	f.backend.remaining = 0
	f.backend.mu.Unlock()
	f.do(t, "POST", "/api/v1/orders", tok(t, 6), order) // flags the item
	f.backend.mu.Lock()
	f.backend.placeErr = nil // the backend replays user 5's first answer
	f.backend.mu.Unlock()
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), order, "Idempotency-Key", "first"); r.status != 202 {
		t.Fatalf("retry: got %d %v, want the first answer from the backend", r.status, r.body)
	}
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 7), order, "Idempotency-Key", "other"); r.status != 409 {
		t.Fatalf("a new key: got %d %v, want 409 from the edge", r.status, r.body)
	}
}

// TestWrongRPCCredential: a gateway whose RPC credential the backend refuses is not
// ready and says why; its shoppers get 503, and its fleet state never loads.
func TestWrongRPCCredential(t *testing.T) {
	stub := &stubBackend{calls: map[string]int{}, activity: &rpc.Activity{Id: 7, StartMs: time.Now().Add(-time.Hour).UnixMilli(),
		EndMs: time.Now().Add(time.Hour).UnixMilli(), Items: []*rpc.Item{{Id: 70, ActivityId: 7}}}}
	wrong := rpcauth.Secrets{Service: "gateway-test-rpc-wrong-a87ff679a2f3e71d", Operator: rpcSecrets.Operator}
	g, err := gateway.Open(context.Background(), gateway.Config{Listen: "127.0.0.1:0", BackendAddrs: []string{serveBackend(t, stub)},
		JWTSecret: secret, AdminToken: admin, RPCSecrets: wrong, RPCTimeout: 500 * time.Millisecond},
		gateway.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		g.Close()
	})
	f := &fixture{url: "http://" + g.Addr().String()}
	if r := f.do(t, "GET", "/api/v1/activities/7", "", ""); r.status != 503 || r.body["error"] != "unavailable" {
		t.Fatalf("read: got %d %v, want 503 unavailable", r.status, r.body)
	}
	resp, err := http.Get(f.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), "backend.rpc_secret") {
		t.Fatalf("readyz: got %d %s, want 503 naming backend.rpc_secret", resp.StatusCode, b)
	}
	if n := stub.n("GetActivity"); n != 0 {
		t.Fatalf("the backend's handler ran %d times for a refused credential, want 0", n)
	}
}

// TestPluginCannotRenameTheRequest: a rejecting plugin's response headers are kept
// (Retry-After), but the answer's X-Request-Id stays the request's: a guest set it to
// anything before (a probe), while the logs kept the real one.
func TestPluginCannotRenameTheRequest(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	wasmBytes, err := os.ReadFile("wasm/testdata/probe.wasm")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"wasm_base64": base64.StdEncoding.EncodeToString(wasmBytes)})
	if r := f.do(t, "PUT", "/admin/v1/plugins/probe", admin, string(body)); r.status != 200 {
		t.Fatalf("load plugin: got %d %v", r.status, r.body)
	}
	r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), order, "X-Probe", "reject-headers", gateway.HeaderRequestID, "client-chosen-id-1")
	if r.status != 429 || r.body["error"] != "rejected" {
		t.Fatalf("got %d %v, want 429 rejected", r.status, r.body)
	}
	if got := r.header.Values(gateway.HeaderRequestID); len(got) != 1 || got[0] != "client-chosen-id-1" {
		t.Errorf("X-Request-Id: got %q, want the request's own", got)
	}
	if got := r.header.Get("Retry-After"); got != "7" {
		t.Errorf("Retry-After: got %q, want the plugin's 7", got)
	}
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), order, gateway.HeaderRequestID, "client-chosen-id-2"); r.status != 202 ||
		r.header.Get(gateway.HeaderRequestID) != "client-chosen-id-2" {
		t.Fatalf("an admitted order: got %d %v %q, want 202 with its id", r.status, r.body, r.header.Get(gateway.HeaderRequestID))
	}
}

// TestOfflineRefusalsInTheStats: an order for an offline item of a known activity is
// counted in that activity's stats (cache/not_found): every not_found was left out, made-up
// activity ids' and real ones' alike (a fleet probe).
func TestOfflineRefusalsInTheStats(t *testing.T) {
	f := start(t, ratelimit.Limits{})
	f.backend.mu.Lock()
	f.backend.activity.Items[0].State = "offline"
	f.backend.mu.Unlock()
	for i := range 3 {
		if r := f.do(t, "POST", "/api/v1/orders", tok(t, int64(20+i)), order); r.status != 404 {
			t.Fatalf("an offline item: got %d %v, want 404", r.status, r.body)
		}
	}
	r := f.do(t, "GET", "/admin/v1/activities/7/stats", admin, "")
	shed, _ := r.body["gateway_shed"].(map[string]any)
	if got, _ := shed["cache/not_found"].(float64); got != 3 {
		t.Fatalf("stats: got %v, want cache/not_found 3", r.body)
	}
}
