package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/backend/testenv"
	"github.com/seckill/flashsale/config"
	"github.com/seckill/flashsale/gateway/auth"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/internal/secret"
)

const (
	jwtSecret  = "e2e-jwt-secret-5d41402abc4b2a76b9"
	adminToken = "e2e-admin-token-7215ee9c7d9dc229d2"
)

// stack is a system started by app.Start, and what the tests need of it.
type stack struct {
	url string
	sys *app.System
	db  *testenv.DB // the scratch database, on the real services
}

// realConfig is a configuration of the whole system on the real services, on a
// scratch database and a RocketMQ tag of the test's own, listeners on free ports.
func realConfig(t *testing.T) (config.Config, *testenv.DB) {
	t.Helper()
	db := testenv.MySQL(t)
	tag := "e2e" + testenv.ID()
	cfg := config.Default()
	cfg.Fleet = tag // apart from any other fleet on the shared Redis
	cfg.MySQL = config.MySQLConfig{DSN: db.DSN}
	cfg.Redis = config.RedisConfig{Addrs: []string{testenv.RedisAddr()}}
	cfg.RocketMQ = config.RocketMQConfig{NameServers: testenv.NameServers(), Topic: testenv.TestTopic(), Group: "g_" + tag, Tag: tag}
	cfg.AnyPorts()
	cfg.Gateway.JWTSecret, cfg.Gateway.AdminToken = jwtSecret, adminToken
	// Parts started apart (a backend alone, a second gateway) share these.
	cfg.Backend.RPCSecret, cfg.Backend.RPCOperatorSecret = secret.Generate(), secret.Generate()
	cfg.Gateway.Limits.User = ratelimit.Rule{RPS: 100, Burst: 100}
	cfg.Gateway.Limits.UserRead = ratelimit.Rule{RPS: 1000, Burst: 1000} // tests poll tickets in a loop
	cfg.Worker.Goroutines, cfg.Worker.BatchSize, cfg.Worker.MaxAttempts = 8, 1, 5
	return cfg, db
}

// start starts opts' roles on cfg and stops them when the test ends.
func start(t *testing.T, cfg config.Config, opts app.Options) *stack {
	t.Helper()
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	sys, err := app.Start(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections() // so the graceful shutdown has nothing to wait for
		sys.Close()
	})
	s := &stack{sys: sys}
	if sys.Gateway != nil {
		s.url = sys.URL()
	}
	return s
}

// startStack is the whole system on the real services.
func startStack(t *testing.T) *stack {
	t.Helper()
	cfg, db := realConfig(t)
	s := start(t, cfg, app.Options{})
	s.db = db
	return s
}

func (s *stack) do(t *testing.T, method, path, token string, body any, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// sale creates and publishes an activity of one item through the admin API.
func (s *stack) sale(t *testing.T, name, strategy string, stock int) (activity, item int64) {
	t.Helper()
	code, a := s.do(t, "POST", "/admin/v1/activities", adminToken, map[string]any{
		"name": name, "start": time.Now().Add(-time.Minute).Format(time.RFC3339), "end": time.Now().Add(time.Hour).Format(time.RFC3339),
		"strategy": strategy, "per_user_limit": 1, "items": []map[string]any{{"name": "phone", "price_cents": 19900, "stock": stock}},
	}, nil)
	if code != http.StatusCreated {
		t.Fatalf("create activity: got %d %v", code, a)
	}
	activity = int64(a["id"].(float64))
	item = int64(a["items"].([]any)[0].(map[string]any)["id"].(float64))
	if code, out := s.do(t, "POST", fmt.Sprintf("/admin/v1/activities/%d/publish", activity), adminToken, nil, nil); code != http.StatusOK {
		t.Fatalf("publish: got %d %v", code, out)
	}
	return activity, item
}

func token(t *testing.T, user int64) string {
	t.Helper()
	tok, err := auth.Mint([]byte(jwtSecret), user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestEndToEnd: orders travel gateway -> kitex -> backend -> Redis Lua -> RocketMQ ->
// worker -> MySQL, and tickets come back created.
func TestEndToEnd(t *testing.T) {
	for _, strategy := range []string{"async", "sync"} {
		t.Run(strategy, func(t *testing.T) { testEndToEnd(t, strategy) })
	}
}

func testEndToEnd(t *testing.T, strategy string) {
	s := startStack(t)
	const stock, buyers = 20, 30
	aid, iid := s.sale(t, "e2e "+strategy, strategy, stock)

	type result struct {
		user          int64
		code          int
		ticket, order string
		errCode       string
	}
	results := make(chan result, buyers)
	var wg sync.WaitGroup
	for u := int64(1); u <= buyers; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out := s.do(t, "POST", "/api/v1/orders", token(t, u), map[string]any{"activity_id": aid, "item_id": iid, "quantity": 1},
				map[string]string{"Idempotency-Key": fmt.Sprint("e2e-", u)})
			r := result{user: u, code: code}
			r.ticket, _ = out["ticket"].(string)
			r.order, _ = out["order_id"].(string)
			r.errCode, _ = out["error"].(string)
			results <- r
		}()
	}
	wg.Wait()
	close(results)
	admitted := map[int64]result{}
	for r := range results {
		switch {
		case strategy == "async" && r.code == http.StatusAccepted && r.ticket != "":
			admitted[r.user] = r
		case strategy == "sync" && r.code == http.StatusCreated && r.order != "":
			admitted[r.user] = r
		case r.code == http.StatusConflict && r.errCode == "sold_out":
		default:
			t.Fatalf("user %d: got %d %+v", r.user, r.code, r)
		}
	}
	if len(admitted) != stock {
		t.Fatalf("got %d admitted, want %d", len(admitted), stock)
	}
	// Poll every ticket to created.
	deadline := time.Now().Add(60 * time.Second)
	for u, r := range admitted {
		for {
			code, out := s.do(t, "GET", "/api/v1/orders/tickets/"+r.ticket, token(t, u), nil, nil)
			if code != http.StatusOK {
				t.Fatalf("ticket of user %d: got %d %v", u, code, out)
			}
			if out["status"] == "created" {
				if out["order_id"] == "" || (r.order != "" && out["order_id"] != r.order) {
					t.Fatalf("ticket of user %d: got %v, want order %q", u, out, r.order)
				}
				break
			}
			if out["status"] != "pending" || time.Now().After(deadline) {
				t.Fatalf("ticket of user %d: got %v", u, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Only the owner sees a ticket.
		if code, _ := s.do(t, "GET", "/api/v1/orders/tickets/"+r.ticket, token(t, u+1000), nil, nil); code != http.StatusNotFound {
			t.Fatalf("someone else's ticket: got %d, want 404", code)
		}
	}
	// The rows in MySQL, and the stock in Redis and MySQL.
	var orders, users int
	if err := s.db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT user_id) FROM orders WHERE item_id = ? AND status = 'created'`, iid).Scan(&orders, &users); err != nil {
		t.Fatal(err)
	}
	if orders != stock || users != stock {
		t.Fatalf("mysql: got %d orders of %d users, want %d of %d", orders, users, stock, stock)
	}
	code, st := s.do(t, "GET", fmt.Sprintf("/admin/v1/activities/%d/stats", aid), adminToken, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("stats: got %d %v", code, st)
	}
	it := st["items"].([]any)[0].(map[string]any)
	if it["redis_stock"].(float64) != 0 || it["mysql_stock"].(float64) != 0 || it["orders"].(float64) != stock || st["pending_tickets"].(float64) != 0 {
		t.Fatalf("stats: got %v, want redis 0, mysql 0, %d orders, nothing pending", it, stock)
	}
	// The sold-out answer now comes from the edge.
	code, out := s.do(t, "POST", "/api/v1/orders", token(t, 999), map[string]any{"activity_id": aid, "item_id": iid, "quantity": 1}, nil)
	if code != http.StatusConflict || out["error"] != "sold_out" {
		t.Fatalf("after the sale: got %d %v, want 409 sold_out", code, out)
	}
	// A cancel gives a unit back, and the edge's sold-out flag clears within a second.
	var someone int64
	var someOrder string
	for u := range admitted {
		someone = u
		break
	}
	code, list := s.do(t, "GET", "/api/v1/orders", token(t, someone), nil, nil)
	if code != http.StatusOK || len(list["orders"].([]any)) != 1 {
		t.Fatalf("my orders: got %d %v", code, list)
	}
	someOrder = list["orders"].([]any)[0].(map[string]any)["id"].(string)
	for n := 0; n < 2; n++ {
		code, out = s.do(t, "POST", "/api/v1/orders/"+someOrder+"/cancel", token(t, someone), nil, nil)
		if code != http.StatusOK || out["status"] != "cancelled" {
			t.Fatalf("cancel %d: got %d %v", n, code, out)
		}
	}
	var got int
	deadline = time.Now().Add(3 * time.Second)
	for {
		code, out = s.do(t, "POST", "/api/v1/orders", token(t, 5000), map[string]any{"activity_id": aid, "item_id": iid, "quantity": 1}, nil)
		if code == http.StatusAccepted || code == http.StatusCreated {
			got++
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a cancel: got %d %v, want the unit on sale again", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s: %d of %d buyers admitted, every ticket created, MySQL and Redis at 0, then a cancel resold", strategy, len(admitted), buyers)
}
