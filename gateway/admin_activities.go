// Operators' activity routes (/admin/v1/activities): create, read, change,
// publish, take offline, stats.

package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

func (g *Gateway) adminListActivities(ctx context.Context, c *app.RequestContext) {
	g.activities(ctx, c, true)
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
