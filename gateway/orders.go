// A shopper's orders once placed: tickets, reading, cancelling and paying.

package gateway

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	kcallopt "github.com/cloudwego/kitex/client/callopt"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// MaxTicketWait bounds a ticket poll's ?wait=.
const MaxTicketWait = 10 * time.Second

// The backend waits on a ticket for the gateway (wait_ms), up to maxHeldWaits at once.
// A backend that answers a pending ticket before the wait is over (an older one, or
// asked not to wait) is asked again after ticketPollFirst, doubling up to
// ticketPollMost.
const (
	ticketPollFirst = 20 * time.Millisecond
	ticketPollMost  = 250 * time.Millisecond
	// maxWaitsPerUser bounds one shopper's waits at once; past it a poll does not
	// wait (it is still one request of the shopper's read bucket).
	maxWaitsPerUser = 2
)

// parseWait reads ?wait= of a ticket poll: "" none, a Go duration ("2s", "500ms") or
// whole seconds ("5"), at most MaxTicketWait.
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseUint(s, 10, 8)
		if nerr != nil {
			return 0, domain.Errorf(domain.EBadRequest, "wait must be a duration of at most %s, like 5s or 500ms", MaxTicketWait)
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > MaxTicketWait {
		return 0, domain.Errorf(domain.EBadRequest, "wait must be 0 to %s, not %s", MaxTicketWait, s)
	}
	return d, nil
}

// waitQuery reads the query string of a route whose one parameter is ?wait=
// (parseWait): any other, or wait given twice, is bad_request.
func waitQuery(c *app.RequestContext) (time.Duration, error) {
	args := c.QueryArgs()
	if args.Len() == 0 {
		return 0, nil
	}
	var err error
	n := 0
	args.VisitAll(func(k, _ []byte) {
		switch {
		case err != nil:
		case string(k) != "wait":
			err = domain.Errorf(domain.EBadRequest, "unknown query parameter %q; this route takes wait", k)
		case n > 0:
			err = domain.Errorf(domain.EBadRequest, "query parameter \"wait\" is given twice")
		}
		n++
	})
	if err != nil {
		return 0, err
	}
	return parseWait(string(args.Peek("wait")))
}

// getTicket answers a ticket's state. With ?wait=d, a pending ticket is asked again
// until it ends or d has passed, so a client waits in one request instead of polling.
// An ended ticket's result is answered from the edge (tickets.go) once its owner
// has been answered it.
func (g *Gateway) getTicket(ctx context.Context, c *app.RequestContext) {
	wait, err := waitQuery(c)
	if err != nil {
		failErr(c, err)
		return
	}
	user := userOf(ctx, c)
	tk := c.Param("ticket")
	if t, ok := g.tickets.get(user, tk); ok {
		c.JSON(http.StatusOK, t)
		return
	}
	if wait > 0 {
		if g.waits.take(user) {
			defer g.waits.give(user)
			// A shopper who hangs up is let go within hangUpCheck: the call held at
			// the backend ends, and the shopper's share of waits is free again.
			var stop context.CancelFunc
			ctx, stop = untilHangUp(ctx, connAlive(c))
			defer stop()
		} else {
			wait = 0
		}
	}
	deadline := time.Now().Add(wait)
	req := &rpc.TicketReq{UserId: user, Ticket: tk}
	for pause := ticketPollFirst; ; pause = min(2*pause, ticketPollMost) {
		// The backend waits (one call for the whole wait); one that answers a pending
		// ticket early, not knowing wait_ms, is asked again after a pause.
		var opts []callopt
		req.WaitMs = 0
		if left := time.Until(deadline); left > 0 && g.waits.hold() {
			req.WaitMs = left.Milliseconds()
			opts = append(opts, kcallopt.WithRPCTimeout(left+g.cfg.RPCTimeout))
		}
		t, err := g.backend.GetTicket(ctx, req, opts...)
		if req.WaitMs > 0 {
			g.waits.unhold()
		}
		if err != nil && ctx.Err() != nil {
			return // the shopper hung up: nobody to answer, nothing failed
		}
		if err = rpcerr.FromRPC(err); err != nil {
			failErr(c, err)
			return
		}
		left := time.Until(deadline)
		if t.Status != string(domain.TicketPending) || left <= 0 {
			out := api.Ticket{Status: t.Status, OrderID: t.OrderId, Reason: t.Reason}
			g.tickets.put(user, tk, out)
			c.JSON(http.StatusOK, out)
			return
		}
		timer := time.NewTimer(min(pause, left))
		select {
		case <-ctx.Done():
			timer.Stop()
			c.JSON(http.StatusOK, api.Ticket{Status: t.Status, OrderID: t.OrderId, Reason: t.Reason})
			return
		case <-timer.C:
		}
	}
}

// untilHangUp is ctx, ended when alive says the client has hung up (looked at every
// hangUpCheck: hertz does not end a request's context then) or when stop is called.
func untilHangUp(ctx context.Context, alive func() bool) (_ context.Context, stop context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		check := time.NewTicker(hangUpCheck)
		defer check.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-check.C:
				if !alive() {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// waiters counts each shopper's ticket waits at once, and the waits the backend holds
// for this gateway.
type waiters struct {
	mu sync.Mutex
	n  map[int64]int
	// held counts the calls the backend holds open (one kitex connection each), up
	// to maxHeldWaits; past it a wait asks the backend without waiting, as often as
	// an older backend is asked, so many waiters never mean as many connections.
	held atomic.Int32
}

// maxHeldWaits bounds the waits the backend holds for a gateway at once: below the
// client's idle connections per backend (256), so the held calls and the short
// ones reuse pooled connections.
const maxHeldWaits = 128

// hold reserves a wait held at the backend; false when maxHeldWaits are held.
func (w *waiters) hold() bool {
	if w.held.Add(1) > maxHeldWaits {
		w.held.Add(-1)
		return false
	}
	return true
}

func (w *waiters) unhold() { w.held.Add(-1) }

// take reserves a wait for user; false when the user has maxWaitsPerUser already.
func (w *waiters) take(user int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n[user] >= maxWaitsPerUser {
		return false
	}
	if w.n == nil {
		w.n = map[int64]int{}
	}
	w.n[user]++
	return true
}

func (w *waiters) give(user int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n[user]--; w.n[user] <= 0 {
		delete(w.n, user)
	}
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
	resp, err := g.backend.ListOrders(ctx, &rpc.ListOrdersReq{UserId: userOf(ctx, c), After: q.after, Limit: int32(q.limit),
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
	o, err := call(ctx, &rpc.OrderReq{UserId: userOf(ctx, c), OrderId: c.Param("id")})
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
