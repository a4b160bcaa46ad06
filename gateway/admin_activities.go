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
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// parseTime reads an RFC 3339 time of the body's field as Unix milliseconds.
func parseTime(field, s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, domain.Errorf(domain.EBadRequest, "%s must be an RFC 3339 time, like 2026-11-25T20:00:00Z", field)
	}
	return t.UnixMilli(), nil
}

func (g *Gateway) createActivity(ctx context.Context, c *app.RequestContext) {
	var b api.CreateActivityRequest
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
	if w := b.WaitingRoom; w != nil {
		req.WaitingRoom, req.AdmissionFactor = w.Enabled, w.K
	}
	for _, it := range b.Items {
		spec, err := itemSpecIn(it)
		if err != nil {
			failErr(c, err)
			return
		}
		req.Items = append(req.Items, spec)
	}
	a, err := g.backend.CreateActivity(ctx, req)
	if err = rpcerr.FromRPCChange(err); err != nil { // a late answer: it may exist
		failErr(c, err)
		return
	}
	c.JSON(http.StatusCreated, activityOut(a))
}

func (g *Gateway) updateActivity(ctx context.Context, c *app.RequestContext) {
	id, ok := parseID(c)
	if !ok {
		return
	}
	var b api.UpdateActivityRequest
	if err := decodeStrict(c.Request.Body(), &b); err != nil {
		fail(c, domain.EBadRequest, err.Error())
		return
	}
	req := &rpc.UpdateActivityReq{Id: id, Name: b.Name, PerUserLimit: b.PerUserLimit, Strategy: b.Strategy, BucketCount: b.BucketCount}
	if w := b.WaitingRoom; w != nil {
		req.WaitingRoom, req.AdmissionFactor = w.Enabled, w.K
	}
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
		ch, err := itemChangeIn(it.ID, it)
		if err != nil {
			failErr(c, err)
			return
		}
		req.Items = append(req.Items, ch)
	}
	a, err := g.backend.UpdateActivity(ctx, req)
	if err = rpcerr.FromRPCChange(err); err != nil {
		failErr(c, err)
		return
	}
	g.edge.forget(id)
	c.JSON(http.StatusOK, activityOut(a))
}

// adminCall runs an operator's call on the route's activity and answers it;
// the edge cache forgets the activity, which the call may have changed.
func (g *Gateway) adminCall(ctx context.Context, c *app.RequestContext, change bool, call func(context.Context, *rpc.IDReq, ...callopt) (*rpc.Activity, error)) {
	id, ok := parseID(c)
	if !ok {
		return
	}
	a, err := call(ctx, &rpc.IDReq{Id: id})
	if change {
		err = rpcerr.FromRPCChange(err) // a late answer: it may have been made
	} else {
		err = rpcerr.FromRPC(err)
	}
	if err != nil {
		failErr(c, err)
		return
	}
	g.edge.forget(id)
	c.JSON(http.StatusOK, activityOut(a))
}

func (g *Gateway) adminGetActivity(ctx context.Context, c *app.RequestContext) {
	g.adminCall(ctx, c, false, g.backend.AdminGetActivity)
}

func (g *Gateway) publish(ctx context.Context, c *app.RequestContext) {
	g.adminCall(ctx, c, true, g.backend.PublishActivity)
}

func (g *Gateway) offline(ctx context.Context, c *app.RequestContext) {
	g.adminCall(ctx, c, true, g.backend.OfflineActivity)
}

func (g *Gateway) stats(ctx context.Context, c *app.RequestContext) {
	id, ok := parseID(c)
	if !ok {
		return
	}
	g.shed.flush(ctx) // this gateway's latest counts are in the fleet's sums
	st, err := g.backend.GetActivityStats(ctx, &rpc.IDReq{Id: id})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	gw := st.GatewayShed // the fleet's sums, when the backends keep them (this gateway's are in them)
	if len(gw) == 0 {
		gw = g.shed.of(id)
	}
	be := st.Shed
	if be == nil {
		be = map[string]int64{}
	}
	items := each(st.Items, itemStatsOut)
	if g.room.line != nil {
		a, err := g.backend.AdminGetActivity(ctx, &rpc.IDReq{Id: id})
		if err = rpcerr.FromRPC(err); err != nil {
			failErr(c, err)
			return
		}
		if err := g.roomStats(ctx, activityRoom{id: id, on: a.WaitingRoom, factor: a.AdmissionFactor, buckets: int(a.BucketCount)}, items); err != nil {
			g.log.Warn("read the waiting room's lines", "activity", id, "err", err)
			fail(c, domain.EUnavailable, "the waiting room's lines cannot be read")
			return
		}
	}
	c.JSON(http.StatusOK, api.Stats{ActivityID: id, Items: items, PendingTickets: st.PendingTickets,
		BackendShed: be, GatewayShed: gw})
}

// itemStatsOut is one item of an activity's stats as the API shows it.
func itemStatsOut(it *rpc.ItemStats) api.ItemStats {
	return api.ItemStats{ItemID: it.ItemId, TotalStock: it.TotalStock, RedisStock: it.RedisStock, MySQLStock: it.MysqlStock,
		InFlight: it.InFlight, Orders: it.Orders, UnitsSold: it.UnitsSold, PendingTickets: it.PendingTickets, RedisLoaded: it.RedisLoaded}
}
