package app_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/config"
)

// TestEmbeddedStack: the all-in-one mode with no server configured sells a sale
// exactly, on the stand-ins.
func TestEmbeddedStack(t *testing.T) {
	cfg := config.Default()
	cfg.Gateway.JWTSecret, cfg.Gateway.AdminToken = jwtSecret, adminToken
	cfg.AnyPorts()
	cfg.Gateway.Limits.User.RPS, cfg.Gateway.Limits.User.Burst = 1000, 1000
	cfg.Gateway.Limits.UserRead.RPS, cfg.Gateway.Limits.UserRead.Burst = 1000, 1000
	st := start(t, cfg, app.Options{Embedded: true})
	if s := st.sys; len(s.Embedded) != 3 {
		t.Fatalf("got stand-ins %v, want mysql, redis and the queue", s.Embedded)
	}
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
