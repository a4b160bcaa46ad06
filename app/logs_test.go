package app_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/seckill/flashsale/app"
	"github.com/seckill/flashsale/config"
	"github.com/seckill/flashsale/internal/syncbuf"
)

// TestLogsStayJSON: with JSON logs, hertz's and kitex's own records come through
// slog too: every line the system writes, the frameworks' included, is one JSON
// record, and a failed request's record names its request id.
func TestLogsStayJSON(t *testing.T) {
	var buf syncbuf.Buffer
	log := app.NewLogger(config.LogConfig{Level: "debug", Format: "json"}, &buf)
	app.FrameworkLogs(log, "debug")
	t.Cleanup(func() { app.FrameworkLogs(slog.Default(), "warn") })
	cfg := config.Default()
	cfg.Gateway.JWTSecret, cfg.Gateway.AdminToken = jwtSecret, adminToken
	cfg.AnyPorts()
	st := start(t, cfg, app.Options{Embedded: true, Log: log})
	// A read the backend answers, then one that fails because the backend is gone.
	if code, _ := st.do(t, "GET", "/api/v1/activities/1", "", nil, map[string]string{"X-Request-Id": "logs-test-1"}); code != http.StatusNotFound {
		t.Fatalf("got %d, want 404", code)
	}
	st.sys.Backend.Close()
	if code, _ := st.do(t, "GET", "/api/v1/activities/2", "", nil, map[string]string{"X-Request-Id": "logs-test-2"}); code != http.StatusServiceUnavailable {
		t.Fatalf("with the backend stopped: got %d, want 503", code)
	}
	frameworks := map[string]bool{}
	failed := false
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		if f, ok := rec["framework"].(string); ok {
			frameworks[f] = true
		}
		if rec["msg"] == "request failed" && rec["request_id"] == "logs-test-2" {
			failed = true
		}
	}
	if !frameworks["hertz"] || !frameworks["kitex"] {
		t.Fatalf("got records of frameworks %v, want hertz's and kitex's", frameworks)
	}
	if !failed {
		t.Fatalf("no record of the failed request with its request id in:\n%s", buf.String())
	}
}
