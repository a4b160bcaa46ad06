// Operators' item routes (/admin/v1/activities/{id}/items): add an item to an
// activity, change one, take it offline and back online.

package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// parseItemID reads the route's positive item id as parseID does.
func parseItemID(c *app.RequestContext) (int64, bool) {
	id, err := canonicalID(c.Param("item"))
	if err != nil || id <= 0 {
		fail(c, domain.ENotFound, fmt.Sprintf("%q is not a known item id", c.Param("item")))
		return 0, false
	}
	return id, true
}

// windowMs reads an item's optional window time: "" is none (0).
func windowMs(field, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	return parseTime(field, s)
}

// itemSpecIn is an item as the backend takes it.
func itemSpecIn(it api.ItemSpec) (*rpc.ItemSpec, error) {
	start, err := windowMs("start", it.Start)
	if err != nil {
		return nil, err
	}
	end, err := windowMs("end", it.End)
	if err != nil {
		return nil, err
	}
	return &rpc.ItemSpec{Name: it.Name, PriceCents: it.PriceCents, Stock: it.Stock, State: it.State, StartMs: start, EndMs: end}, nil
}

// itemChangeIn is a change of item id as the backend takes it.
func itemChangeIn(id int64, it api.ItemChange) (*rpc.ItemChange, error) {
	out := &rpc.ItemChange{ItemId: id, Name: it.Name, PriceCents: it.PriceCents, TotalStock: it.TotalStock, State: it.State}
	for field, s := range map[string]*string{"start": it.Start, "end": it.End} {
		if s == nil {
			continue
		}
		ms, err := windowMs(field, *s)
		if err != nil {
			return nil, err
		}
		if field == "start" {
			out.StartMs = &ms
		} else {
			out.EndMs = &ms
		}
	}
	return out, nil
}

// answerActivity answers an operator's change of activity id with the activity
// as it is now, which this gateway's edge cache drops.
func (g *Gateway) answerActivity(c *app.RequestContext, id int64, status int, a *rpc.Activity, err error) {
	if err = rpcerr.FromRPCChange(err); err != nil {
		failErr(c, err)
		return
	}
	g.edge.forget(id)
	c.JSON(status, activityOut(a))
}

func (g *Gateway) addItem(ctx context.Context, c *app.RequestContext) {
	id, ok := parseID(c)
	if !ok {
		return
	}
	var b api.ItemSpec
	if err := decodeStrict(c.Request.Body(), &b); err != nil {
		fail(c, domain.EBadRequest, err.Error())
		return
	}
	spec, err := itemSpecIn(b)
	if err != nil {
		failErr(c, err)
		return
	}
	a, err := g.backend.AddItem(ctx, &rpc.AddItemReq{ActivityId: id, Item: spec})
	g.answerActivity(c, id, http.StatusCreated, a, err)
}

func (g *Gateway) updateItem(ctx context.Context, c *app.RequestContext) {
	id, ok := parseID(c)
	if !ok {
		return
	}
	item, ok := parseItemID(c)
	if !ok {
		return
	}
	var b api.ItemChange
	if err := decodeStrict(c.Request.Body(), &b); err != nil {
		fail(c, domain.EBadRequest, err.Error())
		return
	}
	if b.ID != 0 && b.ID != item {
		fail(c, domain.EBadRequest, fmt.Sprintf("the body names item %d, the path item %d", b.ID, item))
		return
	}
	ch, err := itemChangeIn(item, b)
	if err != nil {
		failErr(c, err)
		return
	}
	a, err := g.backend.UpdateActivity(ctx, &rpc.UpdateActivityReq{Id: id, Items: []*rpc.ItemChange{ch}})
	g.answerActivity(c, id, http.StatusOK, a, err)
}

// itemState takes an item offline or puts it back online.
func (g *Gateway) itemState(state domain.ItemStatus) app.HandlerFunc {
	return func(ctx context.Context, c *app.RequestContext) {
		id, ok := parseID(c)
		if !ok {
			return
		}
		item, ok := parseItemID(c)
		if !ok {
			return
		}
		a, err := g.backend.SetItemState(ctx, &rpc.ItemStateReq{ActivityId: id, ItemId: item, State: string(state)})
		g.answerActivity(c, id, http.StatusOK, a, err)
	}
}
