package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/testenv"
	"github.com/seckill/flashsale/config"
	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/gateway/auth"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/internal/secret"
)

// The waiting room on the real services, through the gateways' HTTP API: one backend
// and worker, several gateways sharing Redis (docs/WAITING_ROOM.md).

// roomStack is a backend and a worker, and gateways in front of them, of one fleet.
type roomStack struct {
	urls []string
	reg  *prometheus.Registry   // the backend's series
	gws  []*prometheus.Registry // each gateway's
	db   *testenv.DB
	be   *stack
	link *testenv.Proxy // between the gateways and the backend
}

func startRoomStack(t *testing.T, gateways int, change ...func(*config.Config)) *roomStack {
	t.Helper()
	cfg, db := realConfig(t)
	cfg.Gateway.WaitingRoom = gateway.RoomConfig{PlaceTTL: 3 * time.Second, PollMin: 5 * time.Millisecond, PollMax: 60 * time.Millisecond}
	cfg.Gateway.Limits.User = ratelimit.Rule{RPS: 10_000, Burst: 10_000}
	cfg.Gateway.Limits.Item = ratelimit.Rule{RPS: 1_000_000, Burst: 1_000_000}
	for _, f := range change {
		f(&cfg)
	}
	// The gateways call the backend's process: they all need its credentials.
	cfg.Backend.RPCSecret, cfg.Backend.RPCOperatorSecret = secret.Generate(), secret.Generate()
	rs := &roomStack{reg: app.NewRegistry(), db: db}
	rs.be = start(t, cfg, app.Options{Roles: []app.Role{app.Backend, app.Worker}, Registry: rs.reg})
	rs.link = testenv.NewProxy(t, rs.be.sys.Backend.Addr().String())
	gcfg := cfg
	gcfg.Gateway.BackendAddrs = []string{rs.link.Addr()}
	for range gateways {
		reg := app.NewRegistry()
		rs.gws = append(rs.gws, reg)
		rs.urls = append(rs.urls, start(t, gcfg, app.Options{Roles: []app.Role{app.Gateway}, Registry: reg}).url)
	}
	return rs
}

// call is one HTTP request to a gateway; it never fails the test (it may run on any
// goroutine): transport errors come back as err.
func call(method, url, token string, body any, hdr map[string]string) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

// roomSale creates and publishes an activity of one item with the waiting room on.
func (rs *roomStack) roomSale(t *testing.T, strategy string, stock int, k float64, buckets int) (activity, item int64) {
	t.Helper()
	code, a, err := call("POST", rs.urls[0]+"/admin/v1/activities", adminToken, map[string]any{
		"name": "room " + strategy, "start": time.Now().Add(-time.Minute).Format(time.RFC3339), "end": time.Now().Add(time.Hour).Format(time.RFC3339),
		"strategy": strategy, "per_user_limit": 1, "bucket_count": buckets, "waiting_room": map[string]any{"enabled": true, "k": k},
		"items": []map[string]any{{"name": "console", "price_cents": 49900, "stock": stock}},
	}, nil)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create activity: got %d %v %v", code, a, err)
	}
	if wr, _ := a["waiting_room"].(map[string]any); wr["enabled"] != true || wr["k"] != k {
		t.Fatalf("create activity: got waiting room %v, want on with k %g", a["waiting_room"], k)
	}
	activity = int64(a["id"].(float64))
	item = int64(a["items"].([]any)[0].(map[string]any)["id"].(float64))
	if code, out, err := call("POST", fmt.Sprintf("%s/admin/v1/activities/%d/publish", rs.urls[0], activity), adminToken, nil, nil); err != nil || code != http.StatusOK {
		t.Fatalf("publish: got %d %v %v", code, out, err)
	}
	return activity, item
}

// journey is what one shopper went through.
type journey struct {
	user      int64
	status    int    // the final answer's
	code      string // its "error" or "status"
	ticket    string
	orderID   string
	positions []int64 // every queued answer's position, in order
	requests  int
	err       string // what went wrong, if anything
}

// shopper orders one unit and follows the waiting room until a final answer: asks
// again with the queue token after retry_after_ms, each time at a gateway picked at
// random.
func (rs *roomStack) shopper(user, activity, item int64) journey {
	j := journey{user: user}
	tok, err := mint(user)
	if err != nil {
		j.err = err.Error()
		return j
	}
	qtok := ""
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		hdr := map[string]string{"Idempotency-Key": fmt.Sprint("room-", user)}
		if qtok != "" {
			hdr["Queue-Token"] = qtok
		}
		url := rs.urls[rand.IntN(len(rs.urls))]
		code, out, err := call("POST", url+"/api/v1/orders", tok, map[string]any{"activity_id": activity, "item_id": item, "quantity": 1}, hdr)
		j.requests++
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		j.status = code
		j.code, _ = out["status"].(string)
		if e, ok := out["error"].(string); ok {
			j.code = e
		}
		switch {
		case code == http.StatusAccepted && j.code == "queued":
			j.positions = append(j.positions, int64(out["position"].(float64)))
			qtok, _ = out["queue_token"].(string)
			time.Sleep(time.Duration(out["retry_after_ms"].(float64)) * time.Millisecond)
		case code == http.StatusCreated || code == http.StatusAccepted:
			j.ticket, _ = out["ticket"].(string)
			j.orderID, _ = out["order_id"].(string)
			return j
		case code == http.StatusConflict:
			return j
		case code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests:
			time.Sleep(20 * time.Millisecond)
		default:
			j.err = fmt.Sprintf("unexpected answer %d %v", code, out)
			return j
		}
	}
	j.err = "no final answer within 90 s"
	return j
}

func mint(user int64) (string, error) {
	return auth.Mint([]byte(jwtSecret), user, time.Hour)
}

// flip changes the character at i of s to another base64url character.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// placeCalls is how many PlaceOrder calls the backend answered (its histogram's count).
func placeCalls(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range fams {
		if f.GetName() == "seckill_backend_place_order_seconds" {
			for _, m := range f.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// settled waits until the sale has nothing in flight, then checks the invariants on
// its one item: every unit sold once (demand is over the stock), Redis and MySQL at 0,
// one live order per buyer, every ticket created.
func (rs *roomStack) settled(t *testing.T, activity, item int64, stock int, js []journey) map[string]any {
	t.Helper()
	var it map[string]any
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, st, err := call("GET", fmt.Sprintf("%s/admin/v1/activities/%d/stats", rs.urls[0], activity), adminToken, nil, nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("stats: got %d %v %v", code, st, err)
		}
		it = st["items"].([]any)[0].(map[string]any)
		if it["pending_tickets"].(float64) == 0 && it["in_flight"].(float64) == 0 && it["units_sold"].(float64) == float64(stock) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sale did not settle: %v", it)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if it["redis_stock"].(float64) != 0 || it["mysql_stock"].(float64) != 0 || it["orders"].(float64) != float64(stock) {
		t.Fatalf("after the sale: got %v, want every unit sold once, Redis and MySQL at 0", it)
	}
	var orders, users int
	if err := rs.db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT user_id) FROM orders WHERE item_id = ? AND status IN ('created', 'paid')`, item).Scan(&orders, &users); err != nil {
		t.Fatal(err)
	}
	if orders != stock || users != stock {
		t.Fatalf("mysql: got %d orders of %d users, want %d of %d", orders, users, stock, stock)
	}
	bought := 0
	for _, j := range js {
		if j.ticket == "" {
			continue
		}
		bought++
		for {
			tok, _ := mint(j.user)
			code, out, err := call("GET", rs.urls[0]+"/api/v1/orders/tickets/"+j.ticket, tok, nil, nil)
			if err != nil || code != http.StatusOK {
				t.Fatalf("ticket of user %d: got %d %v %v", j.user, code, out, err)
			}
			if out["status"] == "created" {
				break
			}
			if out["status"] != "pending" || time.Now().After(deadline) {
				t.Fatalf("ticket of user %d: got %v, want created", j.user, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if bought != stock {
		t.Fatalf("got %d shoppers with a ticket, want %d", bought, stock)
	}
	return it
}

// TestWaitingRoomFleet: shoppers many times the stock arrive at once, each request at
// a gateway picked at random among several, and follow the waiting room. Fleet-wide,
// the backend gets at most ceil(k x stock) order calls in all (no unit comes back
// here, so that is the bound on admissions), every shopper ends with a ticket or
// sold_out, a queued shopper's position never goes up, and the sale's invariants hold.
func TestWaitingRoomFleet(t *testing.T) {
	for _, tc := range []struct {
		strategy  string
		buckets   int
		gateways  int
		stock     int
		shoppers  int
		k         float64
		wantCalls int
	}{
		{"async", 1, 3, 20, 300, 1.5, 30},
		{"bucket", 4, 2, 24, 240, 1, 24},
		{"sync", 1, 2, 15, 150, 2, 30},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			rs := startRoomStack(t, tc.gateways)
			aid, iid := rs.roomSale(t, tc.strategy, tc.stock, tc.k, tc.buckets)
			// The backend answers 300 ms late, as a busy one would: the admitted orders
			// stay in flight while the other shoppers arrive, so a line forms however
			// fast this machine serves them (under -race on loaded cores the gateways
			// took over 100 ms to let 150 shoppers in, and no line formed).
			rs.link.Delay(300 * time.Millisecond)
			before := placeCalls(t, rs.reg)
			js := make([]journey, tc.shoppers)
			var wg sync.WaitGroup
			start := make(chan struct{}) // all at once, however slowly goroutines start on loaded cores
			for n := range js {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					js[n] = rs.shopper(int64(n+1), aid, iid)
				}()
			}
			close(start)
			wg.Wait()
			calls := placeCalls(t, rs.reg) - before
			queued, soldOut, requests := 0, 0, 0
			for _, j := range js {
				if j.err != "" {
					t.Fatalf("user %d: %s (after %d requests)", j.user, j.err, j.requests)
				}
				for k := 1; k < len(j.positions); k++ {
					if j.positions[k] > j.positions[k-1] {
						t.Fatalf("user %d: position went up: %v", j.user, j.positions)
					}
				}
				if len(j.positions) > 0 {
					queued++
				}
				if j.status == http.StatusConflict {
					if j.code != domain.ESoldOut {
						t.Fatalf("user %d: got 409 %s, want sold_out", j.user, j.code)
					}
					soldOut++
				}
				requests += j.requests
			}
			if want := int(math.Ceil(tc.k * float64(tc.stock))); calls > uint64(want) || want != tc.wantCalls {
				t.Fatalf("the backend got %d order calls, want at most ceil(%g x %d) = %d", calls, tc.k, tc.stock, want)
			}
			if calls < uint64(tc.stock) || queued == 0 || soldOut != tc.shoppers-tc.stock {
				t.Fatalf("got %d backend calls, %d shoppers queued, %d sold out; want at least %d calls, a line, %d sold out", calls, queued, soldOut, tc.stock, tc.shoppers-tc.stock)
			}
			it := rs.settled(t, aid, iid, tc.stock, js)
			wr, _ := it["waiting_room"].(map[string]any)
			if wr == nil || wr["enabled"] != true || wr["in_flight"].(float64) != 0 || wr["admitted"].(float64) != float64(calls) || wr["places"].(float64) < float64(queued) {
				t.Fatalf("stats' waiting room: got %v; want on, nothing in flight, %d admitted, at least %d places", wr, calls, queued)
			}
			t.Logf("%s over %d gateways: %d shoppers for %d units, %d backend calls (bound %d), %d queued, %d requests in all",
				tc.strategy, tc.gateways, tc.shoppers, tc.stock, calls, tc.wantCalls, queued, requests)
		})
	}
}

// TestWaitingRoomLine: the line's promises one by one, with the slots in flight held
// by shoppers the test admits straight in Redis: positions stay while nothing moves
// and go down as the line moves; a changed or borrowed queue token is refused; a unit
// given back by a cancel goes to the head, not to a shopper who comes after; a queued
// shopper hears sold_out once the last unit is gone; an operator turns the room off
// and on live.
func TestWaitingRoomLine(t *testing.T) {
	ctx := context.Background()
	rs := startRoomStack(t, 2)
	aid, iid := rs.roomSale(t, "sync", 2, 1, 1)
	line := redis.NewLine(testenv.Redis(t))
	hold := func(user int64) int64 {
		t.Helper()
		d, err := line.Enter(ctx, domain.LineEntry{ActivityID: aid, ItemID: iid, UserID: user, Buckets: 1, Factor: 1,
			PlaceTTL: time.Minute, Lease: time.Minute})
		if err != nil || d.Outcome != domain.LineAdmitted {
			t.Fatalf("hold a slot for user %d: got %+v %v", user, d, err)
		}
		return d.Seq
	}
	free := func(user, seq int64) {
		t.Helper()
		if err := line.Leave(ctx, aid, iid, user, seq, false); err != nil {
			t.Fatal(err)
		}
	}
	tokens := map[int64]string{} // the last queue token of each shopper
	last := map[int64]int64{}    // and their last position
	order := func(gw int, user int64, qtok string) (int, map[string]any) {
		t.Helper()
		tok, _ := mint(user)
		hdr := map[string]string{}
		if qtok != "" {
			hdr["Queue-Token"] = qtok
		}
		code, out, err := call("POST", rs.urls[gw]+"/api/v1/orders", tok, map[string]any{"activity_id": aid, "item_id": iid, "quantity": 1}, hdr)
		if err != nil {
			t.Fatal(err)
		}
		return code, out
	}
	queued := func(what string, gw int, user int64, want int64) {
		t.Helper()
		code, out := order(gw, user, tokens[user])
		if code != http.StatusAccepted || out["status"] != "queued" || int64(out["position"].(float64)) != want ||
			out["retry_after_ms"].(float64) <= 0 || out["queue_token"] == "" {
			t.Fatalf("%s: user %d got %d %v, want queued at %d", what, user, code, out, want)
		}
		if p, ok := last[user]; ok && want > p {
			t.Fatalf("%s: user %d's position went up from %d to %d", what, user, p, want)
		}
		tokens[user], last[user] = out["queue_token"].(string), want
	}
	admitted := func(what string, gw int, user int64) string {
		t.Helper()
		code, out := order(gw, user, tokens[user])
		if code != http.StatusCreated || out["order_id"] == "" {
			t.Fatalf("%s: user %d got %d %v, want 201 with an order", what, user, code, out)
		}
		return out["order_id"].(string)
	}
	soldOut := func(what string, gw int, user int64) {
		t.Helper()
		code, out := order(gw, user, tokens[user])
		if code != http.StatusConflict || out["error"] != domain.ESoldOut {
			t.Fatalf("%s: user %d got %d %v, want 409 sold_out", what, user, code, out)
		}
	}

	held := hold(9001) // 2 units, k 1: one slot of two held
	first := admitted("user 1 with a slot free", 0, 1)
	// 1 unit left, so one slot, held: the line forms.
	queued("user 2 arrives", 1, 2, 1)
	queued("user 3 arrives", 0, 3, 2)
	queued("user 3 asks again elsewhere", 1, 3, 2)
	queued("user 2 asks again", 0, 2, 1)

	// Tokens: changed, someone else's, another item's, not a token.
	code, out := order(0, 3, flip(tokens[3], len(tokens[3])-10))
	if code != http.StatusBadRequest || out["error"] != domain.EBadRequest {
		t.Fatalf("a token with a changed MAC: got %d %v, want 400 bad_request", code, out)
	}
	parts := strings.Split(tokens[3], ".")
	if code, out = order(1, 3, parts[0]+"."+flip(parts[1], 3)+"."+parts[2]); code != http.StatusBadRequest {
		t.Fatalf("a token with a changed payload: got %d %v, want 400", code, out)
	}
	if code, out = order(0, 2, tokens[3]); code != http.StatusBadRequest || !strings.Contains(out["message"].(string), "another shopper") {
		t.Fatalf("user 3's token from user 2: got %d %v, want 400 for another shopper", code, out)
	}
	if code, out = order(0, 3, "not a token"); code != http.StatusBadRequest {
		t.Fatalf("garbage for a token: got %d %v, want 400", code, out)
	}
	queued("user 3 after the refusals", 1, 3, 2)

	// User 1 cancels: the unit comes back, a slot frees; the head gets it.
	tok1, _ := mint(1)
	if code, out, err := call("POST", rs.urls[1]+"/api/v1/orders/"+first+"/cancel", tok1, nil, nil); err != nil || code != http.StatusOK {
		t.Fatalf("cancel: got %d %v %v", code, out, err)
	}
	queued("user 4 arrives after the cancel", 0, 4, 3)
	queued("user 3 behind the head", 1, 3, 2)
	admitted("user 2 at the head", 0, 2)
	queued("user 3 now the head", 1, 3, 1)
	queued("user 4 moves up", 0, 4, 2)

	// The held slot frees; the head takes the last unit; the rest hear sold_out.
	free(9001, held)
	admitted("user 3 at the head", 0, 3)
	soldOut("user 4 in line", 1, 4)
	soldOut("a new shopper", 0, 5)

	// The operator turns the room off: orders go straight on (here: sold_out from the
	// backend or the edge), and on again, with a new k.
	for _, on := range []bool{false, true} {
		code, a, err := call("PUT", fmt.Sprintf("%s/admin/v1/activities/%d", rs.urls[1], aid), adminToken,
			map[string]any{"waiting_room": map[string]any{"enabled": on, "k": 3}}, nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("turn the room %v: got %d %v %v", on, code, a, err)
		}
		if wr := a["waiting_room"].(map[string]any); wr["enabled"] != on || wr["k"] != 3.0 {
			t.Fatalf("turn the room %v: got %v", on, wr)
		}
	}
	if code, out, _ := call("PUT", fmt.Sprintf("%s/admin/v1/activities/%d", rs.urls[0], aid), adminToken,
		map[string]any{"waiting_room": map[string]any{"k": 0}}, nil); code != http.StatusBadRequest {
		t.Fatalf("k 0: got %d %v, want 400", code, out)
	}
	// At creation too: a given k is checked as given, not read as the default.
	if code, out, _ := call("POST", rs.urls[0]+"/admin/v1/activities", adminToken, map[string]any{
		"name": "k 0", "start": time.Now().Format(time.RFC3339), "end": time.Now().Add(time.Hour).Format(time.RFC3339),
		"strategy": "sync", "waiting_room": map[string]any{"enabled": true, "k": 0},
		"items": []map[string]any{{"name": "x", "price_cents": 1, "stock": 1}}}, nil); code != http.StatusBadRequest {
		t.Fatalf("k 0 at creation: got %d %v, want 400", code, out)
	}
	// An item change without the item's id, and a price past the bound.
	for _, items := range [][]map[string]any{{{"total_stock": 3}}, {{"id": iid, "price_cents": int64(1) << 62}}} {
		if code, out, _ := call("PUT", fmt.Sprintf("%s/admin/v1/activities/%d", rs.urls[0], aid), adminToken,
			map[string]any{"items": items}, nil); code != http.StatusBadRequest {
			t.Fatalf("items %v: got %d %v, want 400", items, code, out)
		}
	}
	code, st, err := call("GET", fmt.Sprintf("%s/admin/v1/activities/%d/stats", rs.urls[1], aid), adminToken, nil, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("stats: got %d %v %v", code, st, err)
	}
	wr := st["items"].([]any)[0].(map[string]any)["waiting_room"].(map[string]any)
	if wr["enabled"] != true || wr["k"] != 3.0 || wr["admitted"].(float64) < 4 || wr["admitted_from_line"].(float64) < 2 ||
		wr["places"].(float64) < 3 || wr["avg_wait_ms"].(float64) <= 0 {
		t.Fatalf("stats' waiting room: got %v", wr)
	}
}

// holdSlots takes a slot of the item's line for each user, as shoppers who never order
// would, and returns their seqs.
func holdSlots(t *testing.T, line *redis.Line, aid, iid int64, users ...int64) []int64 {
	t.Helper()
	var held []int64
	for _, u := range users {
		d, err := line.Enter(context.Background(), domain.LineEntry{ActivityID: aid, ItemID: iid, UserID: u, Buckets: 1, Factor: 1,
			PlaceTTL: time.Minute, Lease: time.Minute})
		if err != nil || d.Outcome != domain.LineAdmitted {
			t.Fatalf("hold a slot for user %d: got %+v %v", u, d, err)
		}
		held = append(held, d.Seq)
	}
	return held
}

// TestWaitingRoomLetsGoOfAHungUpShopper: a shopper held in line (?wait=) who hangs
// up is let go: their share of held waits is free again within a second, and a slot
// that frees afterwards goes to a shopper still waiting, not to one who left.
func TestWaitingRoomLetsGoOfAHungUpShopper(t *testing.T) {
	ctx := context.Background()
	rs := startRoomStack(t, 1)
	aid, iid := rs.roomSale(t, "sync", 2, 1, 1)
	line := redis.NewLine(testenv.Redis(t))
	held := holdSlots(t, line, aid, iid, 9101, 9102) // both slots, held by shoppers who never order
	body, _ := json.Marshal(map[string]any{"activity_id": aid, "item_id": iid, "quantity": 1})
	order := func(ctx context.Context, user int64, query, qtok string) (int, map[string]any, time.Duration, error) {
		tok, _ := mint(user)
		req, err := http.NewRequestWithContext(ctx, "POST", rs.urls[0]+"/api/v1/orders"+query, bytes.NewReader(body))
		if err != nil {
			return 0, nil, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		if qtok != "" {
			req.Header.Set("Queue-Token", qtok)
		}
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, time.Since(start), err
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out, time.Since(start), nil
	}
	queue := func(user int64) string {
		t.Helper()
		code, out, _, err := order(ctx, user, "", "")
		if err != nil || code != http.StatusAccepted || out["status"] != "queued" {
			t.Fatalf("user %d: got %d %v %v, want queued", user, code, out, err)
		}
		return out["queue_token"].(string)
	}
	tok2 := queue(2) // first in line
	tok3 := queue(3)

	// User 2 waits twice (a shopper's whole share) and hangs up both.
	hang, cancel := context.WithCancel(ctx)
	done := make(chan error, 2)
	for range 2 {
		go func() {
			_, _, _, err := order(hang, 2, "?wait=8s", tok2)
			done <- err
		}()
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	for range 2 {
		if err := <-done; err == nil {
			t.Fatal("a hung-up wait was answered, want the client's cancellation")
		}
	}
	time.Sleep(1200 * time.Millisecond) // two looks at the connection
	// Their share is free again: a new wait is held, not answered at once.
	if code, out, took, err := order(ctx, 2, "?wait=1500ms", tok2); err != nil || code != http.StatusAccepted || took < time.Second {
		t.Fatalf("user 2 after hanging up: got %d %v after %v (%v), want held (queued after about 1.5 s)", code, out, took, err)
	}

	// User 2 holds the head and hangs up; user 3 waits. A slot frees: user 3 buys it.
	hang, cancel = context.WithCancel(ctx)
	go func() {
		_, _, _, err := order(hang, 2, "?wait=8s", tok2)
		done <- err
	}()
	answers := make(chan int, 1)
	go func() {
		code, _, _, _ := order(ctx, 3, "?wait=8s", tok3)
		answers <- code
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	time.Sleep(1200 * time.Millisecond)
	if err := line.Leave(ctx, aid, iid, 9101, held[0], false); err != nil {
		t.Fatal(err)
	}
	if code := <-answers; code != http.StatusCreated {
		t.Fatalf("the shopper still waiting when a slot freed behind a head who left: got %d, want 201", code)
	}
	var n int
	if err := rs.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM orders WHERE item_id = ? AND user_id = 2", iid).Scan(&n); err != nil || n != 0 {
		t.Fatalf("orders of the shopper who hung up: %d (%v), want none", n, err)
	}
}

// TestWaitingRoomLongPoll: a queued shopper who asks with ?wait= is held in the
// request and answered when the line admits them or the item sells out, not when the
// wait ends; one whose wait ends first is still queued, with a fresh token.
func TestWaitingRoomLongPoll(t *testing.T) {
	ctx := context.Background()
	rs := startRoomStack(t, 2)
	aid, iid := rs.roomSale(t, "sync", 2, 1, 1)
	line := redis.NewLine(testenv.Redis(t))
	held := holdSlots(t, line, aid, iid, 9001, 9002) // both slots (k 1, 2 units), held by shoppers who never order
	type answer struct {
		code int
		out  map[string]any
		took time.Duration
	}
	order := func(gw int, user int64, query, qtok string) answer {
		tok, _ := mint(user)
		hdr := map[string]string{}
		if qtok != "" {
			hdr["Queue-Token"] = qtok
		}
		start := time.Now()
		code, out, err := call("POST", rs.urls[gw]+"/api/v1/orders"+query, tok, map[string]any{"activity_id": aid, "item_id": iid, "quantity": 1}, hdr)
		if err != nil {
			t.Error(err)
		}
		return answer{code, out, time.Since(start)}
	}
	queue := func(gw int, user int64) string {
		t.Helper()
		a := order(gw, user, "", "")
		if a.code != http.StatusAccepted || a.out["status"] != "queued" {
			t.Fatalf("user %d: got %d %v, want queued", user, a.code, a.out)
		}
		return a.out["queue_token"].(string)
	}
	tok2, tok3 := queue(0, 2), queue(1, 3)

	if a := order(0, 2, "?wait=forever", tok2); a.code != http.StatusBadRequest {
		t.Fatalf("a wait that is no duration: got %d %v, want 400", a.code, a.out)
	}
	if a := order(0, 2, "?wait=1h", tok2); a.code != http.StatusBadRequest {
		t.Fatalf("a wait past the bound: got %d %v, want 400", a.code, a.out)
	}
	// A wait that ends first: still queued, in the same place, with a fresh token.
	a := order(1, 2, "?wait=300ms", tok2)
	if a.code != http.StatusAccepted || a.out["status"] != "queued" || a.out["position"] != 1.0 || a.took < 300*time.Millisecond {
		t.Fatalf("a wait that ends first: got %d %v after %v, want queued at 1 after 300ms", a.code, a.out, a.took)
	}
	tok2 = a.out["queue_token"].(string)

	// Both wait 8 s; a slot frees: the head is admitted in that request.
	answers := make(chan answer, 2)
	go func() { answers <- order(0, 2, "?wait=8s", tok2) }()
	time.Sleep(200 * time.Millisecond)
	go func() { answers <- order(1, 3, "?wait=8s", tok3) }()
	time.Sleep(300 * time.Millisecond)
	if err := line.Leave(ctx, aid, iid, 9001, held[0], false); err != nil {
		t.Fatal(err)
	}
	if a := <-answers; a.code != http.StatusCreated || a.out["order_id"] == "" {
		t.Fatalf("the head when a slot frees: got %d %v after %v, want 201 with an order", a.code, a.out, a.took)
	}
	// The operator takes the unsold unit away (the total down to what is sold): the
	// shopper still held hears sold_out then, not when the wait ends.
	if code, out, err := call("PUT", fmt.Sprintf("%s/admin/v1/activities/%d", rs.urls[1], aid), adminToken,
		map[string]any{"items": []map[string]any{{"id": iid, "total_stock": 1}}}, nil); err != nil || code != http.StatusOK {
		t.Fatalf("lower the stock: got %d %v %v", code, out, err)
	}
	if a := <-answers; a.code != http.StatusConflict || a.out["error"] != domain.ESoldOut || a.took >= 8*time.Second {
		t.Fatalf("the shopper held when the item sold out: got %d %v after %v, want 409 sold_out before the wait ends", a.code, a.out, a.took)
	}

	// Held again (the unit back), and the operator turns the room off: the shopper
	// goes on to the backend as every order now does, and buys.
	if code, out, err := call("PUT", fmt.Sprintf("%s/admin/v1/activities/%d", rs.urls[1], aid), adminToken,
		map[string]any{"items": []map[string]any{{"id": iid, "total_stock": 2}}}, nil); err != nil || code != http.StatusOK {
		t.Fatalf("raise the stock: got %d %v %v", code, out, err)
	}
	tok5 := ""
	for start := time.Now(); tok5 == ""; time.Sleep(50 * time.Millisecond) { // the slot is still held by 9002
		if a := order(0, 5, "", ""); a.code == http.StatusAccepted && a.out["status"] == "queued" {
			tok5 = a.out["queue_token"].(string)
		} else if time.Since(start) > 5*time.Second {
			t.Fatalf("user 5: got %d %v, want queued", a.code, a.out)
		}
	}
	go func() { answers <- order(0, 5, "?wait=8s", tok5) }()
	time.Sleep(300 * time.Millisecond)
	if code, out, err := call("PUT", fmt.Sprintf("%s/admin/v1/activities/%d", rs.urls[0], aid), adminToken,
		map[string]any{"waiting_room": map[string]any{"enabled": false}}, nil); err != nil || code != http.StatusOK {
		t.Fatalf("turn the room off: got %d %v %v", code, out, err)
	}
	if a := <-answers; a.code != http.StatusCreated || a.took >= 8*time.Second {
		t.Fatalf("the shopper held when the room went off: got %d %v after %v, want 201", a.code, a.out, a.took)
	}
}

// TestWaitingRoomHeadWokenWhenASlotFrees: a shopper held at the head of the line is
// admitted as soon as a slot frees anywhere in the fleet (the "freed" announcement),
// not at their next look, which the gateways here put 3 s apart.
func TestWaitingRoomHeadWokenWhenASlotFrees(t *testing.T) {
	ctx := context.Background()
	rs := startRoomStack(t, 2, func(c *config.Config) {
		c.Gateway.WaitingRoom = gateway.RoomConfig{PlaceTTL: 20 * time.Second, PollMin: 3 * time.Second, PollMax: 5 * time.Second}
	})
	aid, iid := rs.roomSale(t, "sync", 2, 0.5, 1) // k 0.5: one slot for 2 units
	line := redis.NewLine(testenv.Redis(t))
	d, err := line.Enter(ctx, domain.LineEntry{ActivityID: aid, ItemID: iid, UserID: 9001, Buckets: 1, Factor: 0.5,
		PlaceTTL: time.Minute, Lease: time.Minute})
	if err != nil || d.Outcome != domain.LineAdmitted {
		t.Fatalf("hold the slot: got %+v %v", d, err)
	}
	tok, _ := mint(2)
	type answer struct {
		code int
		out  map[string]any
		took time.Duration
	}
	got := make(chan answer, 1)
	go func() {
		start := time.Now()
		code, out, err := call("POST", rs.urls[0]+"/api/v1/orders?wait=8s", tok, map[string]any{"activity_id": aid, "item_id": iid, "quantity": 1}, nil)
		if err != nil {
			t.Error(err)
		}
		got <- answer{code, out, time.Since(start)}
	}()
	time.Sleep(300 * time.Millisecond) // queued and held at gateway 0
	if err := line.Leave(ctx, aid, iid, 9001, d.Seq, false); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	a := <-got
	if a.code != http.StatusCreated {
		t.Fatalf("the held head: got %d %v, want 201", a.code, a.out)
	}
	if waited := time.Since(freed); waited > 2*time.Second {
		t.Fatalf("the held head was admitted %v after the slot freed, want it woken (its next look was 3 s away)", waited)
	}
}

// queuedThenSoldOut is a sale of one unit with the room on (k 1) where user 2 holds a
// place in line and user 1 bought the unit past the room (the operator turned it off
// a moment), leaving the order unpaid: the start of the tests of units that come back.
type queuedThenSoldOut struct {
	rs       *roomStack
	aid, iid int64
	tok2     string // user 2's queue token
	first    string // user 1's order
}

func newQueuedThenSoldOut(t *testing.T, rs *roomStack) *queuedThenSoldOut {
	t.Helper()
	ctx := context.Background()
	q := &queuedThenSoldOut{rs: rs}
	q.aid, q.iid = rs.roomSale(t, "sync", 1, 1, 1)
	// The one slot is held, so user 2 takes a place in line.
	line := redis.NewLine(testenv.Redis(t))
	d, err := line.Enter(ctx, domain.LineEntry{ActivityID: q.aid, ItemID: q.iid, UserID: 9001, Buckets: 1, Factor: 1,
		PlaceTTL: time.Minute, Lease: time.Minute})
	if err != nil || d.Outcome != domain.LineAdmitted {
		t.Fatalf("hold the slot: got %+v %v", d, err)
	}
	code, out := q.order(t, 0, 2, "")
	if code != http.StatusAccepted || out["status"] != "queued" {
		t.Fatalf("user 2: got %d %v, want queued", code, out)
	}
	q.tok2 = out["queue_token"].(string)
	q.room(t, false)
	for start := time.Now(); code != http.StatusCreated; time.Sleep(20 * time.Millisecond) {
		if code, out = q.order(t, 1, 1, ""); time.Since(start) > 5*time.Second {
			t.Fatalf("user 1 past the room: got %d %v, want 201", code, out)
		}
	}
	q.first = out["order_id"].(string)
	q.room(t, true)
	if err := line.Leave(ctx, q.aid, q.iid, 9001, d.Seq, false); err != nil {
		t.Fatal(err)
	}
	return q
}

// order places user's order of the unit through gateway gw, with a queue token if any.
func (q *queuedThenSoldOut) order(t *testing.T, gw int, user int64, qtok string) (int, map[string]any) {
	t.Helper()
	tok, _ := mint(user)
	hdr := map[string]string{}
	if qtok != "" {
		hdr["Queue-Token"] = qtok
	}
	code, out, err := call("POST", q.rs.urls[gw]+"/api/v1/orders", tok, map[string]any{"activity_id": q.aid, "item_id": q.iid, "quantity": 1}, hdr)
	if err != nil {
		t.Fatal(err)
	}
	return code, out
}

// room turns the waiting room on or off through gateway 1 (which drops its sold-out
// flags: gateway 0 keeps them).
func (q *queuedThenSoldOut) room(t *testing.T, on bool) {
	t.Helper()
	if code, out, err := call("PUT", fmt.Sprintf("%s/admin/v1/activities/%d", q.rs.urls[1], q.aid), adminToken,
		map[string]any{"waiting_room": map[string]any{"enabled": on}}, nil); err != nil || code != http.StatusOK {
		t.Fatalf("turn the room %v: got %d %v %v", on, code, out, err)
	}
}

// TestWaitingRoomExpiryGoesToTheHead: a unit an unpaid order gives back when it
// expires goes to the shopper who kept a place in line, not to one who came after
// the item sold out, however eagerly they ask.
func TestWaitingRoomExpiryGoesToTheHead(t *testing.T) {
	q := newQueuedThenSoldOut(t, startRoomStack(t, 2, func(c *config.Config) {
		c.Backend.UnpaidTimeout = 2 * time.Second
		c.Backend.ReconcileInterval = 300 * time.Millisecond
	}))
	// Until the order expires both are told sold_out; then the unit is user 2's. User 3
	// asks first each round.
	tok2 := q.tok2
	deadline := time.Now().Add(15 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("the expired order's unit was not sold again within 15 s")
		}
		code3, out3 := q.order(t, 0, 3, "")
		if code3 == http.StatusCreated {
			t.Fatalf("user 3, who came after the item sold out, took the returned unit")
		}
		if code3 != http.StatusConflict && code3 != http.StatusAccepted {
			t.Fatalf("user 3: got %d %v", code3, out3)
		}
		code2, out2 := q.order(t, 1, 2, tok2)
		if code2 == http.StatusCreated {
			break
		}
		if code2 == http.StatusAccepted {
			tok2 = out2["queue_token"].(string)
		} else if code2 != http.StatusConflict {
			t.Fatalf("user 2: got %d %v", code2, out2)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tok1, _ := mint(1)
	code, o, err := call("GET", q.rs.urls[0]+"/api/v1/orders/"+q.first, tok1, nil, nil)
	if err != nil || code != http.StatusOK || o["status"] != "expired" {
		t.Fatalf("the first order: got %d %v %v, want expired", code, o, err)
	}
}

// TestWaitingRoomPlaceKeptWhileSoldOut: a queued shopper who keeps asking after the
// item sold out keeps their place past place_ttl (their asks reach the line, not only
// the edge's sold-out flag), so a unit that comes back is theirs, not a newcomer's.
// Fails before the fix: the edge answered the asks, the place lapsed, the newcomer
// bought the unit.
func TestWaitingRoomPlaceKeptWhileSoldOut(t *testing.T) {
	q := newQueuedThenSoldOut(t, startRoomStack(t, 2)) // place_ttl 3 s
	// User 2 asks, as told, for longer than place_ttl, through the gateway that
	// flagged the item sold out; every answer is sold_out.
	for start := time.Now(); time.Since(start) < 4*time.Second; time.Sleep(400 * time.Millisecond) {
		if code, out := q.order(t, 0, 2, q.tok2); code != http.StatusConflict {
			t.Fatalf("user 2 while sold out: got %d %v, want 409", code, out)
		}
	}
	// Only a token that verifies for its shopper passes the edge's flag: another's, or
	// a made-up one, is answered there (409), not by the room (400).
	for _, tok := range []string{q.tok2, "x"} {
		if code, out := q.order(t, 0, 3, tok); code != http.StatusConflict || out["error"] != domain.ESoldOut {
			t.Fatalf("user 3 with token %.10q while sold out: got %d %v, want 409 sold_out from the edge", tok, code, out)
		}
	}
	tok1, _ := mint(1)
	if code, out, err := call("POST", q.rs.urls[0]+"/api/v1/orders/"+q.first+"/cancel", tok1, nil, nil); err != nil || code != http.StatusOK {
		t.Fatalf("cancel: got %d %v %v", code, out, err)
	}
	// The unit is back: a newcomer, once they hear of it, is queued behind user 2,
	// who takes it.
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		code3, out3 := q.order(t, 0, 3, "")
		if code3 == http.StatusCreated {
			t.Fatalf("the newcomer took the unit user 2 kept a place for")
		}
		if code3 == http.StatusAccepted && out3["position"] == 2.0 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("after the cancel: the newcomer got %d %v, want queued behind user 2", code3, out3)
		}
	}
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		code2, out2 := q.order(t, 1, 2, q.tok2)
		if code2 == http.StatusCreated {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("after the cancel: user 2 got %d %v, want the unit", code2, out2)
		}
	}
}

// TestWaitingRoomBotsDoNotJumpTheLine: the plugins run before a place is given, so a
// shopper a plugin refuses never takes one; and one shopper holds one place per item,
// however many requests they send at once through however many gateways.
func TestWaitingRoomBotsDoNotJumpTheLine(t *testing.T) {
	ctx := context.Background()
	rs := startRoomStack(t, 2)
	aid, iid := rs.roomSale(t, "async", 1, 1, 1)
	line := redis.NewLine(testenv.Redis(t))
	// Held for longer than the test can last: were it to lapse while the plugin is on
	// its way (a CI run on loaded cores took 94 s), the bot would take it and buy the
	// only unit, and be answered sold_out by the edge instead of rejected.
	if d, err := line.Enter(ctx, domain.LineEntry{ActivityID: aid, ItemID: iid, UserID: 9001, Buckets: 1, Factor: 1,
		PlaceTTL: 10 * time.Minute, Lease: 10 * time.Minute}); err != nil || d.Outcome != domain.LineAdmitted {
		t.Fatalf("hold the only slot: got %+v %v", d, err)
	}
	module, err := os.ReadFile("../plugins/examples/blocklist/blocklist.wasm")
	if err != nil {
		t.Fatalf("%v (run plugins/build.sh)", err)
	}
	code, out, err := call("PUT", rs.urls[0]+"/admin/v1/plugins/blocklist", adminToken, map[string]any{
		"wasm_base64": base64.StdEncoding.EncodeToString(module), "config": map[string]any{"users": []string{"13"}}, "fail_policy": "closed"}, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("load the blocklist: got %d %v %v", code, out, err)
	}
	places := func() float64 {
		t.Helper()
		code, st, err := call("GET", fmt.Sprintf("%s/admin/v1/activities/%d/stats", rs.urls[0], aid), adminToken, nil, nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("stats: got %d %v %v", code, st, err)
		}
		return st["items"].([]any)[0].(map[string]any)["waiting_room"].(map[string]any)["places"].(float64)
	}
	body := map[string]any{"activity_id": aid, "item_id": iid, "quantity": 1}
	bot, _ := mint(13)
	// The fleet applies the plugin on every gateway; a Go module's compile under -race on
	// loaded cores can take a while.
	deadline := time.Now().Add(2 * time.Minute)
	for _, url := range rs.urls {
		for {
			code, out, err := call("POST", url+"/api/v1/orders", bot, body, nil)
			if err != nil {
				t.Fatal(err)
			}
			if code == http.StatusForbidden && out["error"] == "rejected" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the blocklisted shopper at %s: got %d %v, want 403 rejected", url, code, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The blocklisted shopper's tries before the plugin reached a gateway took a place;
	// from now on none does.
	was := places()
	for range 10 {
		if code, out, _ := call("POST", rs.urls[rand.IntN(2)]+"/api/v1/orders", bot, body, nil); code != http.StatusForbidden {
			t.Fatalf("the blocklisted shopper: got %d %v, want 403", code, out)
		}
	}
	if got := places(); got != was {
		t.Fatalf("places after the blocklisted shopper's tries: got %v, want %v", got, was)
	}

	shopper, _ := mint(14)
	var wg sync.WaitGroup
	positions := make([]float64, 20)
	for n := range positions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out, err := call("POST", rs.urls[n%2]+"/api/v1/orders", shopper, body, nil)
			if err == nil && code == http.StatusAccepted && out["status"] == "queued" {
				positions[n] = out["position"].(float64)
			}
		}()
	}
	wg.Wait()
	for n, p := range positions {
		if p != positions[0] || p < 1 {
			t.Fatalf("request %d of one shopper: got position %v, want every request at one place (%v)", n, p, positions)
		}
	}
	if got := places(); got != was+1 {
		t.Fatalf("places after one shopper's 20 requests: got %v, want %v", got, was+1)
	}
}

// gathered sums the samples of a gateway's series name whose labels include want:
// counters and gauges by value, histograms by count.
func gathered(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	found := false
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			found = true
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum, found
}

// TestWaitingRoomSteeredLive: an operator turns an activity's waiting room off and on
// and changes k through one gateway while shoppers order through another, and the
// other gateway follows each change; the gateways' metrics show the line.
func TestWaitingRoomSteeredLive(t *testing.T) {
	ctx := context.Background()
	rs := startRoomStack(t, 2)
	aid, iid := rs.roomSale(t, "sync", 3, 1, 1)
	line := redis.NewLine(testenv.Redis(t))
	// Three slots held, as by admissions in flight elsewhere: 3 units, k 1, none free.
	for _, u := range []int64{9001, 9002, 9003} {
		d, err := line.Enter(ctx, domain.LineEntry{ActivityID: aid, ItemID: iid, UserID: u, Buckets: 1, Factor: 1,
			PlaceTTL: time.Minute, Lease: time.Minute})
		if err != nil || d.Outcome != domain.LineAdmitted {
			t.Fatalf("hold a slot for user %d: got %+v %v", u, d, err)
		}
	}
	tokens := map[int64]string{}
	order := func(user int64) (int, map[string]any) {
		t.Helper()
		tok, _ := mint(user)
		hdr := map[string]string{}
		if q := tokens[user]; q != "" {
			hdr["Queue-Token"] = q
		}
		code, out, err := call("POST", rs.urls[0]+"/api/v1/orders", tok, map[string]any{"activity_id": aid, "item_id": iid, "quantity": 1}, hdr)
		if err != nil {
			t.Fatal(err)
		}
		if code == http.StatusAccepted && out["status"] == "queued" {
			tokens[user] = out["queue_token"].(string)
		}
		return code, out
	}
	steer := func(room map[string]any) {
		t.Helper()
		code, a, err := call("PUT", fmt.Sprintf("%s/admin/v1/activities/%d", rs.urls[1], aid), adminToken, map[string]any{"waiting_room": room}, nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("steer the room %v: got %d %v %v", room, code, a, err)
		}
	}
	// until asks as user at gateway 0 until the answer is done (the other gateway's
	// change has reached it), and fails on an answer that is neither done nor wait.
	until := func(what string, user int64, done, wait func(int, map[string]any) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			code, out := order(user)
			switch {
			case done(code, out):
				return
			case !wait(code, out):
				t.Fatalf("%s: user %d got %d %v", what, user, code, out)
			case time.Now().After(deadline):
				t.Fatalf("%s: user %d still got %d %v after 15 s", what, user, code, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	queued := func(code int, out map[string]any) bool {
		return code == http.StatusAccepted && out["status"] == "queued"
	}
	created := func(code int, _ map[string]any) bool { return code == http.StatusCreated }
	refused := func(code int, out map[string]any) bool {
		return code != http.StatusCreated && code != http.StatusAccepted && code < 500 && out["error"] != domain.ESoldOut
	}

	if code, out := order(1); !queued(code, out) {
		t.Fatalf("user 1 with no slot free: got %d %v, want queued", code, out)
	}
	// Off: the order goes straight to the backend, around the held slots.
	steer(map[string]any{"enabled": false})
	until("the room turned off", 1, created, queued)
	// On again, k 1: 2 units left, 3 in flight: a line. User 1, who bought, probes the
	// change without buying again: refused by the backend while the room is off, by the
	// room (which counts it at its limit, with no place) once it is on.
	steer(map[string]any{"enabled": true, "k": 1})
	toldLimit := func() float64 {
		n, _ := gathered(t, rs.gws[0], "seckill_gateway_room_decisions_total", map[string]string{"outcome": "limit_exceeded"})
		return n
	}
	before := toldLimit()
	until("the room turned on", 1, func(code int, out map[string]any) bool {
		return code == http.StatusConflict && out["error"] == domain.ELimitExceeded && toldLimit() > before
	}, refused)
	for _, u := range []int64{2, 3} {
		if code, out := order(u); !queued(code, out) || out["position"].(float64) != float64(u-1) {
			t.Fatalf("user %d: got %d %v, want queued at %d", u, code, out, u-1)
		}
	}
	// k 4: 8 slots for the 2 units left, 3 held: users 2 and 3 go through.
	steer(map[string]any{"k": 4})
	until("k raised", 2, created, queued)
	until("k raised", 3, created, queued)

	code, st, err := call("GET", fmt.Sprintf("%s/admin/v1/activities/%d/stats", rs.urls[0], aid), adminToken, nil, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("stats: got %d %v %v", code, st, err)
	}
	wr := st["items"].([]any)[0].(map[string]any)["waiting_room"].(map[string]any)
	if wr["enabled"] != true || wr["k"] != 4.0 || wr["in_flight"] != 3.0 || wr["queue_length"] != 0.0 || wr["admitted_from_line"].(float64) < 2 {
		t.Fatalf("stats' waiting room: got %v, want on, k 4, the 3 held slots in flight, nobody in line, 2+ admitted from it", wr)
	}
	// The gateway that served the shoppers counted its steps and saw the line.
	reg := rs.gws[0]
	for _, outcome := range []string{"queued", "admitted_from_line", "limit_exceeded"} {
		if n, _ := gathered(t, reg, "seckill_gateway_room_decisions_total", map[string]string{"outcome": outcome}); n < 1 {
			t.Errorf("seckill_gateway_room_decisions_total{outcome=%q}: got %v, want 1+", outcome, n)
		}
	}
	if n, _ := gathered(t, reg, "seckill_gateway_room_wait_seconds", nil); n < 2 {
		t.Errorf("seckill_gateway_room_wait_seconds: got %v waits, want 2+", n)
	}
	item := map[string]string{"activity": fmt.Sprint(aid), "item": fmt.Sprint(iid)}
	for _, name := range []string{"seckill_gateway_room_queue_length", "seckill_gateway_room_in_flight", "seckill_gateway_room_capacity"} {
		if _, ok := gathered(t, reg, name, item); !ok {
			t.Errorf("%s: no series for the item", name)
		}
	}
	if n, _ := gathered(t, reg, "seckill_gateway_room_capacity", item); n != 4 {
		t.Errorf("seckill_gateway_room_capacity: got %v, want 4 (k 4 x 1 unit left when last seen)", n)
	}
}

// TestWaitingRoomShopperAtTheLimit: a shopper who holds the per-user limit is told so
// by the room, without a place in line or a slot in flight; a retry of their admitted
// order (its idempotency key) still gets its first answer. Fails before the fix: the
// shopper took a place behind the held slot (202 queued), and the newcomer queued
// behind them.
func TestWaitingRoomShopperAtTheLimit(t *testing.T) {
	ctx := context.Background()
	rs := startRoomStack(t, 1)
	aid, iid := rs.roomSale(t, "sync", 4, 0.5, 1) // limit 1; 2 in flight at once
	order := func(user int64, key string) (int, map[string]any) {
		t.Helper()
		tok, _ := mint(user)
		hdr := map[string]string{}
		if key != "" {
			hdr["Idempotency-Key"] = key
		}
		code, out, err := call("POST", rs.urls[0]+"/api/v1/orders", tok, map[string]any{"activity_id": aid, "item_id": iid, "quantity": 1}, hdr)
		if err != nil {
			t.Fatal(err)
		}
		return code, out
	}
	code, first := order(1, "k1")
	if code != http.StatusCreated {
		t.Fatalf("user 1: got %d %v, want 201", code, first)
	}
	// 3 left: capacity 2, both held.
	line := redis.NewLine(testenv.Redis(t))
	for u := int64(9001); u <= 9002; u++ {
		if d, err := line.Enter(ctx, domain.LineEntry{ActivityID: aid, ItemID: iid, UserID: u, Buckets: 1, Factor: 0.5,
			PlaceTTL: time.Minute, Lease: time.Minute}); err != nil || d.Outcome != domain.LineAdmitted {
			t.Fatalf("hold a slot: got %+v %v", d, err)
		}
	}
	if code, out := order(1, ""); code != http.StatusConflict || out["error"] != domain.ELimitExceeded {
		t.Fatalf("user 1 again, with the line full: got %d %v, want 409 limit_exceeded", code, out)
	}
	if code, out := order(1, "k1"); code != http.StatusCreated || out["order_id"] != first["order_id"] {
		t.Fatalf("user 1's retry of the first order: got %d %v, want 201 with order %v", code, out, first["order_id"])
	}
	if code, out := order(3, ""); code != http.StatusAccepted || out["position"] != 1.0 {
		t.Fatalf("a newcomer: got %d %v, want queued at the head", code, out)
	}
	st, err := line.Stats(ctx, aid, iid, 1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if st.Length != 1 || st.Places != 4 { // user 1's first, the two held, the newcomer's
		t.Fatalf("the line: got %+v, want the newcomer alone in it and 4 places given", st)
	}
}
