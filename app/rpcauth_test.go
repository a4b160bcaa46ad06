package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudwego/kitex/client"
	"github.com/cloudwego/kitex/pkg/kerrors"
	"github.com/cloudwego/kitex/pkg/transmeta"
	"github.com/cloudwego/kitex/transport"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/backend/rpcauth"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
)

// rpcClient is a kitex client of the backend at addr, as any process that reaches
// its port could make one: with the credentials of creds, or none when nil.
func rpcClient(t *testing.T, addr string, creds *rpcauth.Secrets) seckill.Client {
	t.Helper()
	opts := []client.Option{client.WithHostPorts(addr), client.WithTransportProtocol(transport.TTHeader),
		client.WithMetaHandler(transmeta.ClientTTHeaderHandler), client.WithRPCTimeout(5 * time.Second)}
	if creds != nil {
		opts = append(opts, client.WithMiddleware(rpcauth.ClientMiddleware(*creds)))
	}
	c, err := seckill.NewClient("seckill.backend", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantRPCCode fails unless err is a business error of code.
func wantRPCCode(t *testing.T, what string, err error, code rpc.ErrorCode) {
	t.Helper()
	be, ok := kerrors.FromBizStatusError(err)
	if !ok || be.BizStatusCode() != int32(code) {
		t.Fatalf("%s: got %v, want %s", what, err, code)
	}
}

// TestBackendRPCAuthenticated: the backend's kitex port refuses calls without the
// service credential or with a wrong one; the service credential cannot make an
// operator's call; and no call acts on an order without naming its owner (user 0
// is refused, another user is not found), so whoever reaches the port cannot create
// activities or cancel shoppers' orders.
func TestBackendRPCAuthenticated(t *testing.T) {
	cfg, _ := realConfig(t)
	creds := rpcauth.Secrets{Service: "e2e-rpc-service-1679091c5a880faf6f", Operator: "e2e-rpc-operator-8f14e45fceea167a5a"}
	cfg.Backend.RPCSecret, cfg.Backend.RPCOperatorSecret = creds.Service, creds.Operator
	s := start(t, cfg, app.Options{})
	aid, iid := s.sale(t, "rpc auth", "sync", 5)
	code, out := s.do(t, "POST", "/api/v1/orders", token(t, 11), map[string]any{"activity_id": aid, "item_id": iid, "quantity": 1}, nil)
	if code != http.StatusCreated {
		t.Fatalf("order through the gateway: got %d %v", code, out)
	}
	orderID := out["order_id"].(string)
	addr := s.sys.Backend.Addr().String()
	ctx := context.Background()
	create := &rpc.CreateActivityReq{Name: "forged", StartMs: time.Now().UnixMilli(), EndMs: time.Now().Add(time.Hour).UnixMilli(),
		Strategy: "sync", PerUserLimit: 1, BucketCount: 1, Items: []*rpc.ItemSpec{{Name: "x", PriceCents: 1, Stock: 1}}}

	for name, c := range map[string]seckill.Client{
		"no credential":    rpcClient(t, addr, nil),
		"wrong credential": rpcClient(t, addr, &rpcauth.Secrets{Service: "e2e-rpc-wrong-c9f0f895fb98ab9159f5", Operator: "e2e-rpc-wrong-45c48cce2e2d7fbdea1a"}),
	} {
		_, err := c.Ping(ctx, &rpc.PingReq{})
		wantRPCCode(t, name+": Ping", err, rpc.ErrorCode_UNAUTHENTICATED)
		_, err = c.CancelOrder(ctx, &rpc.OrderReq{UserId: 11, OrderId: orderID})
		wantRPCCode(t, name+": CancelOrder", err, rpc.ErrorCode_UNAUTHENTICATED)
		_, err = c.CreateActivity(rpcauth.AsOperator(ctx), create)
		wantRPCCode(t, name+": CreateActivity", err, rpc.ErrorCode_UNAUTHENTICATED)
		if be, _ := kerrors.FromBizStatusError(err); !strings.Contains(be.BizMessage(), "backend.rpc_secret") {
			t.Fatalf("%s: got %q, want the setting named", name, be.BizMessage())
		}
	}

	svc := rpcClient(t, addr, &rpcauth.Secrets{Service: creds.Service}) // a process with the service credential only
	if _, err := svc.Ping(ctx, &rpc.PingReq{}); err != nil {
		t.Fatalf("service credential: Ping: %v", err)
	}
	if _, err := svc.GetActivity(ctx, &rpc.IDReq{Id: aid}); err != nil {
		t.Fatalf("service credential: GetActivity: %v", err)
	}
	for what, err := range map[string]error{
		"CreateActivity":        second(svc.CreateActivity(rpcauth.AsOperator(ctx), create)),
		"PublishActivity":       second(svc.PublishActivity(ctx, &rpc.IDReq{Id: aid})),
		"OfflineActivity":       second(svc.OfflineActivity(ctx, &rpc.IDReq{Id: aid})),
		"ListActivities of all": second(svc.ListActivities(ctx, &rpc.ListActivitiesReq{IncludeAll: true})),
		"PutLimits":             second(svc.PutLimits(ctx, &rpc.PutLimitsReq{Body: `{}`, Who: "x"})),
		"DeletePlugin":          second(svc.DeletePlugin(ctx, &rpc.PluginNameReq{Name: "x", Who: "x"})),
	} {
		wantRPCCode(t, "service credential: "+what, err, rpc.ErrorCode_UNAUTHENTICATED)
	}
	for what, err := range map[string]error{
		"CancelOrder":  second(svc.CancelOrder(ctx, &rpc.OrderReq{UserId: 0, OrderId: orderID})),
		"PayOrder":     second(svc.PayOrder(ctx, &rpc.OrderReq{UserId: 0, OrderId: orderID})),
		"GetOrder":     second(svc.GetOrder(ctx, &rpc.OrderReq{UserId: 0, OrderId: orderID})),
		"ListOrders":   second(svc.ListOrders(ctx, &rpc.ListOrdersReq{UserId: 0})),
		"GetTicket":    second(svc.GetTicket(ctx, &rpc.TicketReq{UserId: 0, Ticket: "1-1-000000000000000000000000"})),
		"PlaceOrder":   second(svc.PlaceOrder(ctx, &rpc.PlaceOrderReq{UserId: 0, ActivityId: aid, ItemId: iid, Quantity: 1})),
		"CancelOrder-": second(svc.CancelOrder(ctx, &rpc.OrderReq{UserId: -11, OrderId: orderID})),
	} {
		wantRPCCode(t, what+" of user 0", err, rpc.ErrorCode_BAD_REQUEST)
	}
	_, err := svc.CancelOrder(ctx, &rpc.OrderReq{UserId: 12, OrderId: orderID})
	wantRPCCode(t, "CancelOrder of another user", err, rpc.ErrorCode_NOT_FOUND)
	if o, err := svc.GetOrder(ctx, &rpc.OrderReq{UserId: 11, OrderId: orderID}); err != nil || o.Status != "created" {
		t.Fatalf("the order after the refused calls: got %+v %v, want it created", o, err)
	}

	op := rpcClient(t, addr, &creds)
	if a, err := op.CreateActivity(rpcauth.AsOperator(ctx), create); err != nil || a.Id <= 0 {
		t.Fatalf("operator credential: CreateActivity: got %+v %v", a, err)
	}
	_, err = op.CreateActivity(ctx, create) // the operator's client, but not for an operator's request
	wantRPCCode(t, "CreateActivity without AsOperator", err, rpc.ErrorCode_UNAUTHENTICATED)
}

func second[T any](_ T, err error) error { return err }
