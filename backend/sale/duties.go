package sale

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/internal/randhex"
)

// Duties configures the background duties: the reconciler, the rebalancer and the
// expiry of unpaid orders. In a fleet they run on one backend at a time, the holder
// of a lease; when it dies another backend takes the lease within LeaseTTL plus a
// third of it, and runs a pass at once.
type Duties struct {
	Interval      time.Duration // between passes of each duty; 0: 10s
	Reconcile     ReconcileConfig
	UnpaidTimeout time.Duration // 0: unpaid orders never expire
	Lease         string        // the lease's name; "": "duties"
	LeaseTTL      time.Duration // 0: 10s
	Holder        string        // this process in the lease; "": host/pid/random
}

func (d *Duties) defaults() {
	if d.Interval <= 0 {
		d.Interval = 10 * time.Second
	}
	if d.Lease == "" {
		d.Lease = "duties"
	}
	if d.LeaseTTL <= 0 {
		d.LeaseTTL = 10 * time.Second
	}
	if d.Holder == "" {
		host, _ := os.Hostname()
		d.Holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), randhex.String(4))
	}
}

// lease is what this process knows of the duties' lease.
type lease struct {
	mu    sync.Mutex
	token int64     // 0: not held
	until time.Time // held, as far as this process can tell, until then
}

func (l *lease) set(token int64, until time.Time) {
	l.mu.Lock()
	l.token, l.until = token, until
	l.mu.Unlock()
}

// current returns the fencing token while the lease is held.
func (l *lease) current() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token == 0 || !time.Now().Before(l.until) {
		return 0, false
	}
	return l.token, true
}

// Run runs the background duties until ctx ends, each on its own clock so a slow one
// never starves another. Without Leases (one process), they always run; with them,
// only while this process holds the lease, and each write they make to the ledger
// carries the lease's fencing token, so a holder that lost the lease mid-pass cannot
// write over its successor's work (domain.ErrFenced).
func (s *Service) Run(ctx context.Context, d Duties) {
	d.defaults()
	duties := []struct {
		name string
		run  func(fence int64) error
	}{
		{"reconcile", func(fence int64) error {
			rc := d.Reconcile
			rc.Fence = fence
			_, err := s.Reconcile(ctx, rc)
			return err
		}},
		{"rebalance", func(fence int64) error { return s.RebalanceAll(ctx, fence) }},
	}
	if d.UnpaidTimeout > 0 {
		duties = append(duties, struct {
			name string
			run  func(fence int64) error
		}{"expire unpaid orders", func(int64) error {
			// Its writes are state changes MySQL guards by themselves (an order
			// moves from created once), so two passes at once would do no harm.
			n, err := s.ExpireUnpaid(ctx, d.UnpaidTimeout)
			if n > 0 {
				s.log.Info("expired unpaid orders", "count", n)
			}
			return err
		}})
	}
	l := &lease{}
	gained := make([]chan struct{}, len(duties)) // a pass at once when the lease is taken
	for i := range gained {
		gained[i] = make(chan struct{}, 1)
	}
	var wg sync.WaitGroup
	if s.leases == nil {
		l.set(-1, time.Unix(1<<62, 0)) // no lease: always "held", no fence
	} else {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.holdLease(ctx, d, l, func() {
				for _, g := range gained {
					select {
					case g <- struct{}{}:
					default:
					}
				}
			})
		}()
	}
	for i, duty := range duties {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(d.Interval)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				case <-gained[i]:
				}
				fence, held := l.current()
				if !held {
					continue
				}
				err := duty.run(max(fence, 0))
				switch {
				case errors.Is(err, domain.ErrFenced):
					s.log.Warn(duty.name+" pass stopped: another backend holds the lease now", "err", err)
					l.set(0, time.Time{})
				case err != nil && ctx.Err() == nil:
					s.log.Warn(duty.name+" pass failed", "err", err)
				}
			}
		}()
	}
	wg.Wait()
}

// holdLease takes and renews the duties' lease every third of its life until ctx
// ends, then gives it up so another backend need not wait for it to expire. A renewal
// that fails leaves the lease held only until the last good renewal's expiry.
func (s *Service) holdLease(ctx context.Context, d Duties, l *lease, gained func()) {
	every := d.LeaseTTL / 3
	var held bool
	for {
		asked := time.Now()
		token, ok, err := s.leases.Hold(ctx, d.Lease, d.Holder, d.LeaseTTL)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.log.Warn("renew the duties' lease", "err", err)
			}
		case ok:
			// Counted from before the call: Redis's clock started later.
			l.set(token, asked.Add(d.LeaseTTL-d.LeaseTTL/10))
			if !held {
				s.log.Info("holding the duties' lease", "holder", d.Holder, "token", token)
				gained()
			}
		default:
			if held {
				s.log.Warn("lost the duties' lease to another backend", "holder", d.Holder)
			}
			l.set(0, time.Time{})
		}
		_, held = l.current()
		s.metrics.LeaseHeld.Set(b2f(held))
		select {
		case <-ctx.Done():
			if held {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				if err := s.leases.Release(rctx, d.Lease, d.Holder); err != nil {
					s.log.Warn("give up the duties' lease", "err", err)
				}
				cancel()
			}
			s.metrics.LeaseHeld.Set(0)
			return
		case <-time.After(every):
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
