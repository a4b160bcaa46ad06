package hertzhost

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/config"
	"github.com/cloudwego/hertz/pkg/route"

	"github.com/seckill/flashsale/gateway/wasm"
	"github.com/seckill/flashsale/gateway/wasm/wasmtest"
)

// chainPlugins are the example plugins of BenchmarkChain, in chain order:
// each admits the benchmark's request after doing its real work (a config
// lookup, a shared counter, the clock).
var chainPlugins = []struct{ name, wasm, config string }{
	{"blocklist", blocklistWasm, `{"users":["1","2","3"],"ips":["198.51.100.0/24"]}`},
	{"attemptlimit", "../../../plugins/examples/attemptlimit/attemptlimit.wasm", `{"max":1000000000,"window_ms":60000}`},
	{"timewindow", "../../../plugins/examples/timewindow/timewindow.wasm", `{"start_ms":1,"end_ms":0}`},
}

// chainEngine is a hertz engine with the admission middleware and the
// first n chainPlugins in front of an order handler, and serve runs one
// order request through it on c, reused as hertz's server reuses it.
func chainEngine(tb testing.TB, n int) (serve func(tb testing.TB, c *app.RequestContext), e *route.Engine) {
	tb.Helper()
	m := wasmtest.NewManager(tb, wasm.Options{DefaultPoolSize: 2, DefaultTimeout: 2 * time.Second})
	for i, p := range chainPlugins[:n] {
		mustPut(tb, m, p.name, wasm.Spec{Wasm: wasmtest.ReadModule(tb, p.wasm), Order: i,
			Config: json.RawMessage(p.config), FailPolicy: wasm.FailClosed})
	}
	e = route.NewEngine(config.NewOptions(nil))
	e.POST("/api/v1/orders", Middleware(m), func(_ context.Context, c *app.RequestContext) {
		c.Data(http.StatusOK, "application/json", []byte(`{"ticket":"t"}`))
	})
	return func(tb testing.TB, c *app.RequestContext) {
		c.Reset()
		c.Request.Header.SetMethod(http.MethodPost)
		c.Request.SetRequestURI("/api/v1/orders")
		c.Request.Header.Set("X-Seckill-User", "42")
		c.Request.Header.Set("X-Seckill-Activity", "7")
		c.Request.Header.Set("X-Real-IP", "192.0.2.1")
		c.Request.SetBodyString(`{"activity_id":7,"item_id":9,"quantity":1}`)
		e.ServeHTTP(context.Background(), c)
		if got := c.Response.StatusCode(); got != http.StatusOK {
			tb.Fatalf("got %d %s, want 200", got, c.Response.Body())
		}
	}, e
}

// TestChainAllocatesNothing: a request through a plugin that reads the
// request's headers (blocklist reads the user and the client IP) allocates
// no more on the Go heap than one through no plugin: the host lends the
// header values (wasm.HeaderPeeker) and a guest call allocates nothing.
func TestChainAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	allocs := func(n int) float64 {
		serve, e := chainEngine(t, n)
		c := e.NewContext()
		return testing.AllocsPerRun(1000, func() { serve(t, c) })
	}
	if none, one := allocs(0), allocs(1); one > none {
		t.Errorf("got %v allocations per request through blocklist, want at most the %v of no plugin", one, none)
	}
}

// BenchmarkChain measures one order request through a hertz engine with
// the admission middleware and no plugin, one, or three of the example
// plugins: what the chain adds to the gateway's edge path. The request
// context is reused as hertz's server reuses it; ns/op of "none" is the
// engine and the middleware alone.
//
//	go test -run '^$' -bench Chain -benchmem ./gateway/wasm/hertzhost/
func BenchmarkChain(b *testing.B) {
	for _, n := range []int{0, 1, 3} {
		serve, e := chainEngine(b, n)
		name := map[int]string{0: "none", 1: "one", 3: "three"}[n]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			c := e.NewContext()
			for b.Loop() {
				serve(b, c)
			}
		})
		b.Run(name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				c := e.NewContext()
				for pb.Next() {
					serve(b, c)
				}
			})
		})
	}
}
