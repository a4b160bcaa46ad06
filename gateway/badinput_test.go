package gateway_test

// Bad input at the HTTP edge: bodies over the limits, clients that send slowly
// or not at all, floods of connections. Spoofed trusted headers, shopper tokens
// on /admin and other people's tickets are tested elsewhere (gateway_test.go and
// the backend).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/seckill/flashsale/gateway"
)

// readTimeout is the gateway's default HTTP read timeout (Config.ReadTimeout):
// the bound on reading one request's headers and body, and on a new
// connection's wait for its first request.
const readTimeout = 10 * time.Second

func (f *fixture) addr() string { return strings.TrimPrefix(f.url, "http://") }

// orderHead is the start of a raw POST /api/v1/orders announcing n body bytes.
func orderHead(token string, n int) string {
	return fmt.Sprintf("POST /api/v1/orders HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", token, n)
}

// statusLine reads the first line of the answer on c, or returns the error
// that ended the connection.
func statusLine(c net.Conn, within time.Duration) (string, error) {
	if err := c.SetReadDeadline(time.Now().Add(within)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

type rawAnswer struct {
	status int
	code   string // the error code of the API's error shape
}

// answerOn reads one HTTP answer on c.
func answerOn(c net.Conn, within time.Duration) (rawAnswer, error) {
	if err := c.SetReadDeadline(time.Now().Add(within)); err != nil {
		return rawAnswer{}, err
	}
	r, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return rawAnswer{}, err
	}
	defer r.Body.Close()
	var e struct{ Error string }
	if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
		return rawAnswer{status: r.StatusCode}, fmt.Errorf("body not in the API's error shape: %w", err)
	}
	return rawAnswer{status: r.StatusCode, code: e.Error}, nil
}

func dial(tb testing.TB, f *fixture) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", f.addr())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// mustServe checks the gateway still takes a normal order.
func mustServe(tb testing.TB, f *fixture, when string) {
	tb.Helper()
	if r := f.do(tb, "POST", "/api/v1/orders", tok(tb, 5), order); r.status != http.StatusAccepted {
		tb.Fatalf("%s: a normal order got %d %v, want 202", when, r.status, r.body)
	}
}

// padded is the test order padded with spaces to exactly n bytes.
func padded(n int) string { return order + strings.Repeat(" ", n-len(order)) }

// TestOversizedBodies: a shopper's body over the limit (4 KiB by default) is
// 413 too_large in the API's shape, on its Content-Length alone and before
// identity is checked, so a stranger cannot make the gateway buffer the 24 MiB
// a plugin upload may take; operators' plugin uploads still take megabytes;
// the gateway keeps serving.
func TestOversizedBodies(t *testing.T) {
	f := startGateway(t)
	const limit = 4 << 10 // Config.MaxBodyBytes default
	tests := []struct {
		name       string
		token      string
		size       int
		wantStatus int
		wantCode   string
	}{
		{"at the limit", tok(t, 5), limit, 202, ""},
		{"one byte over", tok(t, 5), limit + 1, 413, "too_large"},
		{"1 MiB", tok(t, 5), 1 << 20, 413, "too_large"},
		{"20 MiB", tok(t, 5), 20 << 20, 413, "too_large"},
		{"20 MiB without a token", "", 20 << 20, 413, "too_large"},
		{"1 MiB with an operator's token", admin, 1 << 20, 413, "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(t, "POST", "/api/v1/orders", tt.token, padded(tt.size))
			if code, _ := r.body["error"].(string); r.status != tt.wantStatus || code != tt.wantCode {
				t.Fatalf("got %d %v, want %d %q", r.status, r.body, tt.wantStatus, tt.wantCode)
			}
		})
	}

	// Operators' routes: a plugin upload of megabytes is taken (after the
	// token), over its own limit it is refused; other admin bodies have a
	// limit of their own.
	t.Run("plugin upload", func(t *testing.T) {
		// 3.4 MB of Wasm, 4.5 MB of JSON. Fail open with a generous deadline:
		// the orders after it must pass under -race on a busy machine.
		f.load(t, []pluginSpec{{name: "big", wasmPath: "../plugins/examples/blocklist/blocklist.wasm", order: 1,
			config: `{"users":["999"]}`, failPolicy: "open", timeoutMS: 2000}})
		c := dial(t, f)
		head := fmt.Sprintf("PUT /admin/v1/plugins/big HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", admin, gateway.MaxPluginBody+1)
		if _, err := io.WriteString(c, head+`{"wasm_base64":"`+strings.Repeat("A", 64<<10)); err != nil {
			t.Fatal(err)
		}
		if a, err := answerOn(c, 3*readTimeout); err != nil || a.status != 413 || a.code != "too_large" {
			t.Fatalf("upload over the limit: got %+v %v, want 413 too_large", a, err)
		}
		r := f.do(t, "PUT", "/admin/v1/plugins/big", "", `{"wasm_base64":"`+strings.Repeat("A", 2<<20)+`"}`)
		if r.status != 401 {
			t.Fatalf("upload without a token: got %d %v, want 401", r.status, r.body)
		}
		r = f.do(t, "POST", "/admin/v1/activities", admin, `{"name":"`+strings.Repeat("a", 2<<20)+`"}`)
		if code, _ := r.body["error"].(string); r.status != 413 || code != "too_large" {
			t.Fatalf("2 MiB activity: got %d %v, want 413 too_large", r.status, r.body)
		}
	})

	// A client that announces more than any route takes and sends the start
	// of it: refused without the rest being read.
	t.Run("over every limit", func(t *testing.T) {
		c := dial(t, f)
		if _, err := io.WriteString(c, orderHead("", 1<<30)+strings.Repeat(" ", 64<<10)); err != nil {
			t.Fatal(err)
		}
		r, err := answerOn(c, 3*readTimeout)
		if err != nil || r.status != 413 || r.code != "too_large" {
			t.Fatalf("got %+v %v, want 413 too_large", r, err)
		}
	})
	// Chunked, so no Content-Length: refused once the chunks pass the limit.
	t.Run("chunked over the limit", func(t *testing.T) {
		c := dial(t, f)
		req := strings.Replace(orderHead(tok(t, 5), 0), "Content-Length: 0", "Transfer-Encoding: chunked", 1)
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		chunk := fmt.Sprintf("%x\r\n%s\r\n", 1<<20, bytes.Repeat([]byte{' '}, 1<<20))
		var writeErr error
		for range gateway.MaxPluginBody>>20 + 2 {
			if _, writeErr = io.WriteString(c, chunk); writeErr != nil {
				break // the gateway closed the connection: refused
			}
		}
		r, err := answerOn(c, 3*readTimeout)
		if writeErr == nil && (err != nil || r.status != 413) {
			t.Fatalf("got %+v %v after sending it all, want 413", r, err)
		}
	})
	// A Content-Length the client never fills.
	t.Run("body shorter than announced", func(t *testing.T) {
		c := dial(t, f)
		if _, err := io.WriteString(c, orderHead(tok(t, 5), 20<<20)+order); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		line, err := statusLine(c, 2*readTimeout)
		if err == nil && strings.Contains(line, " 2") {
			t.Fatalf("got %q, want no success", line)
		}
	})
	mustServe(t, f, "after the oversized bodies")
}

// TestBodiesPastTheReadAhead: with a shopper body limit over hertz's 8 KiB
// read-ahead, bodies between the two are read whole (the read-ahead alone cut
// them to 8 KiB: "the body ends too soon"), for shoppers and operators alike,
// and the request after them on the connection is answered as its own.
func TestBodiesPastTheReadAhead(t *testing.T) {
	f := startGateway(t, func(c *gateway.Config) { c.MaxBodyBytes = 16 << 10 })
	// The padding goes first, so a body cut short loses its JSON.
	leading := func(n int, body string) string { return strings.Repeat(" ", n-len(body)) + body }
	for _, n := range []int{8 << 10, 8<<10 + 1, 10_000, 16 << 10} {
		if r := f.do(t, "POST", "/api/v1/orders", tok(t, 5), leading(n, order)); r.status != 202 {
			t.Fatalf("an order of %d bytes: got %d %v, want 202", n, r.status, r.body)
		}
		// An activity without a window: refused for what it says, once read whole.
		body := leading(n, `{"name":"`+strings.Repeat("a", 100)+`"}`)
		r := f.do(t, "POST", "/admin/v1/activities", admin, body)
		if msg, _ := r.body["message"].(string); r.status != 400 || !strings.Contains(msg, "start") {
			t.Fatalf("an activity of %d bytes without a start: got %d %v, want 400 about its start (the body read whole)", n, r.status, r.body)
		}
	}
	// Two orders of 10,000 bytes in one write: each answered as itself.
	c := dial(t, f)
	req := orderHead(tok(t, 5), 10_000) + leading(10_000, order)
	if _, err := io.WriteString(c, req+req); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(c)
	for i := range 2 {
		c.SetReadDeadline(time.Now().Add(3 * readTimeout))
		r, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i+1, err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if r.StatusCode != 202 {
			t.Fatalf("pipelined order %d: got %d, want 202", i+1, r.StatusCode)
		}
	}
}

// TestMultipartNotReadAhead: a multipart body is refused on its length like any
// other, before it is read: hertz parsed multipart forms whole (to temporary
// files) before any handler, so a stranger could make the gateway take hundreds
// of megabytes to disk before its 413.
func TestMultipartNotReadAhead(t *testing.T) {
	f := startGateway(t)
	c := dial(t, f)
	head := fmt.Sprintf("POST /api/v1/orders HTTP/1.1\r\nHost: gateway\r\n"+
		"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: %d\r\n\r\n", 100<<20)
	part := "--xyz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f\"\r\n\r\n" + strings.Repeat("A", 64<<10)
	if _, err := io.WriteString(c, head+part); err != nil {
		t.Fatal(err)
	}
	if a, err := answerOn(c, 3*readTimeout); err != nil || a.status != 413 || a.code != "too_large" {
		t.Fatalf("a 100 MiB multipart body after 64 KiB of it: got %+v %v, want 413 too_large at once", a, err)
	}
	mustServe(t, f, "after the multipart body")
}

// TestAmbiguousFraming: a request whose headers frame its body two ways (two
// Content-Lengths that differ, Content-Length with Transfer-Encoding, a transfer
// coding other than chunked) is 400 and its connection closed, so what a proxy in
// front counted as part of the body is never read as a request of its own; one
// framed once, or with the same Content-Length repeated, is served.
func TestAmbiguousFraming(t *testing.T) {
	f := startGateway(t)
	token := tok(t, 5)
	head := "POST /api/v1/orders HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " + token + "\r\nContent-Type: application/json\r\n"
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(order), order)
	smuggled := "GET /api/v1/activities/7 HTTP/1.1\r\nHost: gateway\r\n\r\n"
	tests := []struct {
		name, req  string
		wantStatus int
	}{
		{"two lengths", head + fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n\r\n", len(order)+len(smuggled), len(order)) + order + smuggled, 400},
		{"length and chunked", head + fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(chunked)) + chunked + smuggled, 400},
		{"gzip, chunked", head + "Transfer-Encoding: gzip, chunked\r\n\r\n" + chunked, 400},
		{"an unknown method", strings.Replace(head, "POST", "FOO", 1) + fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(chunked)) + chunked + smuggled, 400},
		{"the same length twice", head + fmt.Sprintf("Content-Length: %d\r\ncontent-length: %d\r\n\r\n", len(order), len(order)) + order, 202},
		{"chunked", head + "Transfer-Encoding: chunked\r\n\r\n" + chunked, 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, f)
			if _, err := io.WriteString(c, tt.req); err != nil {
				t.Fatal(err)
			}
			rd := bufio.NewReader(c)
			c.SetReadDeadline(time.Now().Add(3 * readTimeout))
			r, err := http.ReadResponse(rd, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode != tt.wantStatus {
				t.Fatalf("got %d, want %d", r.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != 400 {
				return
			}
			c.SetReadDeadline(time.Now().Add(readTimeout))
			if r, err := http.ReadResponse(rd, nil); err == nil {
				t.Fatalf("a second answer on the connection (%d): the rest was read as a request", r.StatusCode)
			}
		})
	}
	mustServe(t, f, "after the ambiguous requests")
}

// TestSlowClients: a client that sends its headers and then its body slower
// than the read timeout allows is cut off, while other clients are served.
// The timeout bounds the whole request, not each read: a trickle of a byte
// every two seconds is cut off too.
func TestSlowClients(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the gateway's 10s read timeout")
	}
	f := startGateway(t)
	token := tok(t, 5)
	tests := []struct {
		name string
		send func(c net.Conn) // sends part of a request, slowly
	}{
		{"headers then a stall", func(c net.Conn) {
			io.WriteString(c, orderHead(token, len(order))+order[:10]) //nolint:errcheck // a failed write shows in the answer
		}},
		{"headers then a byte every 2s", func(c net.Conn) {
			io.WriteString(c, orderHead(token, len(order))) //nolint:errcheck
			go func() {
				for i := range len(order) {
					if _, err := c.Write([]byte{order[i]}); err != nil {
						return // cut off
					}
					time.Sleep(2 * time.Second)
				}
			}()
		}},
		{"half the headers", func(c net.Conn) {
			io.WriteString(c, "POST /api/v1/orders HTTP/1.1\r\nHost: gateway\r\n") //nolint:errcheck
		}},
	}
	var wg sync.WaitGroup
	for _, tt := range tests {
		c := dial(t, f)
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			tt.send(c)
			// Cut off: an error answer or a closed connection, never a
			// success, and not much after the read timeout (a generous
			// bound: this checks there is a bound, not how fast it is).
			line, err := statusLine(c, 3*readTimeout)
			elapsed := time.Since(start)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("%s: still open after %v, want it cut off after about %v", tt.name, elapsed, readTimeout)
				return
			}
			if strings.Contains(line, " 2") {
				t.Errorf("%s: got %q, want no success", tt.name, line)
			}
			t.Logf("%s: cut off after %v with %q %v", tt.name, elapsed.Round(time.Millisecond), line, err)
		}()
	}
	// Meanwhile the gateway serves others, many times over.
	for i := range 20 {
		mustServe(t, f, fmt.Sprintf("while slow clients hang (%d)", i))
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	mustServe(t, f, "after the slow clients")
}

// TestConnectionFlood: 2000 connections that never send a byte do not hold a
// goroutine each, and the gateway answers a normal request while they are
// open; closing them gives everything back. 500 connections that send half a
// request's headers do hold one each, until the read timeout frees them.
func TestConnectionFlood(t *testing.T) {
	// One address opens them all: its own cap is off, so the flood reaches the gateway
	// (TestConnectionCapPerAddress has that cap).
	f := startGateway(t, func(c *gateway.Config) { c.MaxConnectionsPerIP = -1 })
	mustServe(t, f, "before the flood")
	base := settledGoroutines(t, 0, 5*time.Second)

	const idle = 2000
	conns := make([]net.Conn, 0, idle)
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
		conns = conns[:0]
	}
	defer closeAll()
	for range idle {
		c, err := net.Dial("tcp", f.addr())
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	mustServe(t, f, fmt.Sprintf("with %d idle connections open", idle))
	during := runtime.NumGoroutine()
	if during-base > idle/10 {
		t.Errorf("got %d goroutines with %d idle connections open, %d before: want no goroutine per connection", during, idle, base)
	}
	closeAll()
	after := settledGoroutines(t, base+20, 10*time.Second)
	t.Logf("goroutines: %d before, %d with %d idle connections, %d after closing them", base, during, idle, after)

	if testing.Short() {
		return
	}
	// Half a request's headers: hertz reads them on a goroutine of its own,
	// held until the read timeout.
	const partial = 500
	for range partial {
		c, err := net.Dial("tcp", f.addr())
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "POST /api/v1/orders HTTP/1.1\r\nHost: gateway\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	mustServe(t, f, fmt.Sprintf("with %d half-sent requests", partial))
	held := runtime.NumGoroutine()
	freed := settledGoroutines(t, base+20, 3*readTimeout)
	t.Logf("goroutines: %d with %d half-sent requests (held until the read timeout), %d after it", held, partial, freed)
	mustServe(t, f, "after the half-sent requests")
}

// settledGoroutines waits until the goroutine count is at most want (want 0:
// until it stops changing) and returns it; it fails the test if that does not
// happen within d.
func settledGoroutines(tb testing.TB, want int, d time.Duration) int {
	tb.Helper()
	deadline := time.Now().Add(d)
	last := runtime.NumGoroutine()
	for {
		time.Sleep(100 * time.Millisecond)
		n := runtime.NumGoroutine()
		if want > 0 && n <= want || want == 0 && n == last {
			return n
		}
		if time.Now().After(deadline) {
			if want > 0 {
				tb.Errorf("got %d goroutines after %v, want at most %d", n, d, want)
			}
			return n
		}
		last = n
	}
}

// TestSilentConnection: a connection that never sends a byte is closed once
// the read timeout has passed (hertz's own timeouts start with a request's
// first byte, so it was held forever), while a connection that has been
// served stays open between requests (the idle timeout is longer).
func TestSilentConnection(t *testing.T) {
	const timeout = 500 * time.Millisecond
	f := startGateway(t, func(c *gateway.Config) { c.ReadTimeout = timeout })

	silent := dial(t, f)
	served := dial(t, f)
	if _, err := io.WriteString(served, orderHead(tok(t, 5), len(order))+order); err != nil {
		t.Fatal(err)
	}
	if r, err := answerOn(served, 10*time.Second); err != nil || r.status != http.StatusAccepted {
		t.Fatalf("first order on the kept connection: got %+v %v, want 202", r, err)
	}

	// Closed by the gateway: the read ends with EOF or a reset, not at this
	// deadline (generous: this checks that it closes, not when).
	if err := silent.SetReadDeadline(time.Now().Add(60 * timeout)); err != nil {
		t.Fatal(err)
	}
	n, err := silent.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("silent connection still open after %v, want it closed after the read timeout of %v", 60*timeout, timeout)
	case err == nil:
		t.Fatalf("silent connection: got %d bytes, want it closed", n)
	}

	// The served connection outlived the read timeout and still serves.
	if _, err := io.WriteString(served, orderHead(tok(t, 5), len(order))+order); err != nil {
		t.Fatalf("kept connection: %v", err)
	}
	if r, err := answerOn(served, 10*time.Second); err != nil || r.status != http.StatusAccepted {
		t.Fatalf("second order on the kept connection: got %+v %v, want 202", r, err)
	}
}

// TestConnectionCapPerAddress: one address holds at most
// gateway.max_connections_per_ip connections; the next from it is answered 429 and
// closed, while another address is still taken, and so is a trusted proxy past
// the cap (its connections carry many clients).
func TestConnectionCapPerAddress(t *testing.T) {
	const most = 2
	from := func(t *testing.T, f *fixture, local string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", f.addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	serve := func(t *testing.T, c net.Conn, user int64) {
		t.Helper()
		if _, err := io.WriteString(c, orderHead(tok(t, user), len(order))+order); err != nil {
			t.Fatal(err)
		}
		if r, err := answerOn(c, 10*time.Second); err != nil || r.status != http.StatusAccepted {
			t.Fatalf("got %+v %v, want 202", r, err)
		}
	}
	t.Run("capped", func(t *testing.T) {
		f := startGateway(t, func(c *gateway.Config) { c.MaxConnectionsPerIP = most })
		http.DefaultClient.CloseIdleConnections() // the fixture's own
		for i := range most {
			serve(t, from(t, f, "127.0.0.1"), int64(20+i))
		}
		over := from(t, f, "127.0.0.1")
		r, err := answerOn(over, 10*time.Second)
		if err != nil || r.status != http.StatusTooManyRequests || r.code != "rate_limited" {
			t.Fatalf("connection over its address's cap: got %+v %v, want 429 rate_limited", r, err)
		}
		if _, err := io.ReadAll(over); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("connection over its address's cap: %v, want it closed", err)
		}
		serve(t, from(t, f, "127.0.0.2"), 30) // another address
	})
	t.Run("trusted proxy", func(t *testing.T) {
		f := startGateway(t, func(c *gateway.Config) {
			c.MaxConnectionsPerIP = most
			c.TrustedProxies = []string{"127.0.0.1"}
		})
		for i := range most + 2 {
			serve(t, from(t, f, "127.0.0.1"), int64(40+i))
		}
	})
}

// TestHeaderCap: a request whose headers pass gateway.max_header_bytes is answered
// 431 and its connection closed, without the gateway reading on; one under it is
// served.
func TestHeaderCap(t *testing.T) {
	f := startGateway(t, func(c *gateway.Config) { c.MaxHeaderBytes = 8 << 10 })
	c := dial(t, f)
	head := "GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Big: " + strings.Repeat("a", 6<<10) + "\r\n\r\n"
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	if line, err := statusLine(c, 10*time.Second); line != "HTTP/1.1 200 OK" {
		t.Fatalf("headers under the cap: got %q %v, want 200", line, err)
	}
	c = dial(t, f)
	// Headers that never end: the gateway stops at the cap rather than buffering on.
	go io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Big: "+strings.Repeat("a", 64<<10))
	if line, err := statusLine(c, 10*time.Second); line != "HTTP/1.1 431 Request Header Fields Too Large" {
		t.Fatalf("headers over the cap: got %q %v, want 431", line, err)
	}
	mustServe(t, f, "after a request over the header cap")
}

// TestConnectionCap: with gateway.max_connections open, a new connection is
// answered 503 and closed before it is read, the ones open keep being
// served, and once one closes a new one is taken again.
func TestConnectionCap(t *testing.T) {
	const most = 3
	f := startGateway(t, func(c *gateway.Config) { c.MaxConnections = most })
	waitConns := func(want int64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); f.gw.OpenConnections() != want; {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections open, want %d", f.gw.OpenConnections(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	http.DefaultClient.CloseIdleConnections() // the fixture's own
	waitConns(0)

	order1 := func(c net.Conn, user int64) (rawAnswer, error) {
		if _, err := io.WriteString(c, orderHead(tok(t, user), len(order))+order); err != nil {
			return rawAnswer{}, err
		}
		return answerOn(c, 10*time.Second)
	}
	var open []net.Conn
	for i := range most {
		c := dial(t, f)
		if r, err := order1(c, int64(10+i)); err != nil || r.status != http.StatusAccepted {
			t.Fatalf("connection %d of %d: got %+v %v, want 202", i+1, most, r, err)
		}
		open = append(open, c)
	}
	waitConns(most)

	over := dial(t, f)
	if line, err := statusLine(over, 10*time.Second); line != "HTTP/1.1 503 Service Unavailable" {
		t.Fatalf("connection over the cap: got %q %v, want a 503 status line", line, err)
	}
	if _, err := io.ReadAll(over); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection over the cap: %v, want it closed", err)
	}
	// A flood of 200 more: each refused and closed, none counted open.
	var flood sync.WaitGroup
	var refused atomic.Int64
	for range 200 {
		flood.Add(1)
		go func() {
			defer flood.Done()
			c, err := net.Dial("tcp", f.addr())
			if err != nil {
				return // the backlog may overflow: refused too
			}
			defer c.Close()
			if line, _ := statusLine(c, 10*time.Second); line == "HTTP/1.1 503 Service Unavailable" {
				refused.Add(1)
			}
		}()
	}
	flood.Wait()
	if n := f.gw.OpenConnections(); n != most {
		t.Errorf("after the flood: %d connections open, want %d", n, most)
	}
	t.Logf("flood: %d of 200 answered 503", refused.Load())
	// The open ones are still served.
	if r, err := order1(open[0], 10); err != nil || r.status != http.StatusAccepted {
		t.Fatalf("open connection while over the cap: got %+v %v, want 202", r, err)
	}

	open[1].Close()
	waitConns(most - 1)
	again := dial(t, f)
	if r, err := order1(again, 20); err != nil || r.status != http.StatusAccepted {
		t.Fatalf("new connection after one closed: got %+v %v, want 202", r, err)
	}

	// The refusal was counted.
	again.Close()
	waitConns(most - 1) // open[0], open[2]
	r, err := http.Get("http://" + f.gw.OpsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	metrics, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if want := "seckill_gateway_connections_open 2\n"; !strings.Contains(string(metrics), want) { // open[0], open[2]: the ops listener's are not counted
		t.Errorf("metrics: want %s", want)
	}
	// Every refusal is counted, answered 503 or not (the client may have gone).
	var shed int64
	for line := range strings.Lines(string(metrics)) {
		if v, ok := strings.CutPrefix(line, `seckill_gateway_shed_total{layer="input",reason="too_many_connections"} `); ok {
			fmt.Sscan(v, &shed)
		}
	}
	if shed < 1+refused.Load() || shed > 201 {
		t.Errorf("refusals counted: %d, want %d to 201", shed, 1+refused.Load())
	}
}

// TestTricklingBodyClosed: a shopper's body that trickles in (a chunk at a time, each
// within the read timeout) is cut at the read timeout for the whole body: hertz's
// timeout bounds each read only, and a chunked body of a byte every 9 s held its
// connection for as long as the client liked (a probe held 40 so, every connection the
// gateway took). A stranger's body on an operator's route is not read at all: the 401
// closes the connection. (An operator's own upload gets a second more for every 64 KiB
// its route takes.)
func TestTricklingBodyClosed(t *testing.T) {
	const timeout = 500 * time.Millisecond
	f := startGateway(t, func(c *gateway.Config) { c.ReadTimeout = timeout })
	for _, tc := range []struct{ name, head string }{
		{"an order, chunked", "POST /api/v1/orders HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " + tok(t, 5) +
			"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"a shopper's body past the read-ahead", "POST /api/v1/orders HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer " + tok(t, 5) +
			"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"},
		{"a stranger's body on an operator's route, chunked", "POST /admin/v1/activities HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer not-the-token" +
			"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"a stranger's body on an operator's route, past the read-ahead", "PUT /admin/v1/plugins/x HTTP/1.1\r\nHost: gateway\r\n" +
			"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, f)
			chunked := strings.Contains(tc.head, "chunked")
			if _, err := io.WriteString(c, tc.head); err != nil {
				t.Fatal(err)
			}
			if !chunked { // past hertz's read-ahead at once, then a trickle
				if _, err := c.Write(bytes.Repeat([]byte(" "), 16<<10)); err != nil {
					t.Fatal(err)
				}
			}
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				io.Copy(io.Discard, c) // returns when the gateway closes (or answers and closes)
			}()
			start := time.Now()
			for time.Since(start) < 20*timeout {
				piece := " "
				if chunked {
					piece = "1\r\n \r\n"
				}
				if _, err := io.WriteString(c, piece); err != nil {
					break
				}
				select {
				case <-closed:
				case <-time.After(timeout / 5):
					continue
				}
				break
			}
			select {
			case <-closed:
				if d := time.Since(start); d > 10*timeout {
					t.Errorf("closed after %v, want about the read timeout of %v", d, timeout)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("the connection still open after %v of a trickling body", time.Since(start))
			}
		})
	}
}

// TestRepeatedIdempotencyKey: an order with Idempotency-Key on two header lines is
// 400 and reaches no backend: the gateway read the first only, so an empty first line
// made each retry of the second's key a new order (a probe: three retries, three units).
func TestRepeatedIdempotencyKey(t *testing.T) {
	f := startGateway(t)
	for _, lines := range [][2]string{{"", "k1"}, {"k1", "k2"}, {"k1", "k1"}} {
		c := dial(t, f)
		head := strings.Replace(orderHead(tok(t, 5), len(order)), "\r\n\r\n",
			"\r\nIdempotency-Key: "+lines[0]+"\r\nidempotency-key: "+lines[1]+"\r\n\r\n", 1)
		before := f.backend.n("PlaceOrder")
		if _, err := io.WriteString(c, head+order); err != nil {
			t.Fatal(err)
		}
		if r, err := answerOn(c, 10*time.Second); err != nil || r.status != http.StatusBadRequest || r.code != "bad_request" {
			t.Errorf("keys %q: got %+v %v, want 400 bad_request", lines, r, err)
		}
		if n := f.backend.n("PlaceOrder") - before; n != 0 {
			t.Errorf("keys %q: the backend got %d orders, want none", lines, n)
		}
	}
}
