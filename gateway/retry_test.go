package gateway_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// slowFirst answers its first GetItem and every PlaceOrder after delay.
type slowFirst struct {
	stubBackend
	delay time.Duration
	items atomic.Int32 // GetItem calls begun
}

func (s *slowFirst) GetItem(ctx context.Context, req *rpc.IDReq) (*rpc.Item, error) {
	if s.items.Add(1) == 1 {
		time.Sleep(s.delay)
	}
	return s.stubBackend.GetItem(ctx, req)
}

func (s *slowFirst) PlaceOrder(ctx context.Context, req *rpc.PlaceOrderReq) (*rpc.PlaceOrderResp, error) {
	time.Sleep(s.delay)
	return s.stubBackend.PlaceOrder(ctx, req)
}

// TestBackendClientRetries: an idempotent call that times out is tried once
// more and its second answer is the answer; placing an order is tried once.
func TestBackendClientRetries(t *testing.T) {
	const timeout = 200 * time.Millisecond
	stub := &slowFirst{stubBackend: stubBackend{calls: map[string]int{}, remaining: 5}, delay: 3 * timeout}
	c, err := gateway.NewBackendClient(gateway.Config{BackendAddrs: []string{serveBackend(t, stub)}, RPCTimeout: timeout, RPCSecrets: rpcSecrets})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) { // the server starts in the background
		if _, err := c.Ping(ctx, &rpc.PingReq{}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("backend not reachable: %v", err)
		}
	}

	item, err := c.GetItem(ctx, &rpc.IDReq{Id: 70})
	if err != nil || item.Id != 70 || item.Remaining != 5 {
		t.Fatalf("GetItem after a timeout: got %+v %v, want item 70 from the retry", item, err)
	}
	if n := stub.items.Load(); n != 2 {
		t.Errorf("GetItem reached the backend %d times, want 2", n)
	}

	if _, err := c.PlaceOrder(ctx, &rpc.PlaceOrderReq{ActivityId: 7, ItemId: 70, UserId: 1, Quantity: 1, IdempotencyKey: "k"}); err == nil {
		t.Error("PlaceOrder past the timeout: got no error, want the timeout")
	}
	time.Sleep(2 * stub.delay) // a retry would have arrived by now
	if n := stub.n("PlaceOrder"); n != 1 {
		t.Errorf("PlaceOrder reached the backend %d times, want 1 (never retried)", n)
	}
}

// TestBackendByDNSName: a client that finds its backend by name reaches it.
func TestBackendByDNSName(t *testing.T) {
	stub := &stubBackend{calls: map[string]int{}}
	c, err := gateway.NewBackendClient(gateway.Config{BackendService: serveBackend(t, stub), BackendRefresh: 100 * time.Millisecond, RPCTimeout: time.Second, RPCSecrets: rpcSecrets})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(context.Background(), &rpc.PingReq{}); err != nil {
		t.Fatalf("ping through the resolver: %v", err)
	}
}
