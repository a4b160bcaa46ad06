package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/app/server"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/gateway"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc"
)

// BenchmarkEdge measures, side by side in one run and over real HTTP on
// loopback (keep-alive connections, parallel clients, as wrk drives a
// gateway), what the edge costs next to hertz alone:
//
//   - bare: a hertz handler answering the gateway's sold-out bytes (409);
//   - soldout: the gateway's sold-out answer to an order (token verified,
//     body decoded, sold-out flag found), with 0, 1 or 3 admission plugins
//     loaded (they run after the edge cache, so a sold-out answer never
//     reaches them);
//   - admitted: an order that passes every layer (limits, plugins) and is
//     answered by a stub backend over kitex, with 0, 1 or 3 plugins: where
//     the plugins' cost shows.
//
// The clients write the same request bytes and read answers without
// allocating (rawConn), so their own cost is small and equal for every
// case. Ratios of ns/op between cases are the figures of bench/README.md.
// Each case also reports cpu-ns/op, the process's CPU time (servers and
// clients) per request: on shared cores, where wall time moves with the
// neighbours' load, the steadier figure of what a request costs.
//
//	go test -run '^$' -bench Edge -benchtime 3s -count 5 ./gateway/
func BenchmarkEdge(b *testing.B) {
	lim := ratelimit.Rule{RPS: 1e7, Burst: 1e7}
	f := startGateway(b, func(c *gateway.Config) {
		c.Limits = ratelimit.Limits{Global: lim, User: lim, Item: lim, Read: lim, UserRead: lim, IP: lim}
		c.SoldOutPoll = time.Hour
		c.CacheTTL = time.Hour
	})
	f.backend.mu.Lock()
	f.backend.remaining = 0
	f.backend.placeErr = domain.Errorf(domain.ESoldOut, "item 70 is sold out")
	f.backend.activity.Items = append(f.backend.activity.Items, &rpc.Item{Id: 71, ActivityId: 7})
	f.backend.mu.Unlock()
	soldOut := f.do(b, "POST", "/api/v1/orders", tok(b, 1), order) // the backend's answer flags item 70
	if soldOut.status != http.StatusConflict {
		b.Fatalf("first order: got %d %v, want 409", soldOut.status, soldOut.body)
	}
	f.backend.mu.Lock()
	f.backend.placeErr = nil
	f.backend.mu.Unlock()
	gwAddr := f.url[len("http://"):]
	body := soldOutBytes(b, gwAddr)
	bareAddr := startBare(b, body)

	soldOutOrder := func(tok string) []byte { return orderRequest(tok, order) }
	admittedOrder := func(tok string) []byte {
		return orderRequest(tok, `{"activity_id": 7, "item_id": 71, "quantity": 1}`)
	}
	b.Run("bare", func(b *testing.B) { drive(b, bareAddr, http.StatusConflict, soldOutOrder) })
	for _, n := range []int{0, 1, 3} {
		switch n {
		case 1:
			f.load(b, benchPlugins[2:])
		case 3:
			f.load(b, benchPlugins[:2])
		}
		b.Run(fmt.Sprintf("soldout/plugins=%d", n), func(b *testing.B) { drive(b, gwAddr, http.StatusConflict, soldOutOrder) })
		b.Run(fmt.Sprintf("admitted/plugins=%d", n), func(b *testing.B) { drive(b, gwAddr, http.StatusAccepted, admittedOrder) })
	}
}

// benchPlugins are the example plugins of BenchmarkEdge (as hertzhost's
// BenchmarkChain): each admits the benchmark's orders after doing its real
// work. The last is loaded first, then the other two.
var benchPlugins = []pluginSpec{
	{name: "attemptlimit", wasmPath: "../plugins/examples/attemptlimit/attemptlimit.wasm", order: 2,
		config: `{"max":1000000000,"window_ms":60000}`, failPolicy: "closed"},
	{name: "timewindow", wasmPath: "../plugins/examples/timewindow/timewindow.wasm", order: 3,
		config: `{"start_ms":1,"end_ms":0}`, failPolicy: "closed"},
	{name: "blocklist", wasmPath: "../plugins/examples/blocklist/blocklist.wasm", order: 1,
		config: `{"users":["999999"],"ips":["198.51.100.0/24"]}`, failPolicy: "closed"},
}

// benchConns is how many connections each benchmark drives at once (per
// GOMAXPROCS, as b.SetParallelism counts).
const benchConns = 8

// benchUsers numbers the shoppers of the benchmark's connections: one per
// connection, each with a token of its own.
var benchUsers atomic.Int64

// drive sends the request req makes for each connection's shopper over
// keep-alive connections in parallel and fails on any other status than want.
func drive(b *testing.B, addr string, want int, req func(token string) []byte) {
	b.SetParallelism(benchConns)
	b.ReportAllocs()
	cpu := processCPU()
	defer func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		}
	}()
	b.RunParallel(func(pb *testing.PB) {
		rc, err := dialRaw(addr, req(tok(b, 1000+benchUsers.Add(1))))
		if err != nil {
			b.Error(err)
			return
		}
		defer rc.c.Close()
		for pb.Next() {
			status, err := rc.do()
			if err != nil || status != want {
				b.Errorf("got %d, %v; want %d", status, err, want)
				return
			}
		}
	})
}

// orderRequest is the bytes of an order request with a shopper's token.
func orderRequest(token, body string) []byte {
	return []byte("POST /api/v1/orders HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer " + token +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// soldOutBytes is the gateway's answer body to an order of a sold-out item.
func soldOutBytes(tb testing.TB, addr string) []byte {
	tb.Helper()
	rc, err := dialRaw(addr, orderRequest(tok(tb, 2), order))
	if err != nil {
		tb.Fatal(err)
	}
	defer rc.c.Close()
	rc.keep = true
	if status, err := rc.do(); err != nil || status != http.StatusConflict {
		tb.Fatalf("sold-out order: got %d, %v; want 409", status, err)
	}
	return rc.body
}

// startBare serves body as 409 JSON to any order on a bare hertz server until
// the benchmark ends, and returns its address.
func startBare(tb testing.TB, body []byte) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	h := server.New(server.WithListener(ln), server.WithDisablePrintRoute(true))
	h.POST("/api/v1/orders", func(_ context.Context, c *app.RequestContext) {
		c.Data(http.StatusConflict, "application/json; charset=utf-8", body)
	})
	go h.Run()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	})
	for range 100 { // Spin starts in the background
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ln.Addr().String()
}

// rawConn is a keep-alive HTTP/1.1 client of one request, as wrk is: it writes
// the same bytes each time and reads the status and skips the body, without
// allocating, so the client's cost stays small next to the server's.
type rawConn struct {
	c    net.Conn
	r    *bufio.Reader
	req  []byte
	keep bool   // keep the last answer's body
	body []byte // the last body when keep
}

func dialRaw(addr string, req []byte) (*rawConn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawConn{c: c, r: bufio.NewReaderSize(c, 16<<10), req: req}, nil
}

var contentLength = []byte("content-length:")

// do sends the request and reads the answer; the answer must have a
// Content-Length (the gateway's and hertz's do).
func (rc *rawConn) do() (int, error) {
	if _, err := rc.c.Write(rc.req); err != nil {
		return 0, err
	}
	line, err := rc.r.ReadSlice('\n')
	if err != nil || len(line) < 12 {
		return 0, fmt.Errorf("status line %q: %v", line, err)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, err
	}
	n := -1
	for {
		line, err = rc.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > len(contentLength) && bytes.EqualFold(line[:len(contentLength)], contentLength) {
			if n, err = strconv.Atoi(string(bytes.TrimSpace(line[len(contentLength):]))); err != nil {
				return 0, err
			}
		}
	}
	if n < 0 {
		return 0, errors.New("no Content-Length")
	}
	if rc.keep {
		rc.body = make([]byte, n)
		_, err = io.ReadFull(rc.r, rc.body)
		return status, err
	}
	_, err = rc.r.Discard(n)
	return status, err
}
