package hertzhost

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/config"
	"github.com/cloudwego/hertz/pkg/common/ut"
	"github.com/cloudwego/hertz/pkg/route"
	"github.com/http-wasm/http-wasm-host-go/tck"
	"github.com/tetratelabs/wazero"

	"github.com/seckill/flashsale/gateway/wasm"
)

var testCache wazero.CompilationCache

func TestMain(m *testing.M) {
	c, err := wazero.NewCompilationCacheWithDir(filepath.Join(os.TempDir(), "seckill-wasm-test-cache"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "compilation cache:", err)
		os.Exit(1)
	}
	testCache = c
	code := m.Run()
	_ = c.Close(context.Background()) // process exits next
	os.Exit(code)
}

const (
	probeWasm     = "../testdata/probe.wasm"
	garbageWasm   = "../testdata/garbage.wasm"
	blocklistWasm = "../../../plugins/examples/blocklist/blocklist.wasm"
)

func mustReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read %s: %v (run plugins/build.sh)", path, err)
	}
	return b
}

func newManager(tb testing.TB) *wasm.Manager {
	tb.Helper()
	m, err := wasm.NewManager(context.Background(), wasm.Options{
		CompilationCache: testCache, DefaultPoolSize: 2, DefaultTimeout: 2 * time.Second,
	})
	if err != nil {
		tb.Fatalf("NewManager: %v", err)
	}
	tb.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return m
}

func mustPut(tb testing.TB, m *wasm.Manager, name string, spec wasm.Spec) {
	tb.Helper()
	if _, err := m.Put(context.Background(), name, spec); err != nil {
		tb.Fatalf("Put(%s): %v", name, err)
	}
}

// newEngine is a gateway in miniature: the admission middleware in front
// of POST /api/v1/orders, which echoes what the plugins put in the request,
// and the admin routes under /admin/v1.
func newEngine(tb testing.TB, m *wasm.Manager) *route.Engine {
	tb.Helper()
	e := route.NewEngine(config.NewOptions(nil))
	api := e.Group("/api/v1", Middleware(m))
	api.POST("/orders", func(_ context.Context, c *app.RequestContext) {
		c.JSON(http.StatusCreated, map[string]string{
			"config": string(c.Request.Header.Peek("X-Probe-Config")),
			"calls":  string(c.Request.Header.Peek("X-Probe-Calls")),
		})
	})
	RegisterAdmin(e.Group("/admin/v1"), m)
	return e
}

type errorResponse struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func decode[T any](tb testing.TB, body []byte) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		tb.Fatalf("decode %q: %v", body, err)
	}
	return v
}

func TestMiddleware(t *testing.T) {
	m := newManager(t)
	mustPut(t, m, "probe", wasm.Spec{Wasm: mustReadFile(t, probeWasm), Config: json.RawMessage(`{"k":1}`), FailPolicy: wasm.FailClosed})
	mustPut(t, m, "blocklist", wasm.Spec{Wasm: mustReadFile(t, blocklistWasm), Order: -1, Config: json.RawMessage(`{"users":["13"]}`)})
	e := newEngine(t, m)
	tests := []struct {
		name       string
		headers    []ut.Header
		wantStatus int
		wantBody   string
	}{
		{"admitted", nil, 201, `{"calls":"1","config":"{\"k\":1}"}`},
		{"plugin status and reason", []ut.Header{{Key: "X-Probe", Value: "reject"}}, 429,
			`{"error":"rejected","message":"probe: go away"}`},
		{"default status", []ut.Header{{Key: "X-Probe", Value: "reject-silent"}}, 403,
			`{"error":"rejected","message":"probe: request rejected"}`},
		{"blocked user", []ut.Header{{Key: "X-Seckill-User", Value: "13"}}, 403,
			`{"error":"rejected","message":"blocklist: user 13 is blocked"}`},
		{"fail closed", []ut.Header{{Key: "X-Probe", Value: "panic"}}, 503,
			`{"error":"unavailable","message":"admission plugin probe failed"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := ut.PerformRequest(e, http.MethodPost, "/api/v1/orders", nil, tt.headers...)
			resp := w.Result()
			if got := resp.StatusCode(); got != tt.wantStatus {
				t.Errorf("got status %d, want %d", got, tt.wantStatus)
			}
			if got := string(resp.Body()); got != tt.wantBody {
				t.Errorf("got body %s, want %s", got, tt.wantBody)
			}
			if tt.wantStatus >= 400 {
				if got := string(resp.Header.ContentType()); !strings.HasPrefix(got, "application/json") {
					t.Errorf("got content type %q, want application/json", got)
				}
			}
		})
	}
}

// TestTrustedHeadersReadOnly: through the hertz host too, a plugin that
// sets, adds to or removes a trusted header changes nothing for the plugin
// after it or for the handler behind the chain.
func TestTrustedHeadersReadOnly(t *testing.T) {
	m := newManager(t)
	probe := mustReadFile(t, probeWasm)
	mustPut(t, m, "spoofer", wasm.Spec{Wasm: probe, Order: 1, Config: json.RawMessage(`{"header":"X-Spoof"}`)})
	mustPut(t, m, "reader", wasm.Spec{Wasm: probe, Order: 2})
	e := route.NewEngine(config.NewOptions(nil))
	e.POST("/orders", Middleware(m), func(_ context.Context, c *app.RequestContext) {
		var seen []string
		for _, h := range wasm.TrustedHeaders() {
			seen = append(seen, fmt.Sprint(c.Request.Header.GetAll(h)))
		}
		c.JSON(http.StatusOK, map[string]string{
			"plugin":  string(c.Request.Header.Peek("X-Probe-Trusted")),
			"backend": strings.Join(seen, "|"),
		})
	})
	trusted := []ut.Header{{Key: "X-Seckill-User", Value: "42"}, {Key: "X-Seckill-Activity", Value: "7"},
		{Key: "X-Seckill-Item", Value: "9"}, {Key: "X-Real-IP", Value: "203.0.113.5"}}
	want := map[string]string{"plugin": "42|7|9|203.0.113.5", "backend": "[42]|[7]|[9]|[203.0.113.5]"}
	for _, name := range wasm.TrustedHeaders() {
		for _, op := range []string{"set", "add", "remove"} {
			t.Run(op+" "+name, func(t *testing.T) {
				w := ut.PerformRequest(e, http.MethodPost, "/orders", nil, append([]ut.Header{
					{Key: "X-Spoof", Value: "spoof"}, {Key: "X-Probe-Spoof-Op", Value: op},
					{Key: "X-Probe-Spoof-Name", Value: strings.ToLower(name)}, {Key: "X-Probe", Value: "trusted"},
				}, trusted...)...)
				if w.Code != http.StatusOK {
					t.Fatalf("got %d %s, want 200", w.Code, w.Body.String())
				}
				if got := decode[map[string]string](t, w.Body.Bytes()); got["plugin"] != want["plugin"] || got["backend"] != want["backend"] {
					t.Errorf("got %v, want %v", got, want)
				}
			})
		}
	}
}

func TestAdmin(t *testing.T) {
	m := newManager(t)
	e := newEngine(t, m)
	probe := base64.StdEncoding.EncodeToString(mustReadFile(t, probeWasm))
	put := func(name, body string) (int, []byte) {
		w := ut.PerformRequest(e, http.MethodPut, "/admin/v1/plugins/"+name,
			&ut.Body{Body: strings.NewReader(body), Len: len(body)}, ut.Header{Key: "Content-Type", Value: "application/json"})
		return w.Code, w.Body.Bytes()
	}

	status, body := put("probe", `{"wasm_base64":"`+probe+`","order":5,"config":{"a":[1,2]},"fail_policy":"closed","timeout_ms":250,"memory_limit_pages":256,"pool_size":3}`)
	if status != 200 {
		t.Fatalf("PUT: got %d %s, want 200", status, body)
	}
	p := decode[Plugin](t, body)
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
		{"no module", "probe", `{"order":1}`, 400, "wasm_base64 is required"},
		{"bad base64", "probe", `{"wasm_base64":"%%%"}`, 400, "wasm_base64"},
		{"not json", "probe", `{`, 400, "body"},
		{"trailing data", "probe", `{"wasm_base64":"` + probe + `"} {}`, 400, "trailing data"},
		{"garbage module", "probe", `{"wasm_base64":"` + base64.StdEncoding.EncodeToString(mustReadFile(t, garbageWasm)) + `"}`, 400, "does not compile"},
		{"bad policy", "probe", `{"wasm_base64":"` + probe + `","fail_policy":"sometimes"}`, 400, "fail policy"},
		{"bad name", "Probe!", `{"wasm_base64":"` + probe + `"}`, 400, "plugin name"},
		{"negative pages", "probe", `{"wasm_base64":"` + probe + `","memory_limit_pages":-1}`, 400, "body"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			status, body := put(tt.plugin, tt.body)
			if status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", status, body, tt.wantStatus)
			}
			e := decode[errorResponse](t, body)
			if e.Error != "bad_request" || !strings.Contains(e.Message, tt.wantMessage) {
				t.Errorf("got %+v, want bad_request with %q", e, tt.wantMessage)
			}
		})
	}

	// The failed PUTs left the chain as it was.
	w := ut.PerformRequest(e, http.MethodGet, "/admin/v1/plugins", nil)
	if w.Code != 200 {
		t.Fatalf("GET: got %d, want 200", w.Code)
	}
	list := decode[struct{ Plugins []Plugin }](t, w.Body.Bytes())
	if len(list.Plugins) != 1 || list.Plugins[0].SHA256 != p.SHA256 || string(list.Plugins[0].Config) != `{"a":[1,2]}` {
		t.Fatalf("GET: got %+v, want the probe as loaded", list.Plugins)
	}
	w = ut.PerformRequest(e, http.MethodPost, "/api/v1/orders", nil)
	if w.Code != 201 {
		t.Errorf("order: got %d %s, want 201", w.Code, w.Body.String())
	}
	w = ut.PerformRequest(e, http.MethodGet, "/admin/v1/plugins", nil)
	if got := decode[struct{ Plugins []Plugin }](t, w.Body.Bytes()).Plugins[0].Counters; got.Calls != 1 || got.Admitted != 1 {
		t.Errorf("got counters %+v, want 1 call admitted", got)
	}

	w = ut.PerformRequest(e, http.MethodDelete, "/admin/v1/plugins/probe", nil)
	if w.Code != 204 {
		t.Errorf("DELETE: got %d, want 204", w.Code)
	}
	w = ut.PerformRequest(e, http.MethodDelete, "/admin/v1/plugins/probe", nil)
	if got := decode[errorResponse](t, w.Body.Bytes()); w.Code != 404 || got.Error != "not_found" {
		t.Errorf("DELETE again: got %d %+v, want 404 not_found", w.Code, got)
	}
}

func TestHotSwapUnderLoad(t *testing.T) {
	m := newManager(t)
	e := newEngine(t, m)
	probe := base64.StdEncoding.EncodeToString(mustReadFile(t, probeWasm))
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

// TestTCK runs the upstream http-wasm TCK against the hertz host: a real
// hertz server with the TCK guest as a plugin and the TCK backend behind it.
func TestTCK(t *testing.T) {
	m := newManager(t)
	mustPut(t, m, "tck", wasm.Spec{Wasm: tck.GuestWASM, FailPolicy: wasm.FailClosed})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := server.New(server.WithListener(ln), server.WithExitWaitTime(time.Second))
	h.Use(Middleware(m, PassGuestResponses()))
	h.Any("/*path", netHTTPHandler(tck.BackendHandler()))
	go func() {
		if err := h.Run(); err != nil {
			t.Errorf("hertz: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	url := "http://" + ln.Addr().String()
	waitUp(t, url)

	t.Run("HTTP/1.1", func(t *testing.T) {
		tck.Run(t, &http.Client{Timeout: 10 * time.Second}, url)
	})
}

// netHTTPHandler runs a net/http handler as the last hertz handler, buffering
// its response into c.Response (hertz's adaptor.HertzHandler streams the
// response and drops headers of handlers that never write, like the TCK
// backend's).
func netHTTPHandler(next http.Handler) app.HandlerFunc {
	return func(ctx context.Context, c *app.RequestContext) {
		uri := string(c.Request.Header.RequestURI())
		r, err := http.NewRequestWithContext(ctx, string(c.Method()), uri, bytes.NewReader(c.Request.Body()))
		if err != nil {
			c.AbortWithStatus(http.StatusBadRequest)
			return
		}
		r.RequestURI = uri
		r.Proto = c.Request.Header.GetProtocol()
		c.Request.Header.VisitAll(func(k, v []byte) { r.Header.Add(string(k), string(v)) })
		w := httptest.NewRecorder()
		next.ServeHTTP(w, r)
		for k, vs := range w.Header() {
			for _, v := range vs {
				c.Response.Header.Add(k, v)
			}
		}
		c.Response.SetStatusCode(w.Code)
		c.Response.AppendBody(w.Body.Bytes())
	}
}

func waitUp(tb testing.TB, url string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("server at %s not up: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
