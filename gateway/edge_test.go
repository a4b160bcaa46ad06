package gateway_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// TestCatalogFloodReachesBackendOncePerID: the catalog reads come from the edge
// cache: a flood of random activity and item ids, each asked many times, reaches the
// backend once per id (null objects), the list once per TTL, and the real entries
// stay cached through the flood.
func TestCatalogFloodReachesBackendOncePerID(t *testing.T) {
	f := startGateway(t, func(c *gateway.Config) { c.CacheTTL, c.NullTTL = time.Minute, time.Minute })
	const ids, rounds = 300, 3
	acts, items := make([]int64, ids), make([]int64, ids)
	for i := range ids {
		acts[i] = 1000 + rand.Int64N(1<<40)
		items[i] = 1_000_000 + rand.Int64N(1<<40) // the stub knows no item from 1,000,000 up
	}
	for _, path := range []string{"/api/v1/activities/7", "/api/v1/items/70", "/api/v1/activities"} {
		if r := f.do(t, "GET", path, "", ""); r.status != http.StatusOK {
			t.Fatalf("GET %s: got %d %v, want 200", path, r.status, r.body)
		}
	}
	before := map[string]int{}
	for _, m := range []string{"GetActivity", "GetItem", "ListActivities:false"} {
		before[m] = f.backend.n(m)
	}
	for round := range rounds {
		for i := range ids {
			for _, path := range []string{"/api/v1/activities/" + strconv.FormatInt(acts[i], 10), "/api/v1/items/" + strconv.FormatInt(items[i], 10)} {
				if r := f.do(t, "GET", path, "", ""); r.status != http.StatusNotFound {
					t.Fatalf("round %d GET %s: got %d %v, want 404", round, path, r.status, r.body)
				}
			}
		}
		for _, path := range []string{"/api/v1/activities/7", "/api/v1/items/70", "/api/v1/activities"} {
			if r := f.do(t, "GET", path, "", ""); r.status != http.StatusOK {
				t.Fatalf("round %d GET %s: got %d %v, want 200", round, path, r.status, r.body)
			}
		}
	}
	for m, want := range map[string]int{"GetActivity": ids, "GetItem": ids, "ListActivities:false": 0} {
		if got := f.backend.n(m) - before[m]; got != want {
			t.Errorf("%s: got %d backend calls for %d random ids asked %d times (and the real ones), want %d", m, got, ids, rounds, want)
		}
	}
}

// TestCatalogChangeDropsTheCache: an operator's change through a gateway drops the
// activity, its items, the list and the null objects at once, so a new or changed
// activity is seen without waiting for the TTL.
func TestCatalogChangeDropsTheCache(t *testing.T) {
	f := startGateway(t, func(c *gateway.Config) { c.CacheTTL, c.NullTTL = time.Minute, time.Minute })
	for _, path := range []string{"/api/v1/activities", "/api/v1/items/70", "/api/v1/activities/8"} {
		f.do(t, "GET", path, "", "")
	}
	calls := func() string {
		return fmt.Sprint(f.backend.n("ListActivities:false"), f.backend.n("GetItem"), f.backend.n("GetActivity"))
	}
	was := calls()
	for _, path := range []string{"/api/v1/activities", "/api/v1/items/70", "/api/v1/activities/8"} {
		f.do(t, "GET", path, "", "")
	}
	if now := calls(); now != was {
		t.Fatalf("cached reads: got backend calls %s, want still %s", now, was)
	}
	if r := f.do(t, "POST", "/admin/v1/activities/7/publish", admin, ""); r.status != http.StatusOK {
		t.Fatalf("publish: got %d %v", r.status, r.body)
	}
	for _, path := range []string{"/api/v1/activities", "/api/v1/items/70", "/api/v1/activities/8"} {
		f.do(t, "GET", path, "", "")
	}
	var l, i, a int
	fmt.Sscan(was, &l, &i, &a)
	if now, want := calls(), fmt.Sprint(l+1, i+1, a+1); now != want {
		t.Fatalf("reads after a publish: got backend calls %s, want %s (each read once more)", now, want)
	}
}

// TestShedStatsIgnoreMadeUpActivities: orders refused before the edge cache looked
// their activity up (a bad Idempotency-Key) are counted per activity only for
// activities the backend knows: made-up ids add no entries that could push real
// activities' counts out.
func TestShedStatsIgnoreMadeUpActivities(t *testing.T) {
	f := startGateway(t)
	f.do(t, "GET", "/api/v1/activities/7", "", "") // the gateway now knows activity 7
	bad := []string{"Idempotency-Key", "key with spaces"}
	for i := range 50 {
		body := fmt.Sprintf(`{"activity_id": %d, "item_id": 1, "quantity": 1}`, 5000+i)
		if r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), body, bad...); r.status != http.StatusBadRequest {
			t.Fatalf("got %d, want 400", r.status)
		}
	}
	f.do(t, "POST", "/api/v1/orders", tok(t, 5), order, bad...)
	for _, tt := range []struct {
		id   int64
		want float64
	}{{5000, 0}, {5049, 0}, {7, 1}} {
		r := f.do(t, "GET", fmt.Sprintf("/admin/v1/activities/%d/stats", tt.id), admin, "")
		shed, _ := r.body["gateway_shed"].(map[string]any)
		if got, _ := shed["input/bad_request"].(float64); got != tt.want || r.status != http.StatusOK {
			t.Errorf("activity %d: got %d gateway_shed %v, want input/bad_request %v", tt.id, r.status, shed, tt.want)
		}
	}
}

// TestOrderForAnItemAddedElsewhere: an order for an item its activity's cached copy
// lacks (an operator added it through another gateway, whose announcement has not
// arrived) is not refused from the stale copy: the item is looked up on its own and
// the order goes on. A made-up item id asked many times reaches the backend once.
func TestOrderForAnItemAddedElsewhere(t *testing.T) {
	f := startGateway(t, func(c *gateway.Config) { c.CacheTTL, c.NullTTL = time.Minute, time.Minute })
	if r := f.do(t, "GET", "/api/v1/activities/7", "", ""); r.status != http.StatusOK {
		t.Fatalf("GET the activity: got %d %v", r.status, r.body)
	}
	f.backend.mu.Lock()            // added at the backend; the gateway's copy of activity 7 lacks it
	added71 := *f.backend.activity // a copy: the old one may be being sent
	added71.Items = append(slices.Clone(added71.Items), &rpc.Item{Id: 71, ActivityId: 7})
	f.backend.activity = &added71
	f.backend.mu.Unlock()
	added := `{"activity_id": 7, "item_id": 71, "quantity": 1}`
	if r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), added); r.status != http.StatusAccepted {
		t.Fatalf("order for the added item: got %d %v, want 202", r.status, r.body)
	}
	before := f.backend.n("GetItem")
	madeUp := fmt.Sprintf(`{"activity_id": 7, "item_id": %d, "quantity": 1}`, unknownItems+5)
	for i := range 20 {
		if r := f.do(t, "POST", "/api/v1/orders", tok(t, int64(100+i)), madeUp); r.status != http.StatusNotFound {
			t.Fatalf("order %d for a made-up item: got %d %v, want 404", i, r.status, r.body)
		}
	}
	if got := f.backend.n("GetItem") - before; got != 1 {
		t.Fatalf("20 orders for one made-up item: got %d item lookups, want 1", got)
	}
}

// TestCanonicalIDs: an id in a path is written one way (digits, no sign, no leading
// zero), so one activity has one path and one cache entry.
func TestCanonicalIDs(t *testing.T) {
	f := startGateway(t)
	for path, want := range map[string]int{
		"/api/v1/activities/7": http.StatusOK, "/api/v1/items/70": http.StatusOK,
		"/api/v1/activities/07": http.StatusNotFound, "/api/v1/activities/+7": http.StatusNotFound,
		"/api/v1/activities/-7": http.StatusNotFound, "/api/v1/activities/7x": http.StatusNotFound,
		"/api/v1/items/070": http.StatusNotFound, "/api/v1/activities/0": http.StatusNotFound,
		"/api/v1/activities/99999999999999999999": http.StatusNotFound,
	} {
		if got := f.do(t, "GET", path, "", ""); got.status != want {
			t.Errorf("GET %s: got %d %v, want %d", path, got.status, got.body, want)
		}
	}
}
