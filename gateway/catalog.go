// Public reads of the catalog: activities on sale and their items.

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
