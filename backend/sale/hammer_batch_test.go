package sale_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/inmem"
	"github.com/seckill/flashsale/backend/sale"
	"github.com/seckill/flashsale/worker"
)

// batchFaults makes the rig's calls fail now and then, each way a call can fail: before
// it runs (nothing done: a refused connection) or after it ran (its answer lost), and
// counts what it did and how many calls were batches.
type batchFaults struct {
	rate float64
	on   atomic.Bool
	mu   sync.Mutex
	n    map[string]int
}

func (f *batchFaults) count(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n[what]++
}

func (f *batchFaults) get(what string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[what]
}

// roll decides a call's fate: "" goes through, "before" fails it untouched, "after"
// runs it and loses the answer.
func (f *batchFaults) roll(call string, batch int) string {
	if batch > 1 {
		f.count(call + " batches")
	}
	if !f.on.Load() || rand.Float64() >= f.rate {
		return ""
	}
	fate := "before"
	if rand.IntN(2) == 0 {
		fate = "after"
	}
	f.count(call + " " + fate)
	return fate
}

// install puts the faults on every port call of the admitted path the service and the
// worker make: deduct, settle, publish and write, lone and batched. Published requests
// go on to q.
func (f *batchFaults) install(e *sq, q *inmem.Queue) {
	e.ledger.deduct.set(func(d domain.Deduction, next func() (domain.Deducted, error)) (domain.Deducted, error) {
		switch f.roll("deduct", 1) {
		case "before":
			return domain.Deducted{}, errDown
		case "after":
			next()
			return domain.Deducted{}, errLost
		}
		return next()
	})
	e.ledger.deductBatch.set(func(ds []domain.Deduction, next func() ([]domain.Deducted, []error, error)) ([]domain.Deducted, []error, error) {
		switch f.roll("deduct", len(ds)) {
		case "before":
			return nil, nil, errDown
		case "after":
			next()
			return nil, nil, errLost
		}
		return next()
	})
	e.ledger.settle.set(func(t domain.Ticket, next func() (bool, error)) (bool, error) {
		switch f.roll("settle", 1) {
		case "before":
			return false, errDown
		case "after":
			next()
			return false, errLost
		}
		return next()
	})
	e.ledger.settleBatch.set(func(ts []domain.Ticket, next func() ([]bool, error)) ([]bool, error) {
		switch f.roll("settle", len(ts)) {
		case "before":
			return nil, errDown
		case "after":
			next()
			return nil, errLost
		}
		return next()
	})
	forward := func(rs []domain.OrderRequest) error {
		time.Sleep(300 * time.Microsecond) // a broker's round trip, which the requests behind it gather during
		for _, r := range rs {
			if err := q.Publish(context.Background(), r); err != nil {
				return err
			}
		}
		return nil
	}
	send := func(rs []domain.OrderRequest) error {
		switch f.roll("publish", len(rs)) {
		case "before":
			return errDown
		case "after":
			forward(rs)
			return errLost
		}
		return forward(rs)
	}
	e.pub.hook.set(func(r domain.OrderRequest, _ int64) error { return send([]domain.OrderRequest{r}) })
	e.pub.batch.set(func(rs []domain.OrderRequest, _ int64) error { return send(rs) })
	e.orders.write.set(func(r domain.OrderRequest, next func() (domain.Written, error)) (domain.Written, error) {
		switch f.roll("write", 1) {
		case "before":
			return domain.Written{}, domain.NotCommitted(errDown)
		case "after":
			if w, err := next(); err != nil {
				return w, err
			}
			return domain.Written{}, errLost // committed; the answer to COMMIT was lost
		}
		return next()
	})
	e.orders.writeBatch.set(func(rs []domain.OrderRequest, next func() ([]domain.Written, []error)) ([]domain.Written, []error) {
		switch f.roll("write", len(rs)) {
		case "before":
			errs := make([]error, len(rs))
			for i := range errs {
				errs[i] = domain.NotCommitted(errDown)
			}
			return make([]domain.Written, len(rs)), errs
		case "after":
			ws, errs := next()
			for i, err := range errs {
				if err == nil {
					ws[i], errs[i] = domain.Written{}, errLost
				}
			}
			return ws, errs
		}
		return next()
	})
}

// TestHammerBatchedFaults: waves of shoppers of one item meet in batches (one deduct
// script, one queue send, one settle script; for sync one transaction; in the worker
// one ticket read, one transaction, one settle script per item) while each of those
// calls, lone or batched, fails now and then before it runs or after it ran. On the
// real MariaDB and Redis, the queue in process. Every admitted ticket still ends once
// and true to MySQL, and once the sale settles and the rest is sold every invariant
// holds: all stock sold once, none oversold, the limit, one order per ticket and key,
// Redis equal to MySQL per bucket with nothing to repair.
func TestHammerBatchedFaults(t *testing.T) {
	for _, tt := range []struct {
		name     string
		strategy domain.Strategy
		buckets  int
	}{
		{"sync", domain.StrategySync, 1},
		{"async", domain.StrategyAsync, 1},
		{"bucket", domain.StrategyBucket, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			ctx := context.Background()
			e := newSQ(t, sqOpts{})
			q := inmem.New(inmem.Config{Goroutines: 8, BatchSize: 16, MaxAttempts: 6, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
			w := worker.New(e.orders, e.ledger, e.db.Store, worker.Config{BatchSize: 8, BatchWindow: 2 * time.Millisecond,
				RetryBackoff: time.Millisecond, RetryFor: 100 * time.Millisecond}, nil, testLog(t))
			stop, err := q.Subscribe(w)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stop(); q.Close() })
			f := &batchFaults{rate: 0.08, n: map[string]int{}}
			f.install(e, q)
			const stock, limit = 300, 3
			a := e.sale(t, tt.strategy, stock, limit, tt.buckets)

			f.on.Store(true)
			h := &hammerRun{e: e, a: a, admitted: map[string]int64{}, keys: map[string]string{}, codes: map[string]int{}, faults: true}
			h.run(t, 300, 2, nil)
			f.on.Store(false)

			// Tickets whose settle failed wait for the reconciler's stale pass; run it
			// soon rather than after 15 minutes.
			deadline := time.Now().Add(2 * time.Minute)
			for {
				if _, err := e.svc.Reconcile(ctx, sale.ReconcileConfig{Quiet: 50 * time.Millisecond, StaleTicket: time.Second}); err != nil {
					t.Fatal(err)
				}
				if st := e.redisStock(t, a, domain.MaxBuckets); st.Tickets == 0 && q.Stats().Held == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("tickets still in flight or queued after 2 minutes: queue %+v", q.Stats())
				}
				time.Sleep(200 * time.Millisecond)
			}
			h.finish(t, q)
			e.invariants(t, a, sqCheck{sold: stock})
			h.tickets(t)

			// The batched paths were taken, and calls failed.
			want := []string{"deduct batches", "settle batches"}
			if tt.strategy == domain.StrategySync {
				want = append(want, "write batches")
			} else {
				want = append(want, "publish batches")
			}
			for _, what := range want {
				if f.get(what) == 0 {
					t.Errorf("no %s: the hammer did not exercise the batched path", what)
				}
			}
			faults := 0
			for _, call := range []string{"deduct", "settle", "publish", "write"} {
				faults += f.get(call+" before") + f.get(call+" after")
			}
			if faults == 0 {
				t.Error("no call failed: the hammer injected nothing")
			}
			t.Logf("%v: outcomes %v; %d admitted; calls %v", time.Since(start).Round(time.Millisecond), h.codes, len(h.admitted), f.n)
		})
	}
}
