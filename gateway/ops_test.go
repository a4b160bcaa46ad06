package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestOpsListener: metrics and profiles are served on the ops listener only; the
// public listener answers them as unknown paths.
func TestOpsListener(t *testing.T) {
	f := startGateway(t)
	ops := "http://" + f.gw.OpsAddr().String()
	for _, tt := range []struct {
		url, want string
		status    int
	}{
		{ops + "/metrics", "seckill_gateway_request_seconds", http.StatusOK},
		{ops + "/healthz", `"ok"`, http.StatusOK},
		{ops + "/readyz", `"ready"`, http.StatusOK},
		{ops + "/debug/pprof/cmdline", "", http.StatusOK},
		{ops + "/debug/pprof/goroutine?debug=1", "goroutine profile", http.StatusOK},
		{f.url + "/metrics", `"not_found"`, http.StatusNotFound},
		{f.url + "/debug/pprof/", `"not_found"`, http.StatusNotFound},
		{f.url + "/healthz", `"ok"`, http.StatusOK},
	} {
		r, err := http.Get(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != tt.status || !strings.Contains(string(b), tt.want) {
			t.Errorf("%s: got %d %.80q, want %d with %q", tt.url, r.StatusCode, b, tt.status, tt.want)
		}
	}
}
