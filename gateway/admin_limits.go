// Operators' rate-limit routes (/admin/v1/limits): read and change at run time.

package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/gateway/ratelimit"
)

func (g *Gateway) getLimits(_ context.Context, c *app.RequestContext) {
	c.JSON(http.StatusOK, g.limiter.Limits())
}

func (g *Gateway) putLimits(_ context.Context, c *app.RequestContext) {
	var l ratelimit.Limits
	if err := decodeStrict(c.Request.Body(), &l); err != nil {
		fail(c, domain.EBadRequest, err.Error())
		return
	}
	for _, r := range []ratelimit.Rule{l.Global, l.User, l.Item, l.IP} {
		if r.RPS < 0 || r.Burst < 0 {
			fail(c, domain.EBadRequest, "rps and burst must not be negative")
			return
		}
	}
	g.limiter.Set(l)
	g.log.Info("rate limits changed", "limits", fmt.Sprintf("%+v", l))
	c.JSON(http.StatusOK, l)
}
