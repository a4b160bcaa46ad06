package sale_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/inmem"
	"github.com/seckill/flashsale/backend/sale"
	"github.com/seckill/flashsale/worker"
)

// TestHammerInterleavings: shoppers buy one to three units at once, retrying with and
// without their keys, while the sale is disturbed: bucket counts change, the activity
// goes offline and back, Redis loses the item's keys. On the real MariaDB and Redis
// (seqrig_test.go), the queue in process (inmem.Queue: redeliveries, batches) with a
// batching worker. Once the sale settles and whatever is left is sold, every invariant
// holds: all stock sold once, none oversold, the limit, one order per ticket and key,
// every admitted ticket ended and true to MySQL, Redis equal to MySQL per bucket.
func TestHammerInterleavings(t *testing.T) {
	changeBuckets := func(e *sq, a *domain.Activity, step int) error {
		_, err := e.svc.SetBuckets(context.Background(), a.ID, []int{2, 6, 3, 8, 1, 4}[step%6])
		return err
	}
	offlineOnline := func(e *sq, a *domain.Activity, step int) error {
		if _, err := e.svc.Offline(context.Background(), a.ID); err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond) // shoppers meet the sale offline
		_, err := e.svc.Publish(context.Background(), a.ID)
		return err
	}
	flush := func(e *sq, a *domain.Activity, step int) error { return e.flush(a) }
	// Cancels of live orders, stock changed up and down by an operator, reconciler
	// passes and moves between buckets, and with flush Redis flushed now and then
	// while nothing is in flight: releases and deltas meet repairs, and restores.
	// Redis, once settled, must never be over MySQL, nor count a buyer's units wrong.
	ends := func(flush bool) func(e *sq, a *domain.Activity, step int) error {
		return func(e *sq, a *domain.Activity, step int) error {
			return endsStep(e, a, step, flush)
		}
	}
	for _, tt := range []struct {
		name     string
		strategy domain.Strategy
		buckets  int
		disturb  func(e *sq, a *domain.Activity, step int) error
		exact    bool // Redis never loses a ticket: once settled it counts every buyer's units exactly (notOver)
	}{
		{"quantities above 1", domain.StrategyBucket, 4, nil, true},
		{"quantities above 1, async", domain.StrategyAsync, 1, nil, true},
		{"bucket counts change", domain.StrategyBucket, 4, changeBuckets, true},
		{"offline and online", domain.StrategyBucket, 4, offlineOnline, true},
		{"redis flushed", domain.StrategyBucket, 4, flush, false},
		{"redis flushed, async", domain.StrategyAsync, 1, flush, false},
		{"redis flushed, sync", domain.StrategySync, 1, flush, false},
		{"ends, stock changes and repairs", domain.StrategyBucket, 4, ends(false), true},
		{"ends, stock changes and repairs, sync", domain.StrategySync, 1, ends(false), true},
		{"ends, stock changes and repairs, redis flushed", domain.StrategyBucket, 4, ends(true), true},
		{"ends, stock changes and repairs, redis flushed, sync", domain.StrategySync, 1, ends(true), true},
		{"all at once", domain.StrategyBucket, 4, func(e *sq, a *domain.Activity, step int) error {
			return []func(*sq, *domain.Activity, int) error{changeBuckets, offlineOnline, flush}[step%3](e, a, step/3)
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			e := newSQ(t, sqOpts{})
			q := inmem.New(inmem.Config{Goroutines: 8, BatchSize: 16, MaxAttempts: 6, Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
			w := worker.New(e.db.Store, e.stock, e.db.Store, worker.Config{BatchSize: 8, BatchWindow: 2 * time.Millisecond}, nil, testLog(t))
			stop, err := q.Subscribe(w)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { stop(); q.Close() })
			e.pub.hook.set(func(r domain.OrderRequest, _ int64) error { return q.Publish(context.Background(), r) })
			const stock, limit = 300, 3
			a := e.sale(t, tt.strategy, stock, limit, tt.buckets)

			h := &hammerRun{e: e, a: a, admitted: map[string]int64{}, keys: map[string]string{}, codes: map[string]int{}, flushes: tt.disturb != nil}
			var steps atomic.Int64
			var disturb func(step int)
			if tt.disturb != nil {
				disturb = func(step int) {
					if err := tt.disturb(e, a, step); err != nil {
						t.Errorf("disturbance %d: %v", step, err)
					}
					steps.Add(1)
				}
			}
			h.run(t, 300, 2, disturb)
			if _, err := e.svc.Publish(context.Background(), a.ID); err != nil { // it may have been left offline
				t.Fatal(err)
			}
			h.settle(t, q)
			h.notOver(t, tt.exact)
			h.finish(t, q)
			e.invariants(t, a, sqCheck{sold: -1})
			if left := e.rows(t, a.Items[0].ID); slices.ContainsFunc(left, func(n int64) bool { return n != 0 }) {
				t.Fatalf("sold out, yet MySQL holds %v", left)
			}
			h.tickets(t)
			t.Logf("%v: %d disturbances; outcomes %v; %d admitted; queue %+v", time.Since(start).Round(time.Millisecond), steps.Load(), h.codes, len(h.admitted), q.Stats())
		})
	}
}

// endsStep is one disturbance of the "ends" hammers (see TestHammerInterleavings).
func endsStep(e *sq, a *domain.Activity, step int, flush bool) error {
	ctx := context.Background()
	cancel := func() error {
		rows, err := e.db.QueryContext(ctx, `SELECT id, user_id FROM orders WHERE item_id = ? AND status = 'created' ORDER BY id DESC LIMIT 4`, a.Items[0].ID)
		if err != nil {
			return err
		}
		var live [][2]int64
		for rows.Next() {
			var o [2]int64
			if err := rows.Scan(&o[0], &o[1]); err != nil {
				rows.Close()
				return err
			}
			live = append(live, o)
		}
		rows.Close()
		var g errgroup.Group
		for _, o := range live {
			g.Go(func() error {
				if _, err := e.svc.Cancel(ctx, o[1], o[0]); err != nil && !domain.IsCode(err, domain.EConflict) {
					return fmt.Errorf("cancel order %d: %w", o[0], err)
				}
				return nil
			})
		}
		return g.Wait()
	}
	switch step % 6 {
	case 0, 4: // Redis lost while orders are cancelled
		var g errgroup.Group
		if flush {
			g.Go(func() error { return e.flushIdle(a) })
		}
		g.Go(cancel)
		return g.Wait()
	case 1:
		return cancel()
	case 2:
		cur, err := e.db.Store.Activity(ctx, a.ID)
		if err != nil {
			return err
		}
		item, _ := cur.Item(a.Items[0].ID)
		total := item.TotalStock + []int64{6, -4}[(step/6)%2]
		_, err = e.svc.Update(ctx, a.ID, domain.ActivityChange{Items: []domain.ItemChange{{ItemID: item.ID, TotalStock: &total}}})
		if domain.IsCode(err, domain.EConflict) || domain.IsCode(err, domain.EUnavailable) {
			return nil // fewer units left than asked, or Redis lost meanwhile: refused whole
		}
		return err
	case 3:
		_, err := e.svc.Reconcile(ctx, sale.ReconcileConfig{Quiet: 5 * time.Millisecond})
		return err
	default:
		return e.svc.RebalanceAll(ctx, 0)
	}
}

// hammerRun is one hammer's shoppers and what they were told.
type hammerRun struct {
	e        *sq
	a        *domain.Activity
	mu       sync.Mutex
	admitted map[string]int64  // ticket -> user
	keys     map[string]string // ticket -> its idempotency key
	codes    map[string]int
	next     int64 // the next sweeping user
	flushes  bool  // Redis may lose the item: a restore meets another flush now and then
	faults   bool  // calls fail: an attempt may be answered unavailable or outcome_unknown
}

func (h *hammerRun) add(code string, p sale.Placed, user int64, key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.codes[code]++
	if code == "ok" {
		h.admitted[p.Ticket] = user
		h.keys[p.Ticket] = key
	}
}

// run sends attempts of users shoppers perUser times each, in waves of 24 at a time,
// each wave alongside one disturbance (when there is one), so disturbances fall while
// the sale is selling: user u asks for 1 + u%3 units; even users retry with the same
// key, odd users with a new one.
func (h *hammerRun) run(t *testing.T, users, perUser int, disturb func(step int)) {
	t.Helper()
	var jobs [][2]int64
	for attempt := 0; attempt < perUser; attempt++ {
		for u := 1; u <= users; u++ {
			jobs = append(jobs, [2]int64{int64(u), int64(attempt)})
		}
	}
	attempt := func(j [2]int64) {
		user, attempt := j[0], j[1]
		key := fmt.Sprintf("k%d", user)
		if user%2 == 1 {
			key = fmt.Sprintf("k%d-%d", user, attempt)
		}
		p, err := h.e.place(h.a, user, 1+int(user%3), key)
		code := "ok"
		if err != nil {
			code = domain.ErrorCode(err)
		}
		switch {
		case code == "ok", code == domain.ESoldOut, code == domain.EInsufficientStock, code == domain.ELimitExceeded, code == domain.ENotFound:
		case code == domain.EUnavailable && h.flushes: // "being restored; try again"
		case (code == domain.EUnavailable || code == domain.EOutcomeUnknown) && h.faults:
		default:
			t.Errorf("user %d attempt %d: %v", user, attempt, err)
		}
		h.add(code, p, user, key)
	}
	const wave = 24
	for step := 0; len(jobs) > 0; step++ {
		n := min(wave, len(jobs))
		var wg sync.WaitGroup
		if disturb != nil {
			wg.Add(1)
			go func() { defer wg.Done(); disturb(step) }()
		}
		for _, j := range jobs[:n] {
			wg.Add(1)
			go func() { defer wg.Done(); attempt(j) }()
		}
		wg.Wait()
		jobs = jobs[n:]
	}
	h.next = int64(users) + 1000
}

// notOver fails when Redis, once settled and before any repair, holds more of a
// bucket than MySQL, or (with buyers) counts a buyer's units other than their live
// orders hold: whatever restores, releases, deltas and repairs met, Redis errs short,
// never over. Redis flushed with tickets in flight may count a buyer twice (a take
// of a lost ticket that a reconciler's repair counted already), so buyers is off then.
func (h *hammerRun) notOver(t *testing.T, buyers bool) {
	t.Helper()
	ctx := context.Background()
	rows := h.e.rows(t, h.a.Items[0].ID)
	st := h.e.redisStock(t, h.a, len(rows))
	if !st.Loaded {
		return // flushed last: the next order loads MySQL's
	}
	for b := range rows {
		if st.BucketStock[b] > rows[b] {
			t.Fatalf("settled: redis %v over mysql %v", st.BucketStock, rows)
		}
	}
	if !buyers {
		return
	}
	held, err := h.e.rdb.HGetAll(ctx, fmt.Sprintf("sk:{a%d:i%d}:buyers", h.a.ID, h.a.Items[0].ID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	for u, n := range held {
		var units int64
		if err := h.e.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(quantity), 0) FROM orders WHERE item_id = ? AND user_id = ? AND status IN ('created', 'paid')`,
			h.a.Items[0].ID, u).Scan(&units); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(units) != n {
			t.Errorf("settled: redis counts user %s holding %s units, their live orders %d", u, n, units)
		}
	}
}

// settle waits until the queue holds nothing and no ticket is in flight.
func (h *hammerRun) settle(t *testing.T, q *inmem.Queue) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st := h.e.redisStock(t, h.a, domain.MaxBuckets)
		if st.Tickets == 0 && q.Stats().Held == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled: %d tickets in flight, queue %+v", st.Tickets, q.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// finish settles the sale and sells what is left, one unit at a time, until a
// reconciler pass finds nothing to repair and nothing more sells.
func (h *hammerRun) finish(t *testing.T, q *inmem.Queue) {
	t.Helper()
	ctx := context.Background()
	for round := 0; ; round++ {
		h.settle(t, q)
		if round == 5 {
			t.Fatal("the sale does not settle: still selling or repairing after 5 rounds")
		}
		if err := h.e.svc.RebalanceAll(ctx, 0); err != nil {
			t.Fatal(err)
		}
		reps, err := h.e.svc.Reconcile(ctx, sale.ReconcileConfig{Quiet: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		sold := 0
		for {
			h.next++
			p, err := h.e.place(h.a, h.next, 1, "")
			if domain.IsCode(err, domain.ESoldOut) {
				break
			}
			if err != nil {
				t.Fatalf("sweep: %v", err)
			}
			h.add("ok", p, h.next, "")
			sold++
		}
		if len(reps) == 0 && sold == 0 {
			return
		}
		t.Logf("round %d: %d repairs, %d more sold", round, len(reps), sold)
	}
}

// tickets checks every admitted ticket as its shopper sees it: ended, and true to
// MySQL (created with an order of its shopper, or failed with none). Where Redis lost
// the item, a ticket that wrote nothing because another of its key had (a replay)
// is not known any more; the key's order stands.
func (h *hammerRun) tickets(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for ticket, user := range h.admitted {
		tk, err := h.e.svc.Ticket(ctx, user, ticket)
		if err != nil && !domain.IsCode(err, domain.ENotFound) {
			t.Fatal(err)
		}
		o, written := h.e.orderOf(t, ticket)
		written = written && o.Status != domain.OrderVoid
		switch {
		case err == nil && tk.Status == domain.TicketCreated:
			got, err := h.e.db.Store.Order(ctx, user, tk.OrderID)
			if err != nil || (written && got.ID != o.ID) || (!written && tk.Reason != domain.ReasonReplayed) {
				t.Fatalf("ticket %s of user %d: created %+v, its order %+v (%v), written %v", ticket, user, tk, got, err, written)
			}
		case err == nil && tk.Status == domain.TicketFailed:
			if written {
				t.Fatalf("ticket %s of user %d reads failed (%s) while its order %d exists", ticket, user, tk.Reason, o.ID)
			}
		case err != nil && h.flushes && !written && h.keyOrder(t, user, h.keys[ticket]):
		default:
			t.Fatalf("ticket %s of user %d: got %+v, %v; want it ended", ticket, user, tk, err)
		}
	}
}

// keyOrder reports whether the shopper has an order of the item with key.
func (h *hammerRun) keyOrder(t *testing.T, user int64, key string) bool {
	t.Helper()
	var n int
	if err := h.e.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM orders WHERE item_id = ? AND user_id = ? AND idem_key = ?`,
		h.a.Items[0].ID, user, key).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return key != "" && n == 1
}
