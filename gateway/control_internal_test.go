package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/common/config"
	"github.com/cloudwego/hertz/pkg/common/ut"
	"github.com/cloudwego/hertz/pkg/route"
	kcallopt "github.com/cloudwego/kitex/client/callopt"

	"github.com/seckill/flashsale/backend"
	"github.com/seckill/flashsale/backend/control"
	"github.com/seckill/flashsale/backend/inmem"
	"github.com/seckill/flashsale/gateway/fleet"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/gateway/wasm"
	"github.com/seckill/flashsale/gateway/wasm/hertzhost"
	"github.com/seckill/flashsale/gateway/wasm/wasmtest"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
)

// controlClient is a backend client whose control calls go straight to the backend's
// control handler over an in-memory store (the other calls are not used here).
type controlClient struct {
	seckill.Client
	rpc *backend.ControlRPC
}

func (c controlClient) GetPlugins(ctx context.Context, r *rpc.EmptyReq, _ ...kcallopt.Option) (*rpc.PluginChain, error) {
	return c.rpc.GetPlugins(ctx, r)
}
func (c controlClient) PutPlugin(ctx context.Context, r *rpc.PutPluginReq, _ ...kcallopt.Option) (*rpc.PluginSpec, error) {
	return c.rpc.PutPlugin(ctx, r)
}
func (c controlClient) DeletePlugin(ctx context.Context, r *rpc.PluginNameReq, _ ...kcallopt.Option) (*rpc.PluginChain, error) {
	return c.rpc.DeletePlugin(ctx, r)
}
func (c controlClient) RollbackPlugin(ctx context.Context, r *rpc.PluginNameReq, _ ...kcallopt.Option) (*rpc.PluginSpec, error) {
	return c.rpc.RollbackPlugin(ctx, r)
}
func (c controlClient) GetPluginHistory(ctx context.Context, r *rpc.PluginNameReq, _ ...kcallopt.Option) (*rpc.PluginHistoryResp, error) {
	return c.rpc.GetPluginHistory(ctx, r)
}
func (c controlClient) GetPluginModule(ctx context.Context, r *rpc.PluginModuleReq, _ ...kcallopt.Option) (*rpc.PluginModuleResp, error) {
	return c.rpc.GetPluginModule(ctx, r)
}
func (c controlClient) GetLimits(ctx context.Context, r *rpc.EmptyReq, _ ...kcallopt.Option) (*rpc.LimitsState, error) {
	return c.rpc.GetLimits(ctx, r)
}
func (c controlClient) PutLimits(ctx context.Context, r *rpc.PutLimitsReq, _ ...kcallopt.Option) (*rpc.LimitsState, error) {
	return c.rpc.PutLimits(ctx, r)
}

// newControlGateway is a Gateway whose control state lives in memory: its plugin and
// limit routes work as in a fleet of one.
func newControlGateway(tb testing.TB, m *wasm.Manager) *Gateway {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cl := controlClient{rpc: backend.NewControlRPC(control.NewService(inmem.NewControlStore(), nil, log))}
	lim := ratelimit.New(ratelimit.Limits{}, 0)
	g := &Gateway{plugins: m, backend: cl, limiter: lim, log: log}
	g.fleet = fleet.New(fleet.Options{ID: "test", Backend: cl, Plugins: m, Limiter: lim, Log: log})
	if err := g.fleet.Sync(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return g
}

// TestOrdersWaitForTheChain: a gateway refuses orders (503, nothing taken) until it has
// loaded the fleet's control state, and while a plugin of fail policy closed that the
// fleet wants runs no version here (it failed to load): before, it admitted them past
// the plugin (a fleet probe: a blocked shopper's orders got 202 on a gateway whose
// memory limit refused the blocklist, and in a restarting gateway's first moments).
func TestOrdersWaitForTheChain(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cl := controlClient{rpc: backend.NewControlRPC(control.NewService(inmem.NewControlStore(), nil, log))}
	module := wasmtest.ReadModule(t, probeWasm)
	if _, err := cl.PutPlugin(ctx, &rpc.PutPluginReq{Spec: &rpc.PluginSpec{Name: "probe", FailPolicy: "closed"}, Module: module}); err != nil {
		t.Fatal(err)
	}
	// A gateway whose plugins get too little memory for the module by default.
	m := wasmtest.NewManager(t, wasm.Options{DefaultMemoryPages: 1})
	lim := ratelimit.New(ratelimit.Limits{}, 0)
	g := &Gateway{plugins: m, backend: cl, limiter: lim, log: log, shed: newShedCounter(nil, nil, log)}
	g.fleet = fleet.New(fleet.Options{ID: "late", Backend: cl, Plugins: m, Limiter: lim, Log: log})
	e := route.NewEngine(config.NewOptions(nil))
	e.POST("/api/v1/orders", g.admit(hertzhost.Middleware(m)), func(_ context.Context, c *app.RequestContext) {
		c.JSON(http.StatusCreated, map[string]string{"status": "created"})
	})
	order := func() (int, string) {
		w := ut.PerformRequest(e, http.MethodPost, "/api/v1/orders", &ut.Body{Body: strings.NewReader("{}"), Len: 2})
		return w.Code, w.Body.String()
	}
	if code, body := order(); code != http.StatusServiceUnavailable || !strings.Contains(body, "not loaded the fleet's admission plugins") {
		t.Fatalf("before the first sync: got %d %s, want 503", code, body)
	}
	if err := g.fleet.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := g.fleet.MissingClosed(); got != "probe" {
		t.Fatalf("MissingClosed: got %q, want probe (its module needs more than a page)", got)
	}
	if code, body := order(); code != http.StatusServiceUnavailable || !strings.Contains(body, "probe") {
		t.Fatalf("with the closed plugin missing: got %d %s, want 503 naming it", code, body)
	}
	// The operator gives it the memory it needs: it loads, and orders go through it.
	if _, err := cl.PutPlugin(ctx, &rpc.PutPluginReq{Spec: &rpc.PluginSpec{Name: "probe", FailPolicy: "closed", MemoryLimitPages: 256}, Module: module}); err != nil {
		t.Fatal(err)
	}
	if err := g.fleet.SyncChain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := g.fleet.MissingClosed(); got != "" {
		t.Fatalf("MissingClosed once it loads: got %q, want none", got)
	}
	if code, body := order(); code != http.StatusCreated {
		t.Fatalf("with the plugin running: got %d %s, want 201", code, body)
	}
	// An open plugin that fails to load here does not stop orders.
	if _, err := cl.PutPlugin(ctx, &rpc.PutPluginReq{Spec: &rpc.PluginSpec{Name: "probe2", FailPolicy: "open", Order: 1}, Module: module}); err != nil {
		t.Fatal(err)
	}
	if err := g.fleet.SyncChain(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body := order(); code != http.StatusCreated || g.fleet.MissingClosed() != "" {
		t.Fatalf("with an open plugin missing: got %d %s, want 201", code, body)
	}
}
