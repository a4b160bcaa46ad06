package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/seckill/flashsale/backend/rpcauth"
	"github.com/seckill/flashsale/internal/syncbuf"
)

// TestPanicIsAnAnswer: a handler that panics, even after writing part of an answer,
// gets the client a 500 with the usual error body and its request id, on a
// connection that still serves the next request; the panic is counted, and logged
// (JSON) with the request id and the stack.
func TestPanicIsAnAnswer(t *testing.T) {
	var logs syncbuf.Buffer
	reg := prometheus.NewRegistry()
	m, err := Open(context.Background(), Config{Listen: "127.0.0.1:0", BackendAddrs: []string{"127.0.0.1:1"},
		JWTSecret: "robust-test-jwt-secret-1f0e3dad9990", AdminToken: "robust-test-admin-token-98f13708210",
		RPCSecrets: rpcauth.Secrets{Service: "robust-test-rpc-3c59dc048e8850243b", Operator: "robust-test-rpc-op-b6d767d2f8ed5d21a4"}},
		Deps{Registry: reg, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	m.extraRoutes = func(h *server.Hertz) {
		h.GET("/test/panic", func(_ context.Context, c *app.RequestContext) {
			c.Header("X-Half", "written")
			c.String(http.StatusOK, "half an answer")
			var m map[string]int
			m["boom"]++ // a nil map: the panic
		})
		h.GET("/test/ok", func(_ context.Context, c *app.RequestContext) { c.String(http.StatusOK, "ok") })
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	conn, err := net.DialTimeout("tcp", m.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	rd := bufio.NewReader(conn)
	send := func(path, id string) *http.Response {
		t.Helper()
		req := "GET " + path + " HTTP/1.1\r\nHost: gw\r\n"
		if id != "" {
			req += "X-Request-Id: " + id + "\r\n"
		}
		if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
			t.Fatalf("GET %s: the connection is gone: %v", path, err)
		}
		r, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatalf("GET %s: no answer: %v", path, err)
		}
		return r
	}
	r := send("/test/panic", "client-id-1")
	body, _ := io.ReadAll(r.Body)
	var e struct{ Error, Message string }
	if err := json.Unmarshal(body, &e); err != nil || r.StatusCode != 500 || e.Error != "internal" {
		t.Fatalf("got %d %s, want 500 with the error body", r.StatusCode, body)
	}
	if r.Header.Get("X-Request-Id") != "client-id-1" || r.Header.Get("X-Half") != "" || strings.Contains(string(body), "half") {
		t.Fatalf("got headers %v body %s: want the request id and nothing of the half answer", r.Header, body)
	}
	if r := send("/test/ok", ""); r.StatusCode != 200 || len(r.Header.Get("X-Request-Id")) != 32 {
		t.Fatalf("the next request on the connection: got %d id %q, want 200 with a fresh id", r.StatusCode, r.Header.Get("X-Request-Id"))
	}
	var pm dto.Metric
	if err := m.gw.metrics.panics.Write(&pm); err != nil || pm.GetCounter().GetValue() != 1 {
		n := pm.GetCounter().GetValue()
		t.Fatalf("got %v panics counted, want 1", n)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		if rec["msg"] == "panic serving a request" {
			found = rec["request_id"] == "client-id-1" && strings.Contains(rec["stack"].(string), "robust_internal_test.go")
		}
	}
	if !found {
		t.Fatalf("no panic record with the request id and the stack in %s", logs.String())
	}
}
