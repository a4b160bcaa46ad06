package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/cloudwego/hertz/pkg/common/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/backend/telemetry"
	"github.com/seckill/flashsale/gateway/auth"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/gateway/wasm"
	"github.com/seckill/flashsale/gateway/wasm/hertzhost"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
	"github.com/seckill/flashsale/internal/randhex"
)

// Trusted context headers: set by the gateway for plugins and the backend; the same
// headers from a client are dropped before anything reads them.
const (
	HeaderUser     = "X-Seckill-User"
	HeaderActivity = "X-Seckill-Activity"
	HeaderItem     = "X-Seckill-Item"
	HeaderRealIP   = "X-Real-IP"
)

var trustedHeaders = []string{HeaderUser, HeaderActivity, HeaderItem, HeaderRealIP}

// Gateway handles requests.
type Gateway struct {
	cfg      Config
	backend  seckill.Client
	verifier *auth.Verifier
	admin    *auth.AdminCheck
	limiter  *ratelimit.Limiter
	edge     *edgeCache
	shed     *shedCounter
	metrics  *httpMetrics
	registry *prometheus.Registry
	plugins  *wasm.Manager
	log      *slog.Logger
}

// Limiter is the gateway's rate limiter (operators change it at run time).
func (g *Gateway) Limiter() *ratelimit.Limiter { return g.limiter }

// Register mounts the API of API.md on h.
func (g *Gateway) Register(h *server.Hertz) {
	h.Use(g.observe, g.boundBody, g.stripTrusted)
	h.GET("/healthz", func(_ context.Context, c *app.RequestContext) {
		c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	h.GET("/readyz", g.ready)
	h.GET("/metrics", adaptor.HertzHandler(promhttp.HandlerFor(g.registry, promhttp.HandlerOpts{})))

	pub := h.Group("/api/v1", g.limitIP)
	pub.GET("/activities", g.listActivities)
	pub.GET("/activities/:id", g.getActivity)
	pub.GET("/items/:id", g.getItem)

	shop := h.Group("/api/v1/orders", g.shopper)
	shop.POST("", g.parseOrder, g.limitOrder, g.edgeOrder, g.admit(hertzhost.Middleware(g.plugins)), g.placeOrder)
	shop.GET("", g.listOrders)
	shop.GET("/tickets/:ticket", g.getTicket)
	shop.GET("/:id", g.getOrder)
	shop.POST("/:id/cancel", g.cancelOrder)
	shop.POST("/:id/pay", g.payOrder)

	adm := h.Group("/admin/v1", g.operator, g.readBody)
	adm.POST("/activities", g.createActivity)
	adm.GET("/activities", g.adminListActivities)
	adm.GET("/activities/:id", g.adminGetActivity)
	adm.PUT("/activities/:id", g.updateActivity)
	adm.POST("/activities/:id/publish", g.publish)
	adm.POST("/activities/:id/offline", g.offline)
	adm.GET("/activities/:id/stats", g.stats)
	adm.GET("/limits", g.getLimits)
	adm.PUT("/limits", g.putLimits)
	pp := adaptor.HertzHandler(http.HandlerFunc(pprof.Index))
	adm.GET("/debug/pprof/", pp)
	adm.GET("/debug/pprof/:name", func(ctx context.Context, c *app.RequestContext) {
		switch c.Param("name") {
		case "profile":
			adaptor.HertzHandler(http.HandlerFunc(pprof.Profile))(ctx, c)
		case "trace":
			adaptor.HertzHandler(http.HandlerFunc(pprof.Trace))(ctx, c)
		default:
			adaptor.HertzHandler(pprof.Handler(c.Param("name")))(ctx, c)
		}
	})
	hertzhost.RegisterAdmin(adm, g.plugins)
	h.NoRoute(func(_ context.Context, c *app.RequestContext) { fail(c, domain.ENotFound, "no such path") })
}

// stripTrusted drops trusted-context headers a client sent.
func (g *Gateway) stripTrusted(ctx context.Context, c *app.RequestContext) {
	for _, h := range trustedHeaders {
		c.Request.Header.Del(h)
	}
	c.Request.Header.Set(HeaderRealIP, c.ClientIP())
	c.Next(ctx)
}

func (g *Gateway) ready(ctx context.Context, c *app.RequestContext) {
	if _, err := g.backend.Ping(ctx, &rpc.PingReq{}); err != nil {
		fail(c, domain.EUnavailable, "backend unreachable")
		return
	}
	c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// shopper requires a shopper's token and puts the user id in the trusted header.
func (g *Gateway) shopper(ctx context.Context, c *app.RequestContext) {
	tok, err := auth.Bearer(string(c.GetHeader("Authorization")))
	if err == nil {
		var uid int64
		if uid, err = g.verifier.UserID(tok); err == nil {
			c.Set("user", uid)
			c.Request.Header.Set(HeaderUser, strconv.FormatInt(uid, 10))
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
func (g *Gateway) operator(ctx context.Context, c *app.RequestContext) {
	tok, err := auth.Bearer(string(c.GetHeader("Authorization")))
	if err != nil {
		fail(c, eUnauthorized, "the admin token is required")
		return
	}
	if g.admin.Is(tok) {
		c.Next(ctx)
		return
	}
	if _, err := g.verifier.UserID(tok); err == nil {
		fail(c, domain.EForbidden, "shoppers may not use the admin API")
		return
	}
	fail(c, eUnauthorized, "the admin token is required")
}

func userOf(c *app.RequestContext) int64 { return c.GetInt64("user") }

func (g *Gateway) limitIP(ctx context.Context, c *app.RequestContext) {
	if ok, wait := g.limiter.Allow(ratelimit.Global, ""); !ok {
		g.shed.add(0, layerRateLimit, "global")
		rateLimited(c, "global", wait)
		return
	}
	if ok, wait := g.limiter.Allow(ratelimit.IP, c.ClientIP()); !ok {
		g.shed.add(0, layerRateLimit, "ip")
		rateLimited(c, "per-IP", wait)
		return
	}
	c.Next(ctx)
}

// OrderBody is what a shopper posts.
type OrderBody struct {
	ActivityID int64 `json:"activity_id"`
	ItemID     int64 `json:"item_id"`
	Quantity   int   `json:"quantity"`
}

// decodeStrict decodes exactly one JSON value with no unknown fields.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if dec.More() {
		return errors.New("malformed JSON: data after the object")
	}
	return nil
}

// DecodeOrder parses and validates an order body.
func DecodeOrder(body []byte) (OrderBody, error) {
	var b OrderBody
	if err := decodeStrict(body, &b); err != nil {
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

func (g *Gateway) parseOrder(ctx context.Context, c *app.RequestContext) {
	body := c.Request.Body()
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
	if !validIdemKey(key) {
		g.shed.add(b.ActivityID, layerInput, "bad_request")
		fail(c, domain.EBadRequest, "Idempotency-Key must be at most 128 printable characters")
		return
	}
	c.Set("order", b)
	c.Set("idem", key)
	c.Request.Header.Set(HeaderActivity, strconv.FormatInt(b.ActivityID, 10))
	c.Request.Header.Set(HeaderItem, strconv.FormatInt(b.ItemID, 10))
	c.Next(ctx)
}

func orderOf(c *app.RequestContext) OrderBody {
	v, _ := c.Get("order")
	b, _ := v.(OrderBody)
	return b
}

func (g *Gateway) limitOrder(ctx context.Context, c *app.RequestContext) {
	b := orderOf(c)
	checks := []struct {
		kind ratelimit.Kind
		key  string
		what string
	}{
		{ratelimit.Global, "", "global"},
		{ratelimit.User, strconv.FormatInt(userOf(c), 10), "per-user"},
		{ratelimit.Item, strconv.FormatInt(b.ItemID, 10), "per-item"},
	}
	for _, ch := range checks {
		if ok, wait := g.limiter.Allow(ch.kind, ch.key); !ok {
			g.shed.add(b.ActivityID, layerRateLimit, string(ch.kind))
			rateLimited(c, ch.what, wait)
			return
		}
	}
	c.Next(ctx)
}

// edgeOrder answers from the edge cache: unknown activity or item, outside the
// window, sold out.
func (g *Gateway) edgeOrder(ctx context.Context, c *app.RequestContext) {
	b := orderOf(c)
	a, _, err := g.edge.activity(ctx, b.ActivityID)
	if err != nil {
		if domain.IsCode(err, domain.ENotFound) {
			g.shed.add(b.ActivityID, layerCache, domain.ENotFound)
		}
		failErr(c, err)
		return
	}
	found := false
	for _, it := range a.Items {
		if it.Id == b.ItemID {
			found = true
			break
		}
	}
	reason, msg := "", ""
	now := time.Now().UnixMilli()
	switch {
	case !found:
		reason, msg = domain.ENotFound, fmt.Sprintf("item %d is not in activity %d", b.ItemID, b.ActivityID)
	case now < a.StartMs:
		reason, msg = domain.ENotStarted, fmt.Sprintf("activity %d starts at %s", a.Id, time.UnixMilli(a.StartMs).UTC().Format(time.RFC3339))
	case now >= a.EndMs:
		reason, msg = domain.EEnded, fmt.Sprintf("activity %d has ended", a.Id)
	case g.edge.isSoldOut(b.ActivityID, b.ItemID) && !g.edge.retryOf(userOf(c), c.GetString("idem")):
		reason, msg = domain.ESoldOut, fmt.Sprintf("item %d is sold out", b.ItemID)
	}
	if reason != "" {
		g.shed.add(b.ActivityID, layerCache, reason)
		fail(c, reason, msg)
		return
	}
	c.Next(ctx)
}

func (g *Gateway) admit(h app.HandlerFunc) app.HandlerFunc {
	return func(ctx context.Context, c *app.RequestContext) {
		h(ctx, c)
		// Aborted before the order went on: a plugin said no (or failed closed).
		if c.IsAborted() && !c.GetBool("forwarded") {
			g.shed.add(orderOf(c).ActivityID, layerPlugin, "rejected")
		}
	}
}

func (g *Gateway) placeOrder(ctx context.Context, c *app.RequestContext) {
	if c.IsAborted() {
		return
	}
	c.Set("forwarded", true)
	b := orderOf(c)
	key := c.GetString("idem")
	if key == "" {
		// A key of the gateway's own makes the call idempotent: a 504 hands it over
		// for the client's retry.
		key = "gw-" + randhex.String(16)
	} else {
		g.edge.remember(userOf(c), key)
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
		attribute.Int64("seckill.user", userOf(c)), attribute.Int64("seckill.activity", b.ActivityID), attribute.Int64("seckill.item", b.ItemID)))
	defer span.End()
	resp, err := g.backend.PlaceOrder(ctx, &rpc.PlaceOrderReq{UserId: userOf(c), ActivityId: b.ActivityID, ItemId: b.ItemID,
		Quantity: int32(b.Quantity), IdempotencyKey: key, Trace: telemetry.Inject(ctx, nil)})
	if err = rpcerr.FromRPCChange(err); err != nil {
		span.SetStatus(codes.Error, domain.ErrorCode(err))
		code := domain.ErrorCode(err)
		if code == domain.EOutcomeUnknown {
			// The order may exist: the same key gets its outcome (and never a second
			// order), so the answer hands the key over, the gateway's own included.
			c.Header("Idempotency-Key", key)
			err = domain.Errorf(code, "the backend did not answer in time; the order may have been placed: retry with Idempotency-Key %s to learn its outcome", key)
		}
		if code == domain.ESoldOut {
			g.edge.markSoldOut(b.ActivityID, b.ItemID)
		}
		g.shed.add(b.ActivityID, layerBackend, code)
		failErr(c, err)
		return
	}
	if resp.Status == string(domain.TicketCreated) {
		c.JSON(http.StatusCreated, map[string]any{"order_id": resp.OrderId, "status": resp.Status, "ticket": resp.Ticket})
		return
	}
	c.JSON(http.StatusAccepted, map[string]any{"ticket": resp.Ticket, "status": resp.Status})
}

func (g *Gateway) getTicket(ctx context.Context, c *app.RequestContext) {
	t, err := g.backend.GetTicket(ctx, &rpc.TicketReq{UserId: userOf(c), Ticket: c.Param("ticket")})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	out := map[string]any{"status": t.Status}
	if t.OrderId != "" {
		out["order_id"] = t.OrderId
	}
	if t.Reason != "" {
		out["reason"] = t.Reason
	}
	c.JSON(http.StatusOK, out)
}

// orderJSON is an order as shoppers see it.
type orderJSON struct {
	ID          string `json:"id"`
	Ticket      string `json:"ticket"`
	ActivityID  int64  `json:"activity_id"`
	ItemID      int64  `json:"item_id"`
	Quantity    int32  `json:"quantity"`
	AmountCents int64  `json:"amount_cents"`
	Status      string `json:"status"`
	CreatedAt   string `json:"created_at"`
}

func orderOut(o *rpc.Order) orderJSON {
	return orderJSON{ID: o.Id, Ticket: o.Ticket, ActivityID: o.ActivityId, ItemID: o.ItemId, Quantity: o.Quantity,
		AmountCents: o.AmountCents, Status: o.Status, CreatedAt: time.UnixMilli(o.CreatedMs).UTC().Format(time.RFC3339Nano)}
}

func (g *Gateway) listOrders(ctx context.Context, c *app.RequestContext) {
	resp, err := g.backend.ListOrders(ctx, &rpc.ListOrdersReq{UserId: userOf(c)})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	out := make([]orderJSON, 0, len(resp.Orders))
	for _, o := range resp.Orders {
		out = append(out, orderOut(o))
	}
	c.JSON(http.StatusOK, map[string]any{"orders": out})
}

// orderCall calls the backend on one of the caller's orders; change says the call
// changes the order, so a timeout's outcome is unknown (retrying it is safe: ending or
// paying an order twice is not an error).
func (g *Gateway) orderCall(ctx context.Context, c *app.RequestContext, change bool, call func(context.Context, *rpc.OrderReq, ...callopt) (*rpc.Order, error)) {
	o, err := call(ctx, &rpc.OrderReq{UserId: userOf(c), OrderId: c.Param("id")})
	if change {
		err = rpcerr.FromRPCChange(err)
	} else {
		err = rpcerr.FromRPC(err)
	}
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, orderOut(o))
}

func (g *Gateway) getOrder(ctx context.Context, c *app.RequestContext) {
	g.orderCall(ctx, c, false, g.backend.GetOrder)
}

func (g *Gateway) cancelOrder(ctx context.Context, c *app.RequestContext) {
	g.orderCall(ctx, c, true, g.backend.CancelOrder)
}

func (g *Gateway) payOrder(ctx context.Context, c *app.RequestContext) {
	g.orderCall(ctx, c, true, g.backend.PayOrder)
}

func parseID(c *app.RequestContext) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		fail(c, domain.ENotFound, fmt.Sprintf("%q is not a known id", c.Param("id")))
		return 0, false
	}
	return id, true
}

// activityJSON is an activity as the API shows it.
type activityJSON struct {
	ID           int64      `json:"id"`
	Name         string     `json:"name"`
	Start        string     `json:"start"`
	End          string     `json:"end"`
	State        string     `json:"state"`
	Strategy     string     `json:"strategy"`
	PerUserLimit int32      `json:"per_user_limit"`
	BucketCount  int32      `json:"bucket_count"`
	Version      int64      `json:"version"`
	Items        []itemJSON `json:"items"`
}

type itemJSON struct {
	ID         int64  `json:"id"`
	ActivityID int64  `json:"activity_id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	TotalStock int64  `json:"total_stock"`
	Remaining  *int64 `json:"remaining,omitempty"`
}

func fmtMs(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

func itemOut(it *rpc.Item) itemJSON {
	out := itemJSON{ID: it.Id, ActivityID: it.ActivityId, Name: it.Name, PriceCents: it.PriceCents, TotalStock: it.TotalStock}
	if it.Remaining >= 0 {
		r := it.Remaining
		out.Remaining = &r
	}
	return out
}

func activityOut(a *rpc.Activity) activityJSON {
	out := activityJSON{ID: a.Id, Name: a.Name, Start: fmtMs(a.StartMs), End: fmtMs(a.EndMs), State: a.State, Strategy: a.Strategy,
		PerUserLimit: a.PerUserLimit, BucketCount: a.BucketCount, Version: a.Version, Items: []itemJSON{}}
	for _, it := range a.Items {
		out.Items = append(out.Items, itemOut(it))
	}
	return out
}

func (g *Gateway) listActivities(ctx context.Context, c *app.RequestContext) {
	g.activities(ctx, c, false)
}

func (g *Gateway) adminListActivities(ctx context.Context, c *app.RequestContext) {
	g.activities(ctx, c, true)
}

func (g *Gateway) activities(ctx context.Context, c *app.RequestContext, all bool) {
	resp, err := g.backend.ListActivities(ctx, &rpc.ListActivitiesReq{IncludeAll: all})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	out := make([]activityJSON, 0, len(resp.Activities))
	for _, a := range resp.Activities {
		out = append(out, activityOut(a))
	}
	c.JSON(http.StatusOK, map[string]any{"activities": out})
}

func (g *Gateway) getActivity(ctx context.Context, c *app.RequestContext) {
	id, ok := parseID(c)
	if !ok {
		return
	}
	a, cached, err := g.edge.activity(ctx, id)
	if err != nil {
		if cached {
			g.shed.add(0, layerCache, domain.ENotFound)
		}
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, activityOut(a))
}

func (g *Gateway) getItem(ctx context.Context, c *app.RequestContext) {
	id, ok := parseID(c)
	if !ok {
		return
	}
	it, err := g.backend.GetItem(ctx, &rpc.IDReq{Id: id})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, itemOut(it))
}

// newActivityBody is what an operator posts to create an activity.
type newActivityBody struct {
	Name         string `json:"name"`
	Start        string `json:"start"`
	End          string `json:"end"`
	Strategy     string `json:"strategy"`
	PerUserLimit int32  `json:"per_user_limit"`
	BucketCount  int32  `json:"bucket_count"`
	Items        []struct {
		Name       string `json:"name"`
		PriceCents int64  `json:"price_cents"`
		Stock      int64  `json:"stock"`
	} `json:"items"`
}

func parseTime(field, s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, domain.Errorf(domain.EBadRequest, "%s must be an RFC 3339 time, like 2026-11-25T20:00:00Z", field)
	}
	return t.UnixMilli(), nil
}

func (g *Gateway) createActivity(ctx context.Context, c *app.RequestContext) {
	var b newActivityBody
	if err := decodeStrict(c.Request.Body(), &b); err != nil {
		fail(c, domain.EBadRequest, err.Error())
		return
	}
	start, err := parseTime("start", b.Start)
	if err != nil {
		failErr(c, err)
		return
	}
	end, err := parseTime("end", b.End)
	if err != nil {
		failErr(c, err)
		return
	}
	req := &rpc.CreateActivityReq{Name: b.Name, StartMs: start, EndMs: end, Strategy: b.Strategy, PerUserLimit: b.PerUserLimit, BucketCount: b.BucketCount}
	for _, it := range b.Items {
		req.Items = append(req.Items, &rpc.ItemSpec{Name: it.Name, PriceCents: it.PriceCents, Stock: it.Stock})
	}
	a, err := g.backend.CreateActivity(ctx, req)
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusCreated, activityOut(a))
}

// changeActivityBody is what an operator puts to change an activity.
type changeActivityBody struct {
	Name         *string `json:"name"`
	Start        *string `json:"start"`
	End          *string `json:"end"`
	PerUserLimit *int32  `json:"per_user_limit"`
	Strategy     *string `json:"strategy"`
	BucketCount  *int32  `json:"bucket_count"`
	Items        []struct {
		ID         int64   `json:"id"`
		Name       *string `json:"name"`
		PriceCents *int64  `json:"price_cents"`
		TotalStock *int64  `json:"total_stock"`
	} `json:"items"`
}

func (g *Gateway) updateActivity(ctx context.Context, c *app.RequestContext) {
	id, ok := parseID(c)
	if !ok {
		return
	}
	var b changeActivityBody
	if err := decodeStrict(c.Request.Body(), &b); err != nil {
		fail(c, domain.EBadRequest, err.Error())
		return
	}
	req := &rpc.UpdateActivityReq{Id: id, Name: b.Name, PerUserLimit: b.PerUserLimit, Strategy: b.Strategy, BucketCount: b.BucketCount}
	for field, s := range map[string]*string{"start": b.Start, "end": b.End} {
		if s == nil {
			continue
		}
		ms, err := parseTime(field, *s)
		if err != nil {
			failErr(c, err)
			return
		}
		if field == "start" {
			req.StartMs = &ms
		} else {
			req.EndMs = &ms
		}
	}
	for _, it := range b.Items {
		req.Items = append(req.Items, &rpc.ItemChange{ItemId: it.ID, Name: it.Name, PriceCents: it.PriceCents, TotalStock: it.TotalStock})
	}
	a, err := g.backend.UpdateActivity(ctx, req)
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	g.edge.forget(id)
	c.JSON(http.StatusOK, activityOut(a))
}

func (g *Gateway) adminCall(ctx context.Context, c *app.RequestContext, call func(context.Context, *rpc.IDReq, ...callopt) (*rpc.Activity, error)) {
	id, ok := parseID(c)
	if !ok {
		return
	}
	a, err := call(ctx, &rpc.IDReq{Id: id})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	g.edge.forget(id)
	c.JSON(http.StatusOK, activityOut(a))
}

func (g *Gateway) adminGetActivity(ctx context.Context, c *app.RequestContext) {
	g.adminCall(ctx, c, g.backend.AdminGetActivity)
}

func (g *Gateway) publish(ctx context.Context, c *app.RequestContext) {
	g.adminCall(ctx, c, g.backend.PublishActivity)
}

func (g *Gateway) offline(ctx context.Context, c *app.RequestContext) {
	g.adminCall(ctx, c, g.backend.OfflineActivity)
}

func (g *Gateway) stats(ctx context.Context, c *app.RequestContext) {
	id, ok := parseID(c)
	if !ok {
		return
	}
	st, err := g.backend.GetActivityStats(ctx, &rpc.IDReq{Id: id})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	items := make([]map[string]any, 0, len(st.Items))
	for _, it := range st.Items {
		items = append(items, map[string]any{"item_id": it.ItemId, "total_stock": it.TotalStock, "redis_stock": it.RedisStock,
			"mysql_stock": it.MysqlStock, "in_flight": it.InFlight, "orders": it.Orders, "units_sold": it.UnitsSold,
			"pending_tickets": it.PendingTickets, "redis_loaded": it.RedisLoaded})
	}
	c.JSON(http.StatusOK, map[string]any{"activity_id": id, "items": items, "pending_tickets": st.PendingTickets,
		"backend_shed": st.Shed, "gateway_shed": g.shed.of(id)})
}

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

// httpMetrics counts requests by route and status, and times them.
type httpMetrics struct {
	requests *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "seckill_gateway_request_seconds",
		Help: "HTTP requests by route and status.", Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14)}, []string{"route", "method", "status"})}
	if reg != nil {
		reg.MustRegister(m.requests)
	}
	return m
}

func (g *Gateway) observe(ctx context.Context, c *app.RequestContext) {
	start := time.Now()
	c.Next(ctx)
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	g.metrics.requests.WithLabelValues(route, string(c.Method()), strconv.Itoa(c.Response.StatusCode())).Observe(time.Since(start).Seconds())
}
