// Health of the process (/healthz) and of what it depends on (/readyz).

package gateway

import (
	"context"
	"net/http"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// healthz answers as long as the process serves.
func healthz(_ context.Context, c *app.RequestContext) {
	c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// ready answers 200 once the backend answers a ping, 503 otherwise.
func (g *Gateway) ready(ctx context.Context, c *app.RequestContext) {
	if _, err := g.backend.Ping(ctx, &rpc.PingReq{}); err != nil {
		fail(c, domain.EUnavailable, "backend unreachable")
		return
	}
	c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
