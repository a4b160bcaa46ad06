// Middleware of the route groups: metrics, trusted headers, identity, rate limits.

package gateway

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"time"
	"unsafe"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/protocol"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcauth"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/auth"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/internal/reqid"
)

// observe times every request into the histogram of its route, method and status,
// each from a bounded set (methodLabel, routeLabel): made-up methods and paths cannot
// add series.
func (g *Gateway) observe(ctx context.Context, c *app.RequestContext) {
	start := time.Now()
	c.Next(ctx)
	status := c.Response.StatusCode()
	g.metrics.observer(routeLabel(c), methodLabel(string(c.Method())), status).Observe(time.Since(start).Seconds())
	g.logFailure(ctx, c, status)
}

// stripTrusted drops trusted-context headers a client sent and sets X-Real-IP to
// the client's address (clientIPs: the peer unless it is a trusted proxy).
func (g *Gateway) stripTrusted(ctx context.Context, c *app.RequestContext) {
	// The address first: a trusted proxy may name the client in X-Real-IP, one of
	// the headers dropped next.
	ip := g.clientIP(ctx, c)
	for _, h := range trustedHeaders {
		c.Request.Header.Del(h)
	}
	var buf [64]byte // an address's text on the stack
	setHeader(&c.Request.Header, HeaderRealIP, ip.AppendTo(buf[:0]))
	c.Next(ctx)
}

// setHeader sets a request header to the text in b, which may be on the stack:
// Header.Set copies the value and keeps no reference to the string.
func setHeader(h *protocol.RequestHeader, key string, b []byte) {
	h.Set(key, unsafe.String(unsafe.SliceData(b), len(b)))
}

// clientIP is the client's address of c's request, found once per request.
func (g *Gateway) clientIP(ctx context.Context, c *app.RequestContext) netip.Addr {
	st := stateOf(ctx, c)
	if !st.hasIP {
		st.ip, st.hasIP = g.ips.of(c), true
	}
	return st.ip
}

// reqState is what the middleware learns of a request for the steps after it. The
// request's context carries it from requestID on, in the allocation of the
// request id (reqid.Carrier): kept in hertz's c.Keys it cost three allocations of
// every request, a sold-out answer's included.
type reqState struct {
	ip    netip.Addr // clientIP's answer, when hasIP
	hasIP bool
	user  int64 // the shopper, once shopper has checked the token
	order api.PlaceOrderRequest
	idem  string        // the order's Idempotency-Key
	retry bool          // the edge let the order past its refusal as a retry of an admitted one
	wait  time.Duration // the order's ?wait= (a queued shopper's wait in the request)
}

// keyState keeps a request's reqState in c when its context has none (a route
// without requestID).
const keyState = "gateway_state"

// stateOf is the request's reqState: its context's, else c's, made on first use.
func stateOf(ctx context.Context, c *app.RequestContext) *reqState {
	if st := peekState(ctx, c); st != nil {
		return st
	}
	st := &reqState{}
	c.Set(keyState, st)
	return st
}

// peekState is the request's reqState, or nil if it has none yet.
func peekState(ctx context.Context, c *app.RequestContext) *reqState {
	if st := reqid.Carried[reqState](ctx); st != nil {
		return st
	}
	v, _ := c.Get(keyState)
	st, _ := v.(*reqState)
	return st
}

// shopper requires a shopper's token and puts the user id in the trusted header.
func (g *Gateway) shopper(ctx context.Context, c *app.RequestContext) {
	// A view of the header, not a copy: the verifier copies a token it keeps.
	h := c.GetHeader("Authorization")
	tok, err := auth.Bearer(unsafe.String(unsafe.SliceData(h), len(h)))
	if err == nil {
		var uid int64
		if uid, err = g.verifier.UserID(tok); err == nil {
			stateOf(ctx, c).user = uid
			var buf [20]byte
			setHeader(&c.Request.Header, HeaderUser, strconv.AppendInt(buf[:0], uid, 10))
			c.Next(ctx)
			return
		}
	}
	reason := "invalid"
	switch {
	case errors.Is(err, auth.ErrMissing):
		reason = "missing"
	case errors.Is(err, auth.ErrExpired):
		reason = "expired"
	}
	g.shed.add(0, layerAuth, reason)
	fail(c, eUnauthorized, "a valid shopper token is required ("+reason+")")
}

// operator requires the admin token; a shopper's token is forbidden.
// The backend calls of the request carry the operator credential from here on.
func (g *Gateway) operator(ctx context.Context, c *app.RequestContext) {
	if g.isOperator(c) {
		c.Next(rpcauth.AsOperator(ctx))
		return
	}
	if c.Request.IsBodyStream() {
		// A stranger's body is never read: the connection closes after the answer
		// rather than taking in the rest of it (it could trickle in for as long as
		// they liked).
		c.Request.ResetBody()
		c.Response.SetConnectionClose()
	}
}

// isOperator reports whether the request carries the admin token; if not, it has
// answered 401 (403 for a shopper's token).
func (g *Gateway) isOperator(c *app.RequestContext) bool {
	tok, err := auth.Bearer(string(c.GetHeader("Authorization")))
	if err != nil {
		fail(c, eUnauthorized, "the admin token is required")
		return false
	}
	if g.admin.Is(tok) {
		return true
	}
	if _, err := g.verifier.UserID(tok); err == nil {
		fail(c, domain.EForbidden, "shoppers may not use the admin API")
		return false
	}
	fail(c, eUnauthorized, "the admin token is required")
	return false
}

// userOf is the shopper the shopper middleware identified.
func userOf(ctx context.Context, c *app.RequestContext) int64 {
	if st := peekState(ctx, c); st != nil {
		return st.user
	}
	return 0
}

// limitIP applies the read and per-IP rate limits to the public reads.
func (g *Gateway) limitIP(ctx context.Context, c *app.RequestContext) {
	if g.limited(ctx, c, 0, ratelimit.Read, "") || g.limited(ctx, c, 0, ratelimit.IP, limiterKey(g.clientIP(ctx, c))) {
		return
	}
	c.Next(ctx)
}

// limitReads applies the read and the shopper's read limits to a shopper's reads of
// orders and tickets.
func (g *Gateway) limitReads(ctx context.Context, c *app.RequestContext) {
	if g.limited(ctx, c, 0, ratelimit.Read, "") || g.limited(ctx, c, 0, ratelimit.UserRead, strconv.FormatInt(userOf(ctx, c), 10)) {
		return
	}
	c.Next(ctx)
}

// limitChanges applies the global and the shopper's limits to a change of an order
// (cancel, pay): the same buckets as placing one.
func (g *Gateway) limitChanges(ctx context.Context, c *app.RequestContext) {
	if g.limited(ctx, c, 0, ratelimit.Global, "") || g.limited(ctx, c, 0, ratelimit.User, strconv.FormatInt(userOf(ctx, c), 10)) {
		return
	}
	c.Next(ctx)
}

// limitWhat names each kind of limit in a 429's message.
var limitWhat = map[ratelimit.Kind]string{ratelimit.Global: "global", ratelimit.Read: "read", ratelimit.User: "per-user",
	ratelimit.UserRead: "per-user read", ratelimit.Item: "per-item", ratelimit.IP: "per-IP"}

// sharedPrefix keys a per-user kind's buckets in the fleet's shared store.
var sharedPrefix = map[ratelimit.Kind]string{ratelimit.User: "u:", ratelimit.UserRead: "ur:"}

// limited takes a token of kind's bucket for key; when there is none it counts the
// shed (under activityID, 0 for none), answers 429 with Retry-After and reports true.
//
// A shopper's limits hold across the fleet: checked here first at the rule's full
// rate (no round trip for a shopper flooding one gateway), then in the shared store.
// When that store fails, this gateway's check stands alone.
func (g *Gateway) limited(ctx context.Context, c *app.RequestContext, activityID int64, kind ratelimit.Kind, key string) bool {
	ok, wait := g.limiter.Allow(kind, key)
	if prefix, isUser := sharedPrefix[kind]; ok && isUser && g.shared != nil {
		l := g.limiter.Limits()
		if r := l.Rule(kind); r.RPS > 0 {
			var err error
			if ok, wait, err = g.shared.Allow(ctx, prefix+key, r.RPS, r.Burst); err != nil {
				g.log.WarnContext(ctx, "shared rate limit unavailable; this gateway's alone applies", "err", err)
				ok = true
			}
		}
	}
	if ok {
		return false
	}
	g.shed.add(activityID, layerRateLimit, string(kind))
	rateLimited(c, limitWhat[kind], wait)
	return true
}
