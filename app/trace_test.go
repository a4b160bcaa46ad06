package app_test

import (
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/config"
)

// TestTraceCrossesEveryHop: one order's spans at the gateway, the backend, the queue
// and the worker share one trace, the worker's span a child of the publish.
func TestTraceCrossesEveryHop(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	cfg := config.Default()
	cfg.Gateway.JWTSecret, cfg.Gateway.AdminToken = jwtSecret, adminToken
	cfg.AnyPorts()
	st := start(t, cfg, app.Options{Embedded: true})
	aid, iid := st.sale(t, "traced", "async", 5)
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	code, out := st.do(t, "POST", "/api/v1/orders", token(t, 1), map[string]any{"activity_id": aid, "item_id": iid, "quantity": 1},
		map[string]string{"traceparent": "00-" + clientTrace + "-00f067aa0ba902b7-01"})
	if code != http.StatusAccepted {
		t.Fatalf("order: got %d %v", code, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var names = map[string]sdktrace.ReadOnlySpan{}
		for _, sp := range rec.Ended() {
			if sp.SpanContext().TraceID().String() == clientTrace {
				names[sp.Name()] = sp
			}
		}
		if w, ok := names["worker.write_order"]; ok {
			for _, want := range []string{"gateway.place_order", "backend.place_order", "redis.deduct", "queue.publish"} {
				if names[want] == nil {
					t.Fatalf("trace has no %s span; got %v", want, keys(names))
				}
			}
			if w.Parent().SpanID() != names["queue.publish"].SpanContext().SpanID() {
				t.Fatal("the worker's span is not a child of the publish")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no worker span in the client's trace; got %v", keys(names))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func keys[M ~map[string]V, V any](m M) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
