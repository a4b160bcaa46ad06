// Every answer's request id, and panics turned into answers.

package gateway

import (
	"context"
	"fmt"
	"runtime/debug"
	"strconv"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/internal/reqid"
)

// HeaderRequestID names a request in the answer, the logs and the backend's logs.
const HeaderRequestID = "X-Request-Id"

// requestID gives every request an id: the client's X-Request-Id when it is
// well-formed and short (reqid.Valid), else a fresh one. The answer carries it, and
// so does ctx: into the logs (request_id) and the backend calls.
func (g *Gateway) requestID(ctx context.Context, c *app.RequestContext) {
	id := string(c.GetHeader(HeaderRequestID))
	if !reqid.Valid(id) {
		id = "" // a fresh one
	}
	// The context carries the request's state too (reqState), in the same
	// allocation.
	rc, id := reqid.NewCarrier[reqState](ctx, id)
	c.Request.Header.Set(HeaderRequestID, id) // plugins see the id in force
	c.Header(HeaderRequestID, id)
	c.Next(rc)
}

// recoverPanic turns a panic in what follows into a logged, counted 500 with the usual
// error body: the client gets an answer and keeps its connection, and the gateway goes
// on.
func (g *Gateway) recoverPanic(ctx context.Context, c *app.RequestContext) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		g.metrics.panics.Inc()
		g.log.ErrorContext(ctx, "panic serving a request", "panic", fmt.Sprint(r), "route", routeLabel(c),
			"method", methodLabel(string(c.Method())), "client_ip", g.clientIP(ctx, c).String(), "stack", string(debug.Stack()))
		// Whatever the handler wrote is dropped; the id stays.
		c.Response.Reset()
		c.Header(HeaderRequestID, reqid.From(ctx))
		fail(c, domain.EInternal, "internal error; the log has it under the request id "+reqid.From(ctx))
	}()
	c.Next(ctx)
}

// logFailure logs an answer of 500 or more (at most failLogRate a second: an outage
// fails every request), with what identifies it.
func (g *Gateway) logFailure(ctx context.Context, c *app.RequestContext, status int) {
	if status < 500 || !g.failLog.Allow() {
		return
	}
	body := c.Response.Body()
	if len(body) > 200 {
		body = body[:200]
	}
	g.log.WarnContext(ctx, "request failed", "status", strconv.Itoa(status), "route", routeLabel(c),
		"method", methodLabel(string(c.Method())), "client_ip", g.clientIP(ctx, c).String(), "answer", string(body))
}

// failLogRate is how many failed requests a second are logged.
const failLogRate = 20
