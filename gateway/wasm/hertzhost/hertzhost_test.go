package hertzhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/config"
	"github.com/cloudwego/hertz/pkg/common/ut"
	"github.com/cloudwego/hertz/pkg/route"
	"github.com/http-wasm/http-wasm-host-go/tck"

	"github.com/seckill/flashsale/gateway/wasm"
	"github.com/seckill/flashsale/gateway/wasm/wasmtest"
)

const (
	probeWasm     = "../testdata/probe.wasm"
	blocklistWasm = "../../../plugins/examples/blocklist/blocklist.wasm"
)

func mustPut(tb testing.TB, m *wasm.Manager, name string, spec wasm.Spec) {
	tb.Helper()
	if _, err := m.Put(context.Background(), name, spec); err != nil {
		tb.Fatalf("Put(%s): %v", name, err)
	}
}

// newEngine is a gateway in miniature: the admission middleware in front
// of POST /api/v1/orders, which echoes what the plugins put in the request.
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
	return e
}

func TestMiddleware(t *testing.T) {
	m := wasmtest.NewManager(t, wasm.Options{})
	mustPut(t, m, "probe", wasm.Spec{Wasm: wasmtest.ReadModule(t, probeWasm), Config: json.RawMessage(`{"k":1}`), FailPolicy: wasm.FailClosed})
	mustPut(t, m, "blocklist", wasm.Spec{Wasm: wasmtest.ReadModule(t, blocklistWasm), Order: -1, Config: json.RawMessage(`{"users":["13"]}`)})
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
	m := wasmtest.NewManager(t, wasm.Options{DefaultPoolSize: 2, DefaultTimeout: 2 * time.Second})
	probe := wasmtest.ReadModule(t, probeWasm)
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
				var got map[string]string
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				if got["plugin"] != want["plugin"] || got["backend"] != want["backend"] {
					t.Errorf("got %v, want %v", got, want)
				}
			})
		}
	}
}

// TestTCK runs the upstream http-wasm TCK against the hertz host: a real
// hertz server with the TCK guest as a plugin and the TCK backend behind it.
func TestTCK(t *testing.T) {
	m := wasmtest.NewManager(t, wasm.Options{})
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
