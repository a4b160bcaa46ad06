package gateway

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
)

// firstRequest closes a connection that has not brought a whole request's
// headers within timeout of being accepted. hertz's read timeout starts only
// once a request's first bytes arrive and its idle timeout only after a
// first request, so a connection that never sends a byte was held forever;
// a timer, not a goroutine, watches each one.
type firstRequest struct{ timeout time.Duration }

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

// onAccept is the server's OnAccept hook: it starts the connection's timer
// and hands it to the requests in the connection's context.
func (f firstRequest) onAccept(conn net.Conn) context.Context {
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
