// Health of the process (/healthz) and of what it depends on (/readyz).

package gateway

import (
	"context"
	"errors"
	"net/http"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/kitex/pkg/kerrors"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// healthz answers as long as the process serves.
func healthz(_ context.Context, c *app.RequestContext) {
	c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// ready answers 200 once the backend answers a ping and the gateway loaded the
// fleet's control state (its plugins and limits), 503 otherwise.
func (g *Gateway) ready(ctx context.Context, c *app.RequestContext) {
	if err := g.readiness(ctx); err != nil {
		fail(c, domain.EUnavailable, err.Error())
		return
	}
	c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// readiness says why the gateway is not ready, or nil.
func (g *Gateway) readiness(ctx context.Context) error {
	if _, err := g.backend.Ping(ctx, &rpc.PingReq{}); err != nil {
		if be, ok := kerrors.FromBizStatusError(err); ok && rpc.ErrorCode(be.BizStatusCode()) == rpc.ErrorCode_UNAUTHENTICATED {
			return errors.New("the backend refuses this gateway's RPC credential: backend.rpc_secret differs between them")
		}
		return errors.New("backend unreachable")
	}
	if !g.fleet.Ready() {
		return errors.New("the fleet's control state is not loaded yet")
	}
	return nil
}
