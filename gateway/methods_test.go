package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// requestSeries reads the label sets of seckill_gateway_request_seconds from the ops
// listener's /metrics.
func requestSeries(tb testing.TB, f *fixture) []map[string]string {
	tb.Helper()
	r, err := http.Get("http://" + f.gw.OpsAddr().String() + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Body.Close()
	line := regexp.MustCompile(`^seckill_gateway_request_seconds_count\{(.*)\} `)
	label := regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)
	var out []map[string]string
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ls := map[string]string{}
		for _, l := range label.FindAllStringSubmatch(m[1], -1) {
			ls[l[1]] = l[2]
		}
		out = append(out, ls)
	}
	return out
}

var (
	labelMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
	labelRoutes  = []string{"unmatched", "/healthz", "/readyz", "/api/v1/activities", "/api/v1/activities/:id", "/api/v1/items/:id",
		"/api/v1/orders", "/api/v1/orders/tickets/:ticket", "/api/v1/orders/:id", "/api/v1/orders/:id/cancel", "/api/v1/orders/:id/pay",
		"/admin/v1/activities", "/admin/v1/activities/:id", "/admin/v1/activities/:id/publish", "/admin/v1/activities/:id/offline",
		"/admin/v1/activities/:id/stats", "/admin/v1/limits", "/admin/v1/plugins", "/admin/v1/plugins/:name",
		"/admin/v1/plugins/:name/rollback", "/admin/v1/plugins/:name/history"}
)

// checkBounded fails unless every request series has a method and a route of the
// fixed sets.
func checkBounded(tb testing.TB, f *fixture) int {
	tb.Helper()
	series := requestSeries(tb, f)
	for _, s := range series {
		if !slices.Contains(labelMethods, s["method"]) || !slices.Contains(labelRoutes, s["route"]) {
			tb.Fatalf("got series %v, want a method of %v and a route of the gateway's", s, labelMethods)
		}
	}
	return len(series)
}

// rawRequest sends one request line as written (no client library tidies it) and
// returns the answer's status, or 0 if the gateway closed without one.
func rawRequest(tb testing.TB, addr, method, path string, hdr ...string) (int, http.Header) {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n", method, path)
	for i := 0; i+1 < len(hdr); i += 2 {
		req += hdr[i] + ": " + hdr[i+1] + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		return 0, nil
	}
	r, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil
	}
	r.Body.Close()
	return r.StatusCode, r.Header
}

// TestMethodsAndRoutesBounded: made-up methods are answered 405 before anything reads
// the request, and neither they nor made-up paths add series to /metrics; known
// paths asked with the wrong method are 405 with Allow; a trailing slash is 404, not
// a redirect.
func TestMethodsAndRoutesBounded(t *testing.T) {
	f := startGateway(t)
	addr := f.gw.Addr().String()
	before := checkBounded(t, f)
	for i := range 40 {
		method := fmt.Sprintf("M%dX", i)
		path := fmt.Sprintf("/api/v1/activities/%d", i)
		if i%2 == 1 {
			path = fmt.Sprintf("/nowhere/%d", i)
		}
		if got, _ := rawRequest(t, addr, method, path); got != http.StatusMethodNotAllowed {
			t.Fatalf("%s %s: got %d, want 405", method, path, got)
		}
		if got, _ := rawRequest(t, addr, "GET", fmt.Sprintf("/made/up/%d", i)); got != http.StatusNotFound {
			t.Fatalf("GET /made/up/%d: got %d, want 404", i, got)
		}
	}
	// 2 series at most: (unmatched, other, 405) and (unmatched, GET, 404).
	if after := checkBounded(t, f); after > before+2 {
		t.Fatalf("got %d request series after 80 made-up requests, want at most %d", after, before+2)
	}
	for _, tt := range []struct {
		method, path string
		want         int
		allow        string
	}{
		{"DELETE", "/api/v1/activities", 405, "GET, HEAD"},
		{"PUT", "/api/v1/orders/12", 405, "DELETE, GET, HEAD"},
		{"GET", "/api/v1/orders/12/pay", 405, "POST"},
		{"PATCH", "/api/v1/items/3", 405, "GET, HEAD"},
		{"GET", "/api/v1/activities/", 404, ""},
		{"POST", "/api/v1/orders/", 404, ""},
	} {
		got, h := rawRequest(t, addr, tt.method, tt.path)
		if got != tt.want || h.Get("Allow") != tt.allow {
			t.Errorf("%s %s: got %d Allow %q, want %d Allow %q", tt.method, tt.path, got, h.Get("Allow"), tt.want, tt.allow)
		}
	}
}

// TestUnknownAdminPathsAskForTheToken: a stranger learns nothing of the operators'
// paths: whatever the path or method under /admin, no token is 401 and a shopper's
// 403; only the admin token learns 404 or 405.
func TestUnknownAdminPathsAskForTheToken(t *testing.T) {
	f := startGateway(t)
	addr := f.gw.Addr().String()
	for _, tt := range []struct {
		method, path     string
		withAdmin, allow string
		adminStatus      int
	}{
		{"GET", "/admin/v1/nothing", "", "", 404},
		{"GET", "/admin", "", "", 404},
		{"POST", "/admin/v2/activities", "", "", 404},
		{"GET", "/admin/v1/activities/1/secrets", "", "", 404},
		{"DELETE", "/admin/v1/limits", "", "GET, HEAD, PUT", 405},
		{"BREW", "/admin/v1/limits", "", "GET, HEAD, PUT", 405},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			if got, _ := rawRequest(t, addr, tt.method, tt.path); got != http.StatusUnauthorized {
				t.Errorf("no token: got %d, want 401", got)
			}
			if got, _ := rawRequest(t, addr, tt.method, tt.path, "Authorization", "Bearer wrong-token-0123456789"); got != http.StatusUnauthorized {
				t.Errorf("wrong token: got %d, want 401", got)
			}
			if got, _ := rawRequest(t, addr, tt.method, tt.path, "Authorization", "Bearer "+tok(t, 5)); got != http.StatusForbidden {
				t.Errorf("shopper's token: got %d, want 403", got)
			}
			got, h := rawRequest(t, addr, tt.method, tt.path, "Authorization", "Bearer "+admin)
			if got != tt.adminStatus || h.Get("Allow") != tt.allow {
				t.Errorf("admin token: got %d Allow %q, want %d Allow %q", got, h.Get("Allow"), tt.adminStatus, tt.allow)
			}
		})
	}
}

// FuzzMethodRoute: whatever request line a client sends, the gateway answers or
// closes, stays up, and its request series keep to the fixed sets of methods and
// routes.
func FuzzMethodRoute(f *testing.F) {
	for _, s := range [][2]string{
		{"GET", "/api/v1/activities"},
		{"get", "/api/v1/activities"},
		{"FOO", "/api/v1/orders"},
		{"PROPFIND", "/admin/v1/plugins/x"},
		{"G\x00T", "/"},
		{"GET", "/api/v1/../admin/v1/limits"},
		{"GET", "//api//v1//activities"},
		{"GET", "/api/v1/activities/%2e%2e"},
		{"OPTIONS", "*"},
		{"CONNECT", "gw:443"},
		{"GET", "http://other/api/v1/items/1"},
		{strings.Repeat("A", 300), "/x"},
		{"DELETE", "/admin/v1/plugins/a/b/c"},
	} {
		f.Add(s[0], s[1])
	}
	fx := startGateway(f)
	addr := fx.gw.Addr().String()
	f.Fuzz(func(t *testing.T, method, path string) {
		if strings.ContainsAny(method+path, "\r\n") {
			t.Skip() // a second line of headers, not a request line
		}
		rawRequest(t, addr, method, path)
		if got, _ := rawRequest(t, addr, "GET", "/healthz"); got != http.StatusOK {
			t.Fatalf("after %q %q: /healthz got %d, want 200", method, path, got)
		}
		checkBounded(t, fx)
	})
}

// TestHeadOfEveryGet: every GET route takes HEAD (load balancers' probes among
// others): the GET's status and headers, no body, and the connection goes on framed
// (the next request on it is answered as its own).
func TestHeadOfEveryGet(t *testing.T) {
	f := startGateway(t)
	c := dial(t, f)
	r := bufio.NewReader(c)
	for _, tt := range []struct{ path, token string }{
		{"/healthz", ""},
		{"/readyz", ""},
		{"/api/v1/activities/7", ""},
		{"/api/v1/activities/999", ""},
		{"/api/v1/orders", tok(t, 5)},
		{"/admin/v1/limits", admin},
	} {
		get, _ := rawRequest(t, f.gw.Addr().String(), "GET", tt.path, "Authorization", "Bearer "+tt.token)
		req := fmt.Sprintf("HEAD %s HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n\r\n", tt.path, tt.token)
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(r, &http.Request{Method: "HEAD"})
		if err != nil {
			t.Fatalf("HEAD %s: %v", tt.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != get || resp.StatusCode == http.StatusMethodNotAllowed {
			t.Errorf("HEAD %s: got %d, want GET's %d", tt.path, resp.StatusCode, get)
		}
	}
	// No body was sent after any HEAD: the next answer's status line comes first.
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); strings.TrimSpace(line) != "HTTP/1.1 200 OK" {
		t.Fatalf("GET after the HEADs on one connection: got %q %v, want its own 200 status line", line, err)
	}
}
