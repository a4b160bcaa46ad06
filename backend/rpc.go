package backend

import (
	"context"
	"strconv"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/backend/sale"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// handler is the kitex edge of the service: it converts messages and maps errors to
// business status errors, nothing more.
type handler struct {
	*ControlRPC
	svc *sale.Service
}

var _ rpc.Seckill = (*handler)(nil)

func activityOut(a *domain.Activity) *rpc.Activity {
	out := &rpc.Activity{
		Id: a.ID, Name: a.Name, StartMs: a.Start.UnixMilli(), EndMs: a.End.UnixMilli(), State: string(a.State),
		Strategy: string(a.Strategy), PerUserLimit: int32(a.PerUserLimit), BucketCount: int32(a.BucketCount), Version: a.Version,
		WaitingRoom: a.Room.On, AdmissionFactor: a.Room.Factor,
	}
	for _, it := range a.Items {
		out.Items = append(out.Items, itemOut(it, -1))
	}
	return out
}

func itemOut(it domain.Item, remaining int64) *rpc.Item {
	state := it.State
	if state == "" {
		state = domain.ItemOnline
	}
	return &rpc.Item{Id: it.ID, ActivityId: it.ActivityID, Name: it.Name, PriceCents: it.PriceCents, TotalStock: it.TotalStock, Remaining: remaining,
		State: string(state), StartMs: msOrZero(it.Start), EndMs: msOrZero(it.End)}
}

func orderOut(o domain.Order) *rpc.Order {
	return &rpc.Order{Id: o.IDString(), UserId: o.UserID, ActivityId: o.ActivityID, ItemId: o.ItemID, Quantity: int32(o.Quantity),
		AmountCents: o.AmountCents, Status: string(o.Status), CreatedMs: o.CreatedAt.UnixMilli(), Ticket: o.Ticket}
}

// parseOrderID reads an order id as ids are written: digits with no sign or leading
// zero, so one order has one spelling.
func parseOrderID(s string) (int64, error) {
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, domain.Errorf(domain.ENotFound, "order %q not found", s)
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, domain.Errorf(domain.ENotFound, "order %q not found", s)
	}
	return id, nil
}

func (h *handler) PlaceOrder(ctx context.Context, req *rpc.PlaceOrderReq) (*rpc.PlaceOrderResp, error) {
	p, err := h.svc.PlaceOrder(ctx, sale.PlaceOrder{UserID: req.UserId, ActivityID: req.ActivityId, ItemID: req.ItemId,
		Quantity: int(req.Quantity), IdempotencyKey: req.IdempotencyKey, Trace: req.Trace})
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	resp := &rpc.PlaceOrderResp{Status: string(p.Status), Ticket: p.Ticket, Replayed: p.Replayed}
	if p.OrderID > 0 {
		resp.OrderId = strconv.FormatInt(p.OrderID, 10)
	}
	return resp, nil
}

func (h *handler) GetTicket(ctx context.Context, req *rpc.TicketReq) (*rpc.TicketResp, error) {
	t, err := h.svc.WaitTicket(ctx, req.UserId, req.Ticket, time.Duration(req.WaitMs)*time.Millisecond)
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	resp := &rpc.TicketResp{Status: string(t.Status), Reason: t.Reason}
	if t.OrderID > 0 {
		resp.OrderId = strconv.FormatInt(t.OrderID, 10)
	}
	return resp, nil
}

func (h *handler) ListActivities(ctx context.Context, req *rpc.ListActivitiesReq) (*rpc.ListActivitiesResp, error) {
	as, next, err := h.svc.Activities(ctx, domain.ActivityQuery{All: req.IncludeAll, Before: req.Before, Limit: int(req.Limit), State: domain.State(req.State)})
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	resp := &rpc.ListActivitiesResp{Activities: []*rpc.Activity{}, Next: next}
	for _, a := range as {
		resp.Activities = append(resp.Activities, activityOut(a))
	}
	return resp, nil
}

func (h *handler) GetActivity(ctx context.Context, req *rpc.IDReq) (*rpc.Activity, error) {
	a, err := h.svc.Activity(ctx, req.Id)
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	out := activityOut(a)
	for i, it := range a.Items {
		out.Items[i].Remaining = h.svc.Remaining(ctx, a, it.ID)
	}
	return out, nil
}

func (h *handler) GetItem(ctx context.Context, req *rpc.IDReq) (*rpc.Item, error) {
	it, a, err := h.svc.Item(ctx, req.Id)
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	return itemOut(it, h.svc.Remaining(ctx, a, it.ID)), nil
}

func (h *handler) ListOrders(ctx context.Context, req *rpc.ListOrdersReq) (*rpc.ListOrdersResp, error) {
	os, next, err := h.svc.ShopperOrders(ctx, req.UserId, domain.OrderQuery{ActivityID: req.ActivityId, Statuses: statuses(req.Statuses),
		After: req.After, Limit: int(req.Limit)})
	return ordersOut(os, next, err)
}

func (h *handler) orderCall(ctx context.Context, req *rpc.OrderReq, f func(context.Context, int64, int64) (domain.Order, error)) (*rpc.Order, error) {
	id, err := parseOrderID(req.OrderId)
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	o, err := f(ctx, req.UserId, id)
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	return orderOut(o), nil
}

func (h *handler) GetOrder(ctx context.Context, req *rpc.OrderReq) (*rpc.Order, error) {
	return h.orderCall(ctx, req, h.svc.Order)
}

func (h *handler) CancelOrder(ctx context.Context, req *rpc.OrderReq) (*rpc.Order, error) {
	return h.orderCall(ctx, req, h.svc.Cancel)
}

func (h *handler) PayOrder(ctx context.Context, req *rpc.OrderReq) (*rpc.Order, error) {
	return h.orderCall(ctx, req, h.svc.Pay)
}

func (h *handler) CreateActivity(ctx context.Context, req *rpc.CreateActivityReq) (*rpc.Activity, error) {
	a := &domain.Activity{Name: req.Name, Start: time.UnixMilli(req.StartMs).UTC(), End: time.UnixMilli(req.EndMs).UTC(),
		Strategy: domain.Strategy(req.Strategy), PerUserLimit: int(req.PerUserLimit), BucketCount: int(req.BucketCount),
		Room: domain.Room{On: req.GetWaitingRoom(), Factor: domain.DefaultRoomFactor}}
	if req.AdmissionFactor != nil {
		// A given k is checked as given: 0 is refused, not read as the default.
		if k := *req.AdmissionFactor; !(k >= domain.MinRoomFactor && k <= domain.MaxRoomFactor) {
			return nil, rpcerr.ToBiz(domain.Errorf(domain.EBadRequest, "waiting_room.k must be %g to %g", float64(domain.MinRoomFactor), float64(domain.MaxRoomFactor)))
		}
		a.Room.Factor = *req.AdmissionFactor
	}
	for _, it := range req.Items {
		a.Items = append(a.Items, itemIn(it))
	}
	if err := h.svc.CreateActivity(ctx, a); err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	return activityOut(a), nil
}

func (h *handler) UpdateActivity(ctx context.Context, req *rpc.UpdateActivityReq) (*rpc.Activity, error) {
	if req.Strategy != nil {
		return nil, rpcerr.ToBiz(domain.Errorf(domain.EBadRequest, "the strategy is fixed once an activity is created"))
	}
	c := domain.ActivityChange{Name: req.Name, RoomOn: req.WaitingRoom, RoomFactor: req.AdmissionFactor}
	if req.StartMs != nil {
		t := time.UnixMilli(*req.StartMs).UTC()
		c.Start = &t
	}
	if req.EndMs != nil {
		t := time.UnixMilli(*req.EndMs).UTC()
		c.End = &t
	}
	if req.PerUserLimit != nil {
		n := int(*req.PerUserLimit)
		c.PerUserLimit = &n
	}
	if req.BucketCount != nil {
		n := int(*req.BucketCount)
		c.BucketCount = &n
	}
	for _, ic := range req.Items {
		c.Items = append(c.Items, itemChangeIn(ic))
	}
	a, err := h.svc.Update(ctx, req.Id, c)
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	return activityOut(a), nil
}

func (h *handler) AdminGetActivity(ctx context.Context, req *rpc.IDReq) (*rpc.Activity, error) {
	a, err := h.svc.AdminActivity(ctx, req.Id)
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	return activityOut(a), nil
}

func (h *handler) PublishActivity(ctx context.Context, req *rpc.IDReq) (*rpc.Activity, error) {
	a, err := h.svc.Publish(ctx, req.Id)
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	return activityOut(a), nil
}

func (h *handler) OfflineActivity(ctx context.Context, req *rpc.IDReq) (*rpc.Activity, error) {
	a, err := h.svc.Offline(ctx, req.Id)
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	return activityOut(a), nil
}

func (h *handler) GetActivityStats(ctx context.Context, req *rpc.IDReq) (*rpc.ActivityStats, error) {
	st, err := h.svc.Stats(ctx, req.Id)
	if err != nil {
		return nil, rpcerr.ToBiz(err)
	}
	out := &rpc.ActivityStats{ActivityId: req.Id, Shed: st.BackendShed, GatewayShed: st.GatewayShed, Items: []*rpc.ItemStats{}}
	for _, s := range st.Items {
		out.PendingTickets += int64(s.PendingTickets)
		out.Items = append(out.Items, &rpc.ItemStats{ItemId: s.ItemID, TotalStock: s.TotalStock, RedisStock: s.RedisStock,
			MysqlStock: s.MySQLStock, InFlight: s.InFlight, Orders: s.Orders, UnitsSold: s.UnitsSold,
			PendingTickets: int64(s.PendingTickets), RedisLoaded: s.RedisLoaded})
	}
	return out, nil
}

func (h *handler) Ping(_ context.Context, req *rpc.PingReq) (*rpc.PingResp, error) {
	return &rpc.PingResp{Payload: req.Payload}, nil
}
