package hertzhost

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/wasm"
)

// Option configures Middleware.
type Option func(*options)

type options struct {
	passGuestResponses bool
}

// PassGuestResponses makes the middleware send a rejecting plugin's own
// response (its status, default 200, its headers and body) to the client
// instead of the gateway's error shape. For generic http-wasm guests such
// as the upstream TCK; the gateway itself does not use it. Plugin failures
// still answer 503 in the gateway's shape.
func PassGuestResponses() Option { return func(o *options) { o.passGuestResponses = true } }

// Middleware runs m's admission chain for each request. When every plugin
// admits, it calls c.Next; otherwise it aborts with the rejection:
//
//	403 (or the status the plugin set, >= 400) {"error":"rejected","message":"<plugin>: <reason>"}
//	503 {"error":"unavailable","message":"admission plugin <name> failed"}
//
// Response headers the plugin set (Retry-After, say) are kept.
func Middleware(m *wasm.Manager, opts ...Option) app.HandlerFunc {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return func(ctx context.Context, c *app.RequestContext) {
		v := m.Handle(NewContext(ctx, c), HostFor(c), next)
		if v.Admitted {
			return
		}
		c.Abort()
		if o.passGuestResponses && !v.Failed {
			status := v.GuestStatus
			if status == 0 {
				status = http.StatusOK
			}
			c.Response.SetStatusCode(status)
			return // headers and body are already on the response
		}
		writeError(c, v.Status, v.Error, v.Message)
	}
}

// next runs the handlers after the middleware, for the request in ctx (a
// function of its own rather than a closure per request: nothing to
// allocate). Its error reaches the guests' handle_response.
func next(ctx context.Context) error {
	c := RequestContext(ctx)
	c.Next(ctx)
	if err := c.Errors.Last(); err != nil {
		return err
	}
	return nil
}

// writeError replaces the response body with the gateway's error shape.
func writeError(c *app.RequestContext, status int, code, message string) {
	body, err := json.Marshal(api.Error{Code: code, Message: message})
	if err != nil { // two strings always marshal
		panic(err)
	}
	c.Response.ResetBody()
	c.Data(status, "application/json; charset=utf-8", body)
}
