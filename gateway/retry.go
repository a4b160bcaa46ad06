package gateway

import (
	"context"

	kcallopt "github.com/cloudwego/kitex/client/callopt"
	"github.com/cloudwego/kitex/pkg/kerrors"

	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
)

// callopt is a kitex per-call option, as the generated client's methods take them.
type callopt = kcallopt.Option

// retryingClient is the backend client with one retry after a timeout for
// the calls that are idempotent. The retry is ours, not kitex's failure
// retry: after a timeout kitex's retryer copies the result object that the
// timed-out attempt may still be decoding into (the race detector caught it
// in the bench under load); here each attempt has a result of its own.
// Placing an order is not retried (see NewBackendClient); creating and
// updating activities and adding items are not idempotent.
type retryingClient struct{ seckill.Client }

// retryOnTimeout calls call, and once more if it timed out while ctx is
// still live. The second attempt's answer is the answer.
func retryOnTimeout[T any](ctx context.Context, call func() (T, error)) (T, error) {
	r, err := call()
	if err != nil && kerrors.IsTimeoutError(err) && ctx.Err() == nil {
		return call()
	}
	return r, err
}

func (c retryingClient) GetTicket(ctx context.Context, req *rpc.TicketReq, o ...callopt) (*rpc.TicketResp, error) {
	return retryOnTimeout(ctx, func() (*rpc.TicketResp, error) { return c.Client.GetTicket(ctx, req, o...) })
}

func (c retryingClient) ListActivities(ctx context.Context, req *rpc.ListActivitiesReq, o ...callopt) (*rpc.ListActivitiesResp, error) {
	return retryOnTimeout(ctx, func() (*rpc.ListActivitiesResp, error) { return c.Client.ListActivities(ctx, req, o...) })
}

func (c retryingClient) GetActivity(ctx context.Context, req *rpc.IDReq, o ...callopt) (*rpc.Activity, error) {
	return retryOnTimeout(ctx, func() (*rpc.Activity, error) { return c.Client.GetActivity(ctx, req, o...) })
}

func (c retryingClient) GetItem(ctx context.Context, req *rpc.IDReq, o ...callopt) (*rpc.Item, error) {
	return retryOnTimeout(ctx, func() (*rpc.Item, error) { return c.Client.GetItem(ctx, req, o...) })
}

func (c retryingClient) ListOrders(ctx context.Context, req *rpc.ListOrdersReq, o ...callopt) (*rpc.ListOrdersResp, error) {
	return retryOnTimeout(ctx, func() (*rpc.ListOrdersResp, error) { return c.Client.ListOrders(ctx, req, o...) })
}

func (c retryingClient) GetOrder(ctx context.Context, req *rpc.OrderReq, o ...callopt) (*rpc.Order, error) {
	return retryOnTimeout(ctx, func() (*rpc.Order, error) { return c.Client.GetOrder(ctx, req, o...) })
}

func (c retryingClient) CancelOrder(ctx context.Context, req *rpc.OrderReq, o ...callopt) (*rpc.Order, error) {
	return retryOnTimeout(ctx, func() (*rpc.Order, error) { return c.Client.CancelOrder(ctx, req, o...) })
}

func (c retryingClient) PayOrder(ctx context.Context, req *rpc.OrderReq, o ...callopt) (*rpc.Order, error) {
	return retryOnTimeout(ctx, func() (*rpc.Order, error) { return c.Client.PayOrder(ctx, req, o...) })
}

func (c retryingClient) DeleteOrder(ctx context.Context, req *rpc.OrderReq, o ...callopt) (*rpc.Order, error) {
	return retryOnTimeout(ctx, func() (*rpc.Order, error) { return c.Client.DeleteOrder(ctx, req, o...) })
}

func (c retryingClient) ListActivityOrders(ctx context.Context, req *rpc.ActivityOrdersReq, o ...callopt) (*rpc.ListOrdersResp, error) {
	return retryOnTimeout(ctx, func() (*rpc.ListOrdersResp, error) { return c.Client.ListActivityOrders(ctx, req, o...) })
}

func (c retryingClient) SetItemState(ctx context.Context, req *rpc.ItemStateReq, o ...callopt) (*rpc.Activity, error) {
	return retryOnTimeout(ctx, func() (*rpc.Activity, error) { return c.Client.SetItemState(ctx, req, o...) })
}

func (c retryingClient) AdminGetActivity(ctx context.Context, req *rpc.IDReq, o ...callopt) (*rpc.Activity, error) {
	return retryOnTimeout(ctx, func() (*rpc.Activity, error) { return c.Client.AdminGetActivity(ctx, req, o...) })
}

func (c retryingClient) PublishActivity(ctx context.Context, req *rpc.IDReq, o ...callopt) (*rpc.Activity, error) {
	return retryOnTimeout(ctx, func() (*rpc.Activity, error) { return c.Client.PublishActivity(ctx, req, o...) })
}

func (c retryingClient) OfflineActivity(ctx context.Context, req *rpc.IDReq, o ...callopt) (*rpc.Activity, error) {
	return retryOnTimeout(ctx, func() (*rpc.Activity, error) { return c.Client.OfflineActivity(ctx, req, o...) })
}

func (c retryingClient) GetActivityStats(ctx context.Context, req *rpc.IDReq, o ...callopt) (*rpc.ActivityStats, error) {
	return retryOnTimeout(ctx, func() (*rpc.ActivityStats, error) { return c.Client.GetActivityStats(ctx, req, o...) })
}

func (c retryingClient) Ping(ctx context.Context, req *rpc.PingReq, o ...callopt) (*rpc.PingResp, error) {
	return retryOnTimeout(ctx, func() (*rpc.PingResp, error) { return c.Client.Ping(ctx, req, o...) })
}
