package gateway

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	hnetpoll "github.com/cloudwego/hertz/pkg/network/netpoll"
	"github.com/cloudwego/netpoll"
)

// firstRequest closes a connection that has not brought a whole request's
// headers within timeout of being accepted. hertz's read timeout starts only
// once a request's first bytes arrive and its idle timeout only after a
// first request, so a connection that never sends a byte was held forever;
// a timer, not a goroutine, watches each one.
type firstRequest struct {
	timeout time.Duration
	limit   *connLimit
}

type connWatch struct {
	state atomic.Int32 // watchWaiting, watchServed or watchClosed
	timer *time.Timer
}

const (
	watchWaiting int32 = iota
	watchServed
	watchClosed
)

type connWatchKey struct{}

// onAccept is the server's OnAccept hook: it refuses a connection over the
// cap, starts the connection's timer and hands it to the requests in the
// connection's context.
func (f firstRequest) onAccept(conn net.Conn) context.Context {
	if !f.limit.admit(conn) {
		return context.Background()
	}
	w := &connWatch{}
	w.timer = time.AfterFunc(f.timeout, func() {
		if w.state.CompareAndSwap(watchWaiting, watchClosed) {
			_ = conn.Close() // a silent client's connection; nothing to report
		}
	})
	return context.WithValue(context.Background(), connWatchKey{}, w)
}

// served is the middleware that stops the timer: a request arrived.
func (firstRequest) served(ctx context.Context, c *app.RequestContext) {
	if w, ok := ctx.Value(connWatchKey{}).(*connWatch); ok && w.state.Load() == watchWaiting &&
		w.state.CompareAndSwap(watchWaiting, watchServed) {
		w.timer.Stop()
	}
	c.Next(ctx)
}

// connLimit counts the connections open and caps them
// (Config.MaxConnections). A connection over the cap is answered 503 and
// closed as it is accepted, before any of it is read: a flood of
// connections costs the gateway a count and a short write each, not the
// buffers, timers and file descriptors it needs for the connections it
// serves.
//
// perPeer caps the connections of one address (an IPv6 client's /64) the same
// way, answered 429: one client alone cannot take every connection. Peers that
// exempt says are trusted proxies are not capped.
type connLimit struct {
	max     int64 // 0: no cap
	perPeer int32 // 0: no cap
	exempt  func(netip.Addr) bool
	open    atomic.Int64
	refused func(reason string) // counts a refusal

	mu    sync.Mutex
	peers map[netip.Addr]int32 // open connections of each capped address
}

// closeNotifier is what hertz's netpoll connections underneath are.
type closeNotifier interface {
	AddCloseCallback(netpoll.CloseCallback) error
}

// refusal is the whole answer to a connection over the cap, peerRefusal to one over
// its address's cap.
var (
	refusal = []byte("HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: application/json; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 61\r\n\r\n" +
		`{"error":"unavailable","message":"too many open connections"}`)
	peerRefusal = []byte("HTTP/1.1 429 Too Many Requests\r\n" +
		"Content-Type: application/json; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 80\r\n\r\n" +
		`{"error":"rate_limited","message":"too many open connections from your address"}`)
)

// admit counts conn open until it closes; false if it is over the cap, in
// which case it has been answered and closed. A connection whose close
// cannot be watched (another transport) is not counted.
func (l *connLimit) admit(conn net.Conn) bool {
	var cn closeNotifier
	if hc, ok := conn.(*hnetpoll.Conn); ok {
		cn, _ = hc.Conn.(closeNotifier)
	}
	if cn == nil {
		return true
	}
	if n := l.open.Add(1); l.max > 0 && n > l.max {
		l.open.Add(-1)
		refuse(conn, refusal)
		l.refused("too_many_connections")
		return false
	}
	peer, capped := l.peerOf(conn)
	if capped && !l.take(peer) {
		l.open.Add(-1)
		refuse(conn, peerRefusal)
		l.refused("too_many_connections_from_address")
		return false
	}
	done := func() {
		l.open.Add(-1)
		if capped {
			l.give(peer)
		}
	}
	if err := cn.AddCloseCallback(func(netpoll.Connection) error {
		done()
		return nil
	}); err != nil {
		done() // not watched: not counted
	}
	return true
}

// refuse writes a refusal to conn and closes it.
func refuse(conn net.Conn, answer []byte) {
	_ = conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = conn.Write(answer) // best effort: the client may not read it
	_ = conn.Close()          // refused; nothing to report
}

// peerOf is the address conn's cap counts it under (an IPv6 peer's /64), and
// whether it is capped at all.
func (l *connLimit) peerOf(conn net.Conn) (netip.Addr, bool) {
	if l.perPeer <= 0 {
		return netip.Addr{}, false
	}
	a := addrOf(conn.RemoteAddr())
	if l.exempt != nil && l.exempt(a) {
		return netip.Addr{}, false
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return a, true
}

// take counts a connection of peer; false when peer has perPeer open already.
func (l *connLimit) take(peer netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.peers[peer] >= l.perPeer {
		return false
	}
	if l.peers == nil {
		l.peers = map[netip.Addr]int32{}
	}
	l.peers[peer]++
	return true
}

func (l *connLimit) give(peer netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.peers[peer]--; l.peers[peer] <= 0 {
		delete(l.peers, peer)
	}
}

// connAlive reports, as the request goes on, whether the client of c still holds its
// connection: false once the peer has closed it (netpoll marks it inactive); always
// true on a transport that cannot tell.
func connAlive(c *app.RequestContext) func() bool {
	conn := any(c.GetConn())
	if w, ok := conn.(*hnetpoll.Conn); ok {
		conn = w.Conn
	}
	if a, ok := conn.(interface{ IsActive() bool }); ok {
		return a.IsActive
	}
	return func() bool { return true }
}
