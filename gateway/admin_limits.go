// Operators' rate-limit routes (/admin/v1/limits): read and change at run time.

package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/ratelimit"
)

func (g *Gateway) getLimits(_ context.Context, c *app.RequestContext) {
	c.JSON(http.StatusOK, limitsOut(g.limiter.Limits()))
}

func (g *Gateway) putLimits(_ context.Context, c *app.RequestContext) {
	var in api.Limits
	if err := decodeStrict(c.Request.Body(), &in); err != nil {
		fail(c, domain.EBadRequest, err.Error())
		return
	}
	for _, r := range []api.Rule{in.Global, in.User, in.Item, in.IP} {
		if r.RPS < 0 || r.Burst < 0 {
			fail(c, domain.EBadRequest, "rps and burst must not be negative")
			return
		}
	}
	l := limitsIn(in)
	g.limiter.Set(l)
	g.log.Info("rate limits changed", "limits", fmt.Sprintf("%+v", l))
	c.JSON(http.StatusOK, in)
}

// limitsOut and limitsIn convert between the limiter's rules and the API's
// (the same fields: the limiter's also come from the configuration file).
func limitsOut(l ratelimit.Limits) api.Limits {
	return api.Limits{Global: api.Rule(l.Global), User: api.Rule(l.User), Item: api.Rule(l.Item), IP: api.Rule(l.IP)}
}

func limitsIn(l api.Limits) ratelimit.Limits {
	return ratelimit.Limits{Global: ratelimit.Rule(l.Global), User: ratelimit.Rule(l.User), Item: ratelimit.Rule(l.Item), IP: ratelimit.Rule(l.IP)}
}
