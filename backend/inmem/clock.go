package inmem

import (
	"sync"
	"time"
)

// Option configures the in-memory Store, Ledger and Cache.
type Option func(*options)

type options struct {
	now func() time.Time
}

func buildOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithClock makes an adapter read the time from now instead of time.Now: the Ledger
// for its sale windows, admission times and result TTLs, the Cache for its TTLs, the
// Store for the creation time of orders.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Clock is a clock that moves only when told, for tests. It is safe for concurrent
// use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
