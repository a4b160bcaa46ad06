package gateway

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/flashsale/backend/rpcauth"
	"github.com/seckill/flashsale/gateway/ratelimit"
)

// TestLimitsOutOfBoundsRefusedAtStart: configured limits are held to the bounds a
// PUT of the limits is: a gateway does not start with a rate its buckets cannot run.
func TestLimitsOutOfBoundsRefusedAtStart(t *testing.T) {
	for _, l := range []ratelimit.Limits{
		{User: ratelimit.Rule{RPS: 1e308, Burst: 1}},
		{Item: ratelimit.Rule{RPS: 1e-9, Burst: 1}},
		{Global: ratelimit.Rule{RPS: 10, Burst: 1 << 31}},
	} {
		_, err := Open(context.Background(), Config{Listen: "127.0.0.1:0", BackendAddrs: []string{"127.0.0.1:1"},
			JWTSecret: "limits-test-jwt-secret-5d41402abc4b2a76", AdminToken: "limits-test-admin-token-7d793037a0760186",
			RPCSecrets: rpcauth.Secrets{Service: "limits-test-rpc-6512bd43d9caa6e02c", Operator: "limits-test-rpc-op-c20ad4d76fe97759aa"},
			Limits:     l},
			Deps{Registry: prometheus.NewRegistry(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil || !strings.Contains(err.Error(), "gateway.limits") {
			t.Fatalf("limits %+v: got %v, want a refusal naming gateway.limits", l, err)
		}
	}
}
