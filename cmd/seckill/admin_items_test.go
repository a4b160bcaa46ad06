package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/backend/testenv"
	"github.com/seckill/flashsale/config"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/auth"
)

// TestAdminCLIItemsAndOrders drives the item, list and export commands of the
// operator CLI against the whole system on the real services.
func TestAdminCLIItemsAndOrders(t *testing.T) {
	ctx := context.Background()
	db := testenv.MySQL(t)
	tag := "cli" + testenv.ID()
	cfg := config.Default()
	cfg.Fleet = tag
	cfg.MySQL = config.MySQLConfig{DSN: db.DSN}
	cfg.Redis = config.RedisConfig{Addrs: []string{testenv.RedisAddr()}}
	cfg.RocketMQ = config.RocketMQConfig{NameServers: testenv.NameServers(), Topic: testenv.TestTopic(), Group: "g_" + tag, Tag: tag}
	cfg.Gateway.JWTSecret, cfg.Gateway.AdminToken = jwtSecret, adminToken
	cfg.Backend.OrdersSettle = -1 // orders are listed the moment they are written
	cfg.AnyPorts()
	s, err := app.Start(ctx, cfg, app.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	admin := func(args ...string) (stdout, stderr string, code int) {
		var out, errb bytes.Buffer
		code = run(append([]string{"admin", "-url", s.URL(), "-token", adminToken}, args...), &out, &errb)
		return out.String(), errb.String(), code
	}
	must := func(args ...string) string {
		t.Helper()
		out, errs, code := admin(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s%s", args, code, out, errs)
		}
		return out
	}
	var a api.Activity
	decode := func(out string) *api.Activity {
		t.Helper()
		a = api.Activity{}
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return &a
	}
	dir := t.TempDir()
	now := time.Now().UTC()
	sale := dir + "/sale.json"
	os.WriteFile(sale, []byte(fmt.Sprintf(`{"name": "cli items", "start": %q, "end": %q, "strategy": "sync", "per_user_limit": 10,
		"items": [{"name": "pen", "price_cents": 100, "stock": 20}]}`, now.Add(-time.Minute).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))), 0o600)
	id := strconv.FormatInt(decode(must("activities", "create", "-file", sale)).ID, 10)
	pen := a.Items[0].ID
	must("activities", "publish", id)

	// Items: added with flags, offline, with a window of its own; then changed.
	start := now.Add(10 * time.Minute).Format(time.RFC3339)
	decode(must("items", "add", id, "-name", "cap", "-price", "500", "-stock", "3", "-state", "offline", "-start", start))
	capItem := a.Items[1]
	if capItem.Name != "cap" || capItem.State != "offline" || capItem.Start != start || capItem.TotalStock != 3 {
		t.Fatalf("items add: got %+v", capItem)
	}
	capID := strconv.FormatInt(capItem.ID, 10)
	if decode(must("items", "online", id, capID)); a.Items[1].State != "online" {
		t.Fatalf("items online: got %+v", a.Items[1])
	}
	if decode(must("items", "update", id, capID, "-start", "", "-stock", "5")); a.Items[1].Start != "" || a.Items[1].TotalStock != 5 {
		t.Fatalf("items update: got %+v, want no start of its own, 5 units", a.Items[1])
	}
	change := dir + "/change.json"
	os.WriteFile(change, []byte(`{"name": "red cap", "price_cents": 450}`), 0o600)
	if decode(must("items", "update", id, capID, "-file", change)); a.Items[1].Name != "red cap" || a.Items[1].PriceCents != 450 {
		t.Fatalf("items update -file: got %+v", a.Items[1])
	}
	item := dir + "/item.json"
	os.WriteFile(item, []byte(`{"name": "mug", "price_cents": 900, "stock": 2}`), 0o600)
	if decode(must("items", "add", id, "-file", item)); len(a.Items) != 3 || a.Items[2].Name != "mug" {
		t.Fatalf("items add -file: got %+v", a.Items)
	}
	if decode(must("items", "offline", id, capID)); a.Items[1].State != "offline" {
		t.Fatalf("items offline: got %+v", a.Items[1])
	}
	shop := &api.Client{BaseURL: s.URL()}
	tok, err := auth.Mint([]byte(jwtSecret), 5, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = shop.AsShopper(tok).PlaceOrder(ctx, api.PlaceOrderRequest{ActivityID: a.ID, ItemID: capItem.ID, Quantity: 1}, "")
	if e := (*api.Error)(nil); !errors.As(err, &e) || e.Status != 404 {
		t.Fatalf("an order of the cap taken offline by the CLI: got %v, want 404", err)
	}

	// Bad input is refused with what is wrong.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"items", "add", id}, "items add needs -file or -name"},
		{[]string{"items", "update", id, capID}, "items update needs -file or a field to change"},
		{[]string{"items", "update", id, capID, "-file", change, "-name", "x"}, "either in -file or as flags, not both"},
		{[]string{"items", "offline", id}, "takes the activity's and the item's ids"},
		{[]string{"items", "online", "abc", capID}, `the activity id must be a positive integer, not "abc"`},
		{[]string{"activities", "list", "-status", "paid"}, "activities list does not take -status"},
		{[]string{"activities", "orders", id, "-o", "x.csv"}, "activities orders does not take -o"},
		{[]string{"activities", "orders", id, "-status", "lost"}, `unknown order state "lost"`},
		{[]string{"activities", "list", "-state", "closed"}, "state must be draft, published or offline"},
		{[]string{"items", "add", id, "-name", "late", "-end", now.Add(2 * time.Hour).Format(time.RFC3339)}, "must lie within the activity's"},
	} {
		out, errs, code := admin(tt.args...)
		if code == 0 || !strings.Contains(out+errs, tt.want) {
			t.Fatalf("%v: got exit %d %s%s, want an error saying %s", tt.args, code, out, errs, tt.want)
		}
	}

	// Orders: pages with a hint to the next, every page, an export.
	for u := int64(1); u <= 5; u++ {
		tok, err := auth.Mint([]byte(jwtSecret), u, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := shop.AsShopper(tok).PlaceOrder(ctx, api.PlaceOrderRequest{ActivityID: a.ID, ItemID: pen, Quantity: 1}, ""); err != nil {
			t.Fatal(err)
		}
	}
	out, errs, code := admin("activities", "orders", id, "-limit", "2", "-oldest")
	var page api.OrderList
	if code != 0 || json.Unmarshal([]byte(out), &page) != nil || len(page.Orders) != 2 || page.Next == "" ||
		!strings.Contains(errs, "seckill admin activities orders "+id+" -after "+page.Next) {
		t.Fatalf("a page of orders: exit %d %s %s", code, out, errs)
	}
	rest := must("activities", "orders", id, "-all", "-limit", "2", "-after", page.Next, "-oldest")
	page = api.OrderList{}
	if err := json.Unmarshal([]byte(rest), &page); err != nil ||
		len(page.Orders) != 3 || page.Next != "" || page.Orders[0].UserID != 3 {
		t.Fatalf("the rest of the orders: got %+v, %v", page, err)
	}
	csvFile := dir + "/orders.csv"
	must("activities", "export", id, "-o", csvFile, "-oldest")
	f, err := os.Open(csvFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) != 6 || rows[1][2] != "1" || rows[5][5] != "pen" {
		t.Fatalf("export: got %v, %v; want a header and 5 orders", rows, err)
	}
	if got := must("activities", "export", id, "-limit", "2", "-status", "created"); strings.Count(got, "\n") != 3 {
		t.Fatalf("export to standard output, 2 rows: got %q", got)
	}
	var list api.ActivityList
	if err := json.Unmarshal([]byte(must("activities", "list", "-state", "published", "-all", "-limit", "1")), &list); err != nil ||
		len(list.Activities) != 1 || list.Activities[0].ID != a.ID {
		t.Fatalf("activities list -all: got %+v, %v", list, err)
	}
}
