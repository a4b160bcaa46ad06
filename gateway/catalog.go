// Public reads of the catalog: activities on sale and their items.

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

// fmtMs formats Unix milliseconds as the API's times: RFC 3339 in UTC.
func fmtMs(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

// itemOut is an item as the API shows it; a negative Remaining (unknown) and a
// window the item does not have of its own are left out.
func itemOut(it *rpc.Item) api.Item {
	out := api.Item{ID: it.Id, ActivityID: it.ActivityId, Name: it.Name, PriceCents: it.PriceCents, TotalStock: it.TotalStock,
		State: it.State}
	if out.State == "" {
		out.State = string(domain.ItemOnline)
	}
	if it.Remaining >= 0 {
		r := it.Remaining
		out.Remaining = &r
	}
	if it.StartMs != 0 {
		out.Start = fmtMs(it.StartMs)
	}
	if it.EndMs != 0 {
		out.End = fmtMs(it.EndMs)
	}
	return out
}

// activityOut is an activity as the API shows it, its items always a list.
func activityOut(a *rpc.Activity) api.Activity {
	return api.Activity{ID: a.Id, Name: a.Name, Start: fmtMs(a.StartMs), End: fmtMs(a.EndMs), State: a.State, Strategy: a.Strategy,
		PerUserLimit: a.PerUserLimit, BucketCount: a.BucketCount, Version: a.Version, Items: each(a.Items, itemOut),
		WaitingRoom: api.WaitingRoom{Enabled: a.WaitingRoom, K: a.AdmissionFactor}}
}

// listActivities lists a page of the activities on sale, from the edge cache.
func (g *Gateway) listActivities(ctx context.Context, c *app.RequestContext) {
	q, ok := parseList(c, "after", "limit")
	if !ok {
		return
	}
	p, err := g.edge.activities(ctx, q.after, q.limit)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, api.ActivityList{Activities: each(p.Activities, activityOut), Next: cursor(p.Next)})
}

// adminListActivities lists a page of every activity (in one state, when asked),
// from the backend.
func (g *Gateway) adminListActivities(ctx context.Context, c *app.RequestContext) {
	q, ok := parseList(c, "after", "limit", "state")
	if !ok {
		return
	}
	resp, err := g.backend.ListActivities(ctx, &rpc.ListActivitiesReq{IncludeAll: true, Before: q.after, Limit: int32(q.limit), State: q.state})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, api.ActivityList{Activities: each(resp.Activities, activityOut), Next: cursor(resp.Next)})
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
	it, cached, err := g.edge.item(ctx, id)
	if err != nil {
		if cached {
			g.shed.add(0, layerCache, domain.ENotFound)
		}
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, itemOut(it))
}
