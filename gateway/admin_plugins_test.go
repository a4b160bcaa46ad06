package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/config"
	"github.com/cloudwego/hertz/pkg/common/ut"
	"github.com/cloudwego/hertz/pkg/route"

	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/wasm"
	"github.com/seckill/flashsale/gateway/wasm/hertzhost"
	"github.com/seckill/flashsale/gateway/wasm/wasmtest"
)

const (
	probeWasm   = "wasm/testdata/probe.wasm"
	garbageWasm = "wasm/testdata/garbage.wasm"
)

// newPluginEngine is a gateway in miniature: the admission middleware in
// front of POST /api/v1/orders, which answers 201, and the plugin routes
// under /admin/v1 (without the operator check: its tests are elsewhere).
func newPluginEngine(tb testing.TB, m *wasm.Manager) *route.Engine {
	tb.Helper()
	g := newControlGateway(tb, m)
	e := route.NewEngine(config.NewOptions(nil))
	e.POST("/api/v1/orders", hertzhost.Middleware(m), func(_ context.Context, c *app.RequestContext) {
		c.JSON(http.StatusCreated, map[string]string{"status": "created"})
	})
	adm := e.Group("/admin/v1")
	adm.GET("/plugins", g.listPlugins)
	adm.PUT("/plugins/:name", g.putPlugin)
	adm.DELETE("/plugins/:name", g.deletePlugin)
	adm.GET("/plugins/:name/history", g.pluginHistory)
	return e
}

func decode[T any](tb testing.TB, body []byte) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		tb.Fatalf("decode %q: %v", body, err)
	}
	return v
}

func TestAdmin(t *testing.T) {
	m := wasmtest.NewManager(t, wasm.Options{})
	e := newPluginEngine(t, m)
	probe := base64.StdEncoding.EncodeToString(wasmtest.ReadModule(t, probeWasm))
	put := func(name, body string) (int, []byte) {
		w := ut.PerformRequest(e, http.MethodPut, "/admin/v1/plugins/"+name,
			&ut.Body{Body: strings.NewReader(body), Len: len(body)}, ut.Header{Key: "Content-Type", Value: "application/json"})
		return w.Code, w.Body.Bytes()
	}

	status, body := put("probe", `{"wasm_base64":"`+probe+`","order":5,"config":{"a":[1,2]},"fail_policy":"closed","timeout_ms":250,"memory_limit_pages":256,"pool_size":3}`)
	if status != 200 {
		t.Fatalf("PUT: got %d %s, want 200", status, body)
	}
	p := decode[api.Plugin](t, body)
	if p.Name != "probe" || p.Order != 5 || string(p.Config) != `{"a":[1,2]}` || p.FailPolicy != "closed" ||
		p.TimeoutMS != 250 || p.MemoryLimitPages != 256 || p.PoolSize != 3 || len(p.SHA256) != 64 || !p.RequestOnly {
		t.Errorf("got %+v, want the PUT values", p)
	}

	bad := []struct {
		name, plugin, body string
		wantStatus         int
		wantMessage        string
	}{
		{"unknown field", "probe", `{"wasm_base64":"` + probe + `","colour":"red"}`, 400, "unknown field"},
		{"no module for a new plugin", "fresh", `{"order":1}`, 400, "wasm_base64 is required"},
		{"bad base64", "probe", `{"wasm_base64":"%%%"}`, 400, "wasm_base64"},
		{"not json", "probe", `{`, 400, "body"},
		{"trailing data", "probe", `{"wasm_base64":"` + probe + `"} {}`, 400, "trailing data"},
		{"garbage module", "probe", `{"wasm_base64":"` + base64.StdEncoding.EncodeToString(wasmtest.ReadModule(t, garbageWasm)) + `"}`, 400, "does not compile"},
		{"bad policy", "probe", `{"wasm_base64":"` + probe + `","fail_policy":"sometimes"}`, 400, "fail policy"},
		{"bad name", "Probe!", `{"wasm_base64":"` + probe + `"}`, 400, "plugin name"},
		{"negative pages", "probe", `{"wasm_base64":"` + probe + `","memory_limit_pages":-1}`, 400, "body"},
		// A change without a module is checked as a whole plugin is, on the stored
		// module (before the fix these were stored for every gateway to fail on).
		{"bad policy, no module", "probe", `{"fail_policy":"maybe"}`, 400, "fail policy"},
		{"pool too large, no module", "probe", `{"pool_size":100000}`, 400, "pool size"},
		{"memory too large, no module", "probe", `{"memory_limit_pages":9999999}`, 400, "memory limit"},
		// A config travels with every read of the fleet's chain: at most 1 MiB.
		{"config too large", "probe", `{"wasm_base64":"` + probe + `","config":"` + strings.Repeat("x", wasm.MaxConfigBytes) + `"}`, 400, "config of"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			status, body := put(tt.plugin, tt.body)
			if status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", status, body, tt.wantStatus)
			}
			e := decode[api.Error](t, body)
			if e.Code != "bad_request" || !strings.Contains(e.Message, tt.wantMessage) {
				t.Errorf("got %+v, want bad_request with %q", e, tt.wantMessage)
			}
		})
	}

	// The failed PUTs left the chain as it was.
	w := ut.PerformRequest(e, http.MethodGet, "/admin/v1/plugins", nil)
	if w.Code != 200 {
		t.Fatalf("GET: got %d, want 200", w.Code)
	}
	list := decode[api.PluginList](t, w.Body.Bytes())
	if len(list.Plugins) != 1 || list.Plugins[0].SHA256 != p.SHA256 || string(list.Plugins[0].Config) != `{"a":[1,2]}` {
		t.Fatalf("GET: got %+v, want the probe as loaded", list.Plugins)
	}
	w = ut.PerformRequest(e, http.MethodPost, "/api/v1/orders", nil)
	if w.Code != 201 {
		t.Errorf("order: got %d %s, want 201", w.Code, w.Body.String())
	}
	w = ut.PerformRequest(e, http.MethodGet, "/admin/v1/plugins", nil)
	if got := decode[api.PluginList](t, w.Body.Bytes()).Plugins[0].Counters; got.Calls != 1 || got.Admitted != 1 {
		t.Errorf("got counters %+v, want 1 call admitted", got)
	}

	// A change without a module and without a policy: the default, shown as "open";
	// the history lists both changes, newest first; a plugin never stored has none.
	if status, body := put("probe", `{"order":6}`); status != 200 || decode[api.Plugin](t, body).FailPolicy != "open" {
		t.Fatalf("PUT without a policy: got %d %s, want 200 with fail_policy open", status, body)
	}
	w = ut.PerformRequest(e, http.MethodGet, "/admin/v1/plugins/probe/history", nil)
	if h := decode[api.PluginHistory](t, w.Body.Bytes()); w.Code != 200 || len(h.Changes) != 2 || h.Changes[0].Plugin.Order != 6 || h.Changes[1].Plugin.FailPolicy != "closed" {
		t.Fatalf("history: got %d %s, want the two changes, newest first", w.Code, w.Body.Bytes())
	}
	w = ut.PerformRequest(e, http.MethodGet, "/admin/v1/plugins/never/history", nil)
	if got := decode[api.Error](t, w.Body.Bytes()); w.Code != 404 || got.Code != "not_found" {
		t.Fatalf("history of a plugin never stored: got %d %+v, want 404", w.Code, got)
	}

	w = ut.PerformRequest(e, http.MethodDelete, "/admin/v1/plugins/probe", nil)
	if w.Code != 204 {
		t.Errorf("DELETE: got %d, want 204", w.Code)
	}
	w = ut.PerformRequest(e, http.MethodDelete, "/admin/v1/plugins/probe", nil)
	if got := decode[api.Error](t, w.Body.Bytes()); w.Code != 404 || got.Code != "not_found" {
		t.Errorf("DELETE again: got %d %+v, want 404 not_found", w.Code, got)
	}
}

func TestHotSwapUnderLoad(t *testing.T) {
	m := wasmtest.NewManager(t, wasm.Options{})
	e := newPluginEngine(t, m)
	probe := base64.StdEncoding.EncodeToString(wasmtest.ReadModule(t, probeWasm))
	put := func(i int) {
		body := fmt.Sprintf(`{"wasm_base64":"%s","config":%d,"fail_policy":"closed"}`, probe, i)
		w := ut.PerformRequest(e, http.MethodPut, "/admin/v1/plugins/probe",
			&ut.Body{Body: strings.NewReader(body), Len: len(body)})
		if w.Code != 200 {
			t.Fatalf("PUT %d: got %d %s", i, w.Code, w.Body.String())
		}
	}
	put(0)

	const workers = 8
	var stop atomic.Bool
	var total, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A request handler yields, as one waiting on the network does:
			// workers that never do keep each P for a 10ms slice and leave
			// the swap's goroutines queued behind all of them.
			for ; !stop.Load(); runtime.Gosched() {
				w := ut.PerformRequest(e, http.MethodPost, "/api/v1/orders", nil)
				total.Add(1)
				if w.Code != 201 {
					failed.Add(1)
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		put(i)
	}
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("got %d of %d requests failed during 20 swaps, want 0", failed.Load(), total.Load())
	}
	t.Logf("%d requests during 20 swaps", total.Load())
}

// TestSyncPutsBackALocalChange: a plugin changed on this gateway alone (its module the
// same, its config another; the change the fleet's store then refused) is put back to
// what the fleet stores at the next sync, not left running because its module matches.
func TestSyncPutsBackALocalChange(t *testing.T) {
	ctx := context.Background()
	m := wasmtest.NewManager(t, wasm.Options{})
	g := newControlGateway(t, m)
	e := route.NewEngine(config.NewOptions(nil))
	e.PUT("/admin/v1/plugins/:name", g.putPlugin)
	mod := wasmtest.ReadModule(t, probeWasm)
	body := `{"wasm_base64":"` + base64.StdEncoding.EncodeToString(mod) + `","config":{"v":"stored"},"fail_policy":"open"}`
	w := ut.PerformRequest(e, http.MethodPut, "/admin/v1/plugins/probe", &ut.Body{Body: strings.NewReader(body), Len: len(body)},
		ut.Header{Key: "Content-Type", Value: "application/json"})
	if w.Code != 200 {
		t.Fatalf("PUT: got %d %s", w.Code, w.Body.String())
	}
	if _, err := m.Put(ctx, "probe", wasm.Spec{Wasm: mod, Config: []byte(`{"v":"local"}`), FailPolicy: wasm.FailClosed}); err != nil {
		t.Fatal(err)
	}
	if err := g.fleet.SyncChain(ctx); err != nil {
		t.Fatal(err)
	}
	got := m.List()
	if len(got) != 1 || string(got[0].Config) != `{"v":"stored"}` || got[0].FailPolicy != wasm.FailOpen {
		t.Fatalf("after a sync: got %+v, want the stored config and fail policy back", got)
	}
}
