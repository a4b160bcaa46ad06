package backend

import (
	"context"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// The kitex edge of items' own life, order deletion and the operators' order lists.

// timeOrZero is msOrZero's inverse (rpc_control.go): 0 is the zero time, an item
// without a window of its own.
func timeOrZero(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func itemIn(it *rpc.ItemSpec) domain.Item {
	return domain.Item{Name: it.Name, PriceCents: it.PriceCents, TotalStock: it.Stock, State: domain.ItemStatus(it.State),
		Start: timeOrZero(it.StartMs), End: timeOrZero(it.EndMs)}
}

func itemChangeIn(ic *rpc.ItemChange) domain.ItemChange {
	c := domain.ItemChange{ItemID: ic.ItemId, Name: ic.Name, PriceCents: ic.PriceCents, TotalStock: ic.TotalStock}
	if ic.State != nil {
		st := domain.ItemStatus(*ic.State)
		c.State = &st
	}
	if ic.StartMs != nil {
		t := timeOrZero(*ic.StartMs)
		c.Start = &t
	}
	if ic.EndMs != nil {
		t := timeOrZero(*ic.EndMs)
		c.End = &t
	}
	return c
}

func statuses(in []string) []domain.OrderStatus {
	out := make([]domain.OrderStatus, len(in))
	for i, s := range in {
		out[i] = domain.OrderStatus(s)
	}
	return out
}

func ordersOut(os []domain.Order, next int64, err error) (*rpc.ListOrdersResp, error) {
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	resp := &rpc.ListOrdersResp{Orders: make([]*rpc.Order, 0, len(os)), Next: next}
	for _, o := range os {
		resp.Orders = append(resp.Orders, orderOut(o))
	}
	return resp, nil
}

func (h *handler) DeleteOrder(ctx context.Context, req *rpc.OrderReq) (*rpc.Order, error) {
	return h.orderCall(ctx, req, h.svc.Delete)
}

func (h *handler) AddItem(ctx context.Context, req *rpc.AddItemReq) (*rpc.Activity, error) {
	if req.Item == nil {
		return nil, rpcerr.ToBiz(domain.Errorf(domain.EBadRequest, "the item is missing"))
	}
	a, err := h.svc.AddItem(ctx, req.ActivityId, itemIn(req.Item))
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	return activityOut(a), nil
}

func (h *handler) SetItemState(ctx context.Context, req *rpc.ItemStateReq) (*rpc.Activity, error) {
	a, err := h.svc.SetItemState(ctx, req.ActivityId, req.ItemId, domain.ItemStatus(req.State))
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	return activityOut(a), nil
}

func (h *handler) ListActivityOrders(ctx context.Context, req *rpc.ActivityOrdersReq) (*rpc.ListOrdersResp, error) {
	os, next, err := h.svc.ActivityOrders(ctx, req.ActivityId, domain.OrderQuery{ItemID: req.ItemId, Statuses: statuses(req.Statuses),
		After: req.After, Limit: int(req.Limit), Oldest: req.OldestFirst})
	return ordersOut(os, next, err)
}
