package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seckill/flashsale/config"
)

// TestEmbeddedStack: the all-in-one mode with no server configured sells a sale
// exactly, on the stand-ins.
func TestEmbeddedStack(t *testing.T) {
	cfg := config.Default()
	cfg.Gateway.JWTSecret, cfg.Gateway.AdminToken = jwtSecret, adminToken
	cfg.Gateway.Listen, cfg.Backend.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Gateway.Limits.User.RPS, cfg.Gateway.Limits.User.Burst = 1000, 1000
	s, err := StartStack(context.Background(), cfg, newRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		s.Close()
	})
	if len(s.Embedded) != 3 {
		t.Fatalf("got stand-ins %v, want mysql, redis and the queue", s.Embedded)
	}
	st := &stack{url: s.URL()}
	aid, iid := st.sale(t, "embedded", "async", 10)
	tickets := map[int64]string{}
	for u := int64(1); u <= 15; u++ {
		code, out := st.do(t, "POST", "/api/v1/orders", token(t, u), map[string]any{"activity_id": aid, "item_id": iid, "quantity": 1}, nil)
		switch code {
		case http.StatusAccepted:
			tickets[u] = out["ticket"].(string)
		case http.StatusConflict:
		default:
			t.Fatalf("user %d: got %d %v", u, code, out)
		}
	}
	if len(tickets) != 10 {
		t.Fatalf("got %d admitted, want 10", len(tickets))
	}
	deadline := time.Now().Add(30 * time.Second)
	for u, tk := range tickets {
		for {
			_, out := st.do(t, "GET", "/api/v1/orders/tickets/"+tk, token(t, u), nil, nil)
			if out["status"] == "created" {
				break
			}
			if out["status"] != "pending" || time.Now().After(deadline) {
				t.Fatalf("ticket of %d: got %v", u, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	_, stats := st.do(t, "GET", fmt.Sprintf("/admin/v1/activities/%d/stats", aid), adminToken, nil, nil)
	it := stats["items"].([]any)[0].(map[string]any)
	if it["orders"].(float64) != 10 || it["mysql_stock"].(float64) != 0 || it["redis_stock"].(float64) != 0 {
		t.Fatalf("stats: got %v", it)
	}
}

// TestAdminCLI drives the operator CLI against the embedded stack.
func TestAdminCLI(t *testing.T) {
	cfg := config.Default()
	cfg.Gateway.JWTSecret, cfg.Gateway.AdminToken = jwtSecret, adminToken
	cfg.Gateway.Listen, cfg.Backend.Listen = "127.0.0.1:0", "127.0.0.1:0"
	s, err := StartStack(context.Background(), cfg, newRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	dir := t.TempDir()
	sale := dir + "/sale.json"
	os.WriteFile(sale, []byte(`{"name": "cli", "start": "2026-01-01T00:00:00Z", "end": "2036-01-01T00:00:00Z", "strategy": "sync",
		"per_user_limit": 1, "items": [{"name": "pen", "price_cents": 100, "stock": 3}]}`), 0o600)
	admin := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := run(append([]string{"admin", "-url", s.URL(), "-token", adminToken}, args...), &out, &errb)
		return out.String() + errb.String(), code
	}
	out, code := admin("activities", "create", "-file", sale)
	if code != 0 || !strings.Contains(out, `"state": "draft"`) {
		t.Fatalf("create: exit %d: %s", code, out)
	}
	var a struct{ ID int64 }
	json.Unmarshal([]byte(out), &a)
	id := strconv.FormatInt(a.ID, 10)
	for _, args := range [][]string{{"activities", "publish", id}, {"activities", "stats", id}, {"activities", "list"}, {"limits", "get"},
		{"plugins", "load", "blocklist", "-wasm", "plugins/examples/blocklist/blocklist.wasm", "-config", `{"users": ["9"]}`}, {"plugins", "list"}, {"plugins", "remove", "blocklist"}} {
		if out, code := admin(args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, out)
		}
	}
	if out, code := admin("activities", "get", "999999"); code == 0 || !strings.Contains(out, "not_found") {
		t.Fatalf("unknown id: exit %d: %s", code, out)
	}
	if code := run([]string{"admin", "-url", s.URL(), "-token", "wrong-token-0123456789", "limits", "get"}, io.Discard, io.Discard); code == 0 {
		t.Fatal("wrong token: exit 0, want an error")
	}
}
