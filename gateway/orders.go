// A shopper's orders once placed: tickets, reading, cancelling and paying.

package gateway

import (
	"context"
	"net/http"

	"github.com/cloudwego/hertz/pkg/app"

	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

func (g *Gateway) getTicket(ctx context.Context, c *app.RequestContext) {
	t, err := g.backend.GetTicket(ctx, &rpc.TicketReq{UserId: userOf(c), Ticket: c.Param("ticket")})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, api.Ticket{Status: t.Status, OrderID: t.OrderId, Reason: t.Reason})
}

// orderOut is an order as shoppers see it.
func orderOut(o *rpc.Order) api.Order {
	return api.Order{ID: o.Id, Ticket: o.Ticket, ActivityID: o.ActivityId, ItemID: o.ItemId, Quantity: o.Quantity,
		AmountCents: o.AmountCents, Status: o.Status, CreatedAt: fmtMs(o.CreatedMs)}
}

// listOrders answers a page of the caller's orders, newest first, by state and
// activity; deleted ones are never listed.
func (g *Gateway) listOrders(ctx context.Context, c *app.RequestContext) {
	q, ok := parseList(c, "after", "limit", "status", "activity_id")
	if !ok {
		return
	}
	resp, err := g.backend.ListOrders(ctx, &rpc.ListOrdersReq{UserId: userOf(c), After: q.after, Limit: int32(q.limit),
		Statuses: q.statuses, ActivityId: q.activityID})
	if err = rpcerr.FromRPC(err); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, api.OrderList{Orders: each(resp.Orders, orderOut), Next: cursor(resp.Next)})
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

// deleteOrder deletes a cancelled or expired order from the caller's list.
func (g *Gateway) deleteOrder(ctx context.Context, c *app.RequestContext) {
	g.orderCall(ctx, c, true, g.backend.DeleteOrder)
}
