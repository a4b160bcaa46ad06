// POST /api/v1/orders: the checks an order passes through, in the order the
// route runs them (parse, rate limits, edge cache, plugins), and the call to the
// backend.

package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/protocol"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/backend/telemetry"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/internal/randhex"
	"github.com/seckill/flashsale/internal/reqid"
)

// DecodeOrder parses (as decodeStrict would, without reflection: order_body.go)
// and validates an order body.
func DecodeOrder(body []byte) (api.PlaceOrderRequest, error) {
	b, err := decodeOrderBody(body)
	if err != nil {
		return b, domain.Errorf(domain.EBadRequest, "%v", err)
	}
	switch {
	case b.ActivityID <= 0:
		return b, domain.Errorf(domain.EBadRequest, "activity_id must be a positive integer")
	case b.ItemID <= 0:
		return b, domain.Errorf(domain.EBadRequest, "item_id must be a positive integer")
	case b.Quantity <= 0 || b.Quantity > domain.MaxQuantity:
		return b, domain.Errorf(domain.EBadRequest, "quantity must be 1 to %d", domain.MaxQuantity)
	}
	return b, nil
}

// validIdemKey: an Idempotency-Key is at most 128 printable ASCII characters.
func validIdemKey(k string) bool {
	if len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseOrder refuses a body over the shoppers' limit or not a valid order, and a
// bad Idempotency-Key; it keeps the order for the next steps and sets the
// trusted activity and item headers plugins read.
func (g *Gateway) parseOrder(ctx context.Context, c *app.RequestContext) {
	body := requestBody(&c.Request)
	if len(body) > g.cfg.MaxBodyBytes {
		g.shed.add(0, layerInput, "too_large")
		fail(c, eTooLarge, fmt.Sprintf("the body is over %d bytes", g.cfg.MaxBodyBytes))
		return
	}
	b, err := DecodeOrder(body)
	if err != nil {
		g.shed.add(0, layerInput, "bad_request")
		failErr(c, err)
		return
	}
	key := string(c.GetHeader("Idempotency-Key"))
	if repeated(&c.Request.Header, "Idempotency-Key") {
		// Which one is the key? An empty first line made the retries of a key new
		// orders, each with a unit of its own.
		g.shed.add(b.ActivityID, layerInput, "bad_request")
		fail(c, domain.EBadRequest, "Idempotency-Key is given more than once")
		return
	}
	if !validIdemKey(key) {
		g.shed.add(b.ActivityID, layerInput, "bad_request")
		fail(c, domain.EBadRequest, "Idempotency-Key must be at most 128 printable characters")
		return
	}
	wait, err := waitQuery(c) // read whether or not the activity has a room, so a bad one is always 400
	if err != nil {
		g.shed.add(b.ActivityID, layerInput, "bad_request")
		failErr(c, err)
		return
	}
	st := stateOf(ctx, c)
	st.order, st.idem, st.wait = b, key, wait
	var buf [20]byte
	setHeader(&c.Request.Header, HeaderActivity, strconv.AppendInt(buf[:0], b.ActivityID, 10))
	setHeader(&c.Request.Header, HeaderItem, strconv.AppendInt(buf[:0], b.ItemID, 10))
	c.Next(ctx)
}

// repeated reports whether h holds the header name (canonical form) more than once.
func repeated(h *protocol.RequestHeader, name string) bool {
	n := 0
	h.VisitAll(func(k, _ []byte) {
		if len(k) == len(name) && strings.EqualFold(string(k), name) {
			n++
		}
	})
	return n > 1
}

// orderOf is the order parseOrder kept.
func orderOf(ctx context.Context, c *app.RequestContext) api.PlaceOrderRequest {
	if st := peekState(ctx, c); st != nil {
		return st.order
	}
	return api.PlaceOrderRequest{}
}

// idemOf is the Idempotency-Key parseOrder kept.
func idemOf(ctx context.Context, c *app.RequestContext) string {
	if st := peekState(ctx, c); st != nil {
		return st.idem
	}
	return ""
}

// limitOrder applies the global, per-user and per-item rate limits.
func (g *Gateway) limitOrder(ctx context.Context, c *app.RequestContext) {
	b := orderOf(ctx, c)
	if g.limited(ctx, c, b.ActivityID, ratelimit.Global, "") ||
		g.limited(ctx, c, b.ActivityID, ratelimit.User, strconv.FormatInt(userOf(ctx, c), 10)) ||
		g.limited(ctx, c, b.ActivityID, ratelimit.Item, strconv.FormatInt(b.ItemID, 10)) {
		return
	}
	c.Next(ctx)
}

// edgeOrder answers from the edge cache: unknown activity or item, an item
// offline, outside the item's window (its own, or its activity's), sold out.
func (g *Gateway) edgeOrder(ctx context.Context, c *app.RequestContext) {
	b := orderOf(ctx, c)
	a, _, err := g.edge.activity(ctx, b.ActivityID)
	if err != nil {
		if domain.IsCode(err, domain.ENotFound) {
			g.shed.add(0, layerCache, domain.ENotFound) // no such activity: nothing to count it under
		}
		failErr(c, err)
		return
	}
	var item *rpc.Item
	for _, it := range a.Items {
		if it.Id == b.ItemID {
			item = it
			break
		}
	}
	if item == nil {
		item = g.addedItem(ctx, a, b.ItemID)
	}
	reason, msg := "", ""
	now := time.Now().UnixMilli()
	start, end := a.StartMs, a.EndMs
	if item != nil && item.StartMs > start {
		start = item.StartMs // the item's own window, inside the activity's
	}
	if item != nil && item.EndMs != 0 && item.EndMs < end {
		end = item.EndMs
	}
	switch {
	case item == nil:
		reason, msg = domain.ENotFound, fmt.Sprintf("item %d is not in activity %d", b.ItemID, b.ActivityID)
	case item.State == string(domain.ItemOffline):
		reason, msg = domain.ENotFound, fmt.Sprintf("item %d of activity %d is offline", b.ItemID, b.ActivityID)
	case now < start:
		reason, msg = domain.ENotStarted, fmt.Sprintf("item %d of activity %d goes on sale at %s", b.ItemID, a.Id, time.UnixMilli(start).UTC().Format(time.RFC3339))
	case now >= end:
		reason, msg = domain.EEnded, fmt.Sprintf("item %d of activity %d is no longer on sale", b.ItemID, a.Id)
	case g.edge.isSoldOut(b.ActivityID, b.ItemID):
		if g.isRetry(ctx, b, userOf(ctx, c), idemOf(ctx, c)) {
			// Past the flag; past the line too only when the ledger holds the
			// key (a key this gateway merely forwarded may have been refused).
			stateOf(ctx, c).retry = g.keyAdmitted(ctx, b, userOf(ctx, c), idemOf(ctx, c))
			break
		}
		if a.WaitingRoom && g.room.line != nil && g.placeHolder(ctx, c, b) {
			// A queued shopper asking after their place with a token that verifies:
			// the line answers (sold_out too), so the place stays theirs for units
			// that come back.
			break
		}
		// The answer of every order in a sell-out's rush: its message is built on
		// the stack.
		g.shed.add(b.ActivityID, layerCache, domain.ESoldOut)
		var buf [48]byte
		msg := strconv.AppendInt(append(buf[:0], "item "...), b.ItemID, 10)
		failMsg(c, domain.ESoldOut, append(msg, " is sold out"...))
		return
	}
	if item != nil && g.pastRefusal(ctx, reason, b, userOf(ctx, c), idemOf(ctx, c)) {
		// A retry of an order admitted before the item went offline or its window
		// closed or moved: the backend answers with the first attempt's outcome.
		stateOf(ctx, c).retry, reason = true, ""
	}
	if reason != "" {
		g.shed.add(b.ActivityID, layerCache, reason)
		fail(c, reason, msg)
		return
	}
	c.Next(ctx)
}

// admit runs the plugin chain h and counts its refusals as the plugin layer's.
func (g *Gateway) admit(h app.HandlerFunc) app.HandlerFunc {
	return func(ctx context.Context, c *app.RequestContext) {
		// A gateway that has not loaded the fleet's chain, or runs no version of a
		// plugin that must fail closed, would let orders past the plugins.
		if !g.fleet.Ready() {
			fail(c, domain.EUnavailable, "this gateway has not loaded the fleet's admission plugins yet; nothing was taken")
		} else if name := g.fleet.MissingClosed(); name != "" {
			failMsg(c, domain.EUnavailable, "admission plugin "+name+" (fail_policy closed) does not run on this gateway; nothing was taken")
		} else {
			h(ctx, c)
			// The answer names the request as every answer does, whatever header a
			// guest set (a rejecting plugin could set X-Request-Id to anything).
			// Del first: a guest may have added lines of it, and Set replaces one.
			c.Response.Header.Del(HeaderRequestID)
			c.Header(HeaderRequestID, reqid.From(ctx))
		}
		// Aborted before the order went on: a plugin said no (or failed closed).
		if c.IsAborted() && !c.GetBool("forwarded") {
			g.shed.add(orderOf(ctx, c).ActivityID, layerPlugin, "rejected")
		}
	}
}

// placeOrder forwards the order to the backend: 201 with the order (sync) or 202
// with a ticket (async, bucket).
func (g *Gateway) placeOrder(ctx context.Context, c *app.RequestContext) {
	if c.IsAborted() {
		return
	}
	c.Set("forwarded", true)
	b := orderOf(ctx, c)
	key := idemOf(ctx, c)
	if key == "" {
		// A key of the gateway's own makes the call idempotent: a 504 hands it over
		// for the client's retry.
		key = "gw-" + randhex.String(16)
	} else {
		g.edge.remember(userOf(ctx, c), key)
	}
	// The trace goes on from the client's traceparent, if it sent one, to the backend
	// (in the request) and from there to the worker (in the queued message).
	incoming := map[string]string{}
	for _, h := range []string{"traceparent", "tracestate"} {
		if v := c.GetHeader(h); len(v) > 0 && len(v) < 512 {
			incoming[h] = string(v)
		}
	}
	ctx, span := telemetry.Tracer().Start(telemetry.Extract(ctx, incoming), "gateway.place_order", trace.WithAttributes(
		attribute.Int64("seckill.user", userOf(ctx, c)), attribute.Int64("seckill.activity", b.ActivityID), attribute.Int64("seckill.item", b.ItemID)))
	defer span.End()
	resp, err := g.backend.PlaceOrder(ctx, &rpc.PlaceOrderReq{UserId: userOf(ctx, c), ActivityId: b.ActivityID, ItemId: b.ItemID,
		Quantity: int32(b.Quantity), IdempotencyKey: key, Trace: telemetry.Inject(ctx, nil)})
	if err = rpcerr.FromRPCChange(err); err != nil {
		span.SetStatus(codes.Error, domain.ErrorCode(err))
		code := domain.ErrorCode(err)
		if code == domain.EInternal {
			// The backend failed inside the call (a panic it recovered): it may have
			// taken a unit first, so this is no "nothing was taken" either.
			code = domain.EOutcomeUnknown
		}
		if code == domain.EOutcomeUnknown {
			// The order may exist: the same key gets its outcome (and never a second
			// order), so the answer hands the key over, the gateway's own included.
			c.Header("Idempotency-Key", key)
			err = domain.Errorf(code, "the backend did not complete the call; the order may have been placed: retry with Idempotency-Key %s to learn its outcome", key)
		}
		if code == domain.ESoldOut {
			g.edge.markSoldOut(b.ActivityID, b.ItemID)
		}
		counted := b.ActivityID
		if code == domain.ENotFound {
			counted = 0 // the activity may be none the backend knows
		}
		g.shed.add(counted, layerBackend, code)
		failErr(c, err)
		return
	}
	if resp.Status == string(domain.TicketCreated) {
		c.JSON(http.StatusCreated, api.PlaceOrderResponse{OrderID: resp.OrderId, Status: resp.Status, Ticket: resp.Ticket})
		return
	}
	c.JSON(http.StatusAccepted, api.PlaceOrderResponse{Status: resp.Status, Ticket: resp.Ticket})
}

// isRetry reports whether an order with this key is a retry of one the backend admitted
// (through this gateway or another): it goes on to the backend, which answers with the
// first attempt's outcome. When the ledger cannot say, it goes on too.
func (g *Gateway) isRetry(ctx context.Context, b api.PlaceOrderRequest, user int64, key string) bool {
	if key == "" {
		return false
	}
	if g.edge.retryOf(user, key) {
		return true
	}
	if g.keys == nil {
		return false
	}
	seen, err := g.keys.KeySeen(ctx, b.ActivityID, b.ItemID, user, key)
	if err != nil {
		g.log.WarnContext(ctx, "look up an idempotency key; forwarding the order", "err", err)
		return true
	}
	return seen
}

// pastRefusal reports whether a refusal of an existing item's state or window lets
// this order pass as a retry of an admitted one. Before the window opens no order can
// have been admitted unless the operator moved the start later, so a key is looked up
// only when this gateway forwarded it: a flood of keyed orders before a sale costs no
// Redis call.
func (g *Gateway) pastRefusal(ctx context.Context, reason string, b api.PlaceOrderRequest, user int64, key string) bool {
	switch reason {
	case domain.ENotFound, domain.EEnded:
		return g.keyAdmitted(ctx, b, user, key)
	case domain.ENotStarted:
		return key != "" && g.edge.retryOf(user, key) && g.keyAdmitted(ctx, b, user, key)
	}
	return false
}

// keyAdmitted reports whether the ledger holds an admission of this key: only then
// does a request pass a refusal of the item's state or window, or skip the line. When
// the ledger cannot say, the refusal stands.
func (g *Gateway) keyAdmitted(ctx context.Context, b api.PlaceOrderRequest, user int64, key string) bool {
	if key == "" || g.keys == nil {
		return false
	}
	seen, err := g.keys.KeySeen(ctx, b.ActivityID, b.ItemID, user, key)
	return err == nil && seen
}

// placeHolder reports whether the order carries a queue token that verifies for this
// shopper and item (an HMAC, no call out).
func (g *Gateway) placeHolder(ctx context.Context, c *app.RequestContext, b api.PlaceOrderRequest) bool {
	raw := c.GetHeader(HeaderQueueToken)
	if len(raw) == 0 {
		return false
	}
	t, err := parseQueueToken(g.room.key, string(raw))
	return err == nil && t.UserID == userOf(ctx, c) && t.ActivityID == b.ActivityID && t.ItemID == b.ItemID
}

// addedItem looks up an item that the cached copy of its activity lacks: an operator
// may have added it through another gateway a moment ago, before the announcement
// reached this one. The item lookup keeps a null object per id, so made-up item ids
// reach the backend at most once per id per null TTL. An item found in the activity
// drops the stale copy.
func (g *Gateway) addedItem(ctx context.Context, a *rpc.Activity, itemID int64) *rpc.Item {
	it, _, err := g.edge.item(ctx, itemID)
	if err != nil || it.ActivityId != a.Id {
		return nil
	}
	g.edge.acts.forget(a.Id)
	return it
}
