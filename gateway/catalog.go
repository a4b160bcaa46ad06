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

// itemOut is an item as the API shows it; a negative Remaining (unknown) is left out.
func itemOut(it *rpc.Item) api.Item {
	out := api.Item{ID: it.Id, ActivityID: it.ActivityId, Name: it.Name, PriceCents: it.PriceCents, TotalStock: it.TotalStock}
	if it.Remaining >= 0 {
		r := it.Remaining
		out.Remaining = &r
	}
	return out
}

// activityOut is an activity as the API shows it, its items always a list.
func activityOut(a *rpc.Activity) api.Activity {
	return api.Activity{ID: a.Id, Name: a.Name, Start: fmtMs(a.StartMs), End: fmtMs(a.EndMs), State: a.State, Strategy: a.Strategy,
		PerUserLimit: a.PerUserLimit, BucketCount: a.BucketCount, Version: a.Version, Items: each(a.Items, itemOut)}
}

// listActivities lists the activities on sale, from the edge cache.
func (g *Gateway) listActivities(ctx context.Context, c *app.RequestContext) {
	as, err := g.edge.activities(ctx)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, api.ActivityList{Activities: each(as, activityOut)})
}

// adminListActivities lists every activity, from the backend.
func (g *Gateway) adminListActivities(ctx context.Context, c *app.RequestContext) {
	resp, err := g.backend.ListActivities(ctx, &rpc.ListActivitiesReq{IncludeAll: true})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, api.ActivityList{Activities: each(resp.Activities, activityOut)})
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
