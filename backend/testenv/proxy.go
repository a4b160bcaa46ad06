package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a target until it is cut: then it refuses new
// connections and drops the open ones, as a network partition would, until restored.
type Proxy struct {
	target string
	ln     net.Listener
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
	delay  atomic.Int64 // nanoseconds each answer from the target is held back
}

// NewProxy listens on a free loopback port and forwards to target; it stops when the
// test ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve()
	tb.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	return p
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, up, true)
		go p.pipe(up, c, false)
	}
}

func (p *Proxy) pipe(dst, src net.Conn, answers bool) {
	if answers {
		io.Copy(dst, delayed{src, &p.delay})
	} else {
		io.Copy(dst, src)
	}
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// delayed reads what the target answers, holding each read back by the proxy's delay.
type delayed struct {
	r     io.Reader
	delay *atomic.Int64
}

func (d delayed) Read(b []byte) (int, error) {
	n, err := d.r.Read(b)
	if dl := d.delay.Load(); dl > 0 && n > 0 {
		time.Sleep(time.Duration(dl))
	}
	return n, err
}

// Delay holds back everything the target answers by d (0: none), as a slow network
// or a stalled server would; requests still reach it at once.
func (p *Proxy) Delay(d time.Duration) { p.delay.Store(int64(d)) }

// Cut drops every connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}
