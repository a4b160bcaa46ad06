package gateway

import (
	"context"
	"io"
	"log/slog"
	"testing"

	kcallopt "github.com/cloudwego/kitex/client/callopt"

	"github.com/seckill/flashsale/backend"
	"github.com/seckill/flashsale/backend/control"
	"github.com/seckill/flashsale/backend/inmem"
	"github.com/seckill/flashsale/gateway/fleet"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/gateway/wasm"
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
