// Package coalesce turns calls of one key that arrive together into one batch: one
// call of a function with every caller's item, each caller getting its own result.
//
// A call that finds its key idle runs at once, alone: batching never delays a lone
// caller. A call that finds the key busy (a batch of it running) joins the key's open
// batch, or opens one. An open batch runs when it is full, or when the key's running
// batches end, or (Overlap) once it has waited Config.Wait, alongside them. Under load
// the batches grow by themselves: the longer a call takes, the more callers gather
// behind it.
package coalesce

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Config shapes the batches.
type Config struct {
	// Size is the most items in one batch; 1 runs every call on its own.
	Size int
	// Overlap lets batches of one key run at the same time: an open batch runs when it
	// is full, when the key goes idle, or after Wait, whichever comes first. Without
	// it, the batches of a key run one at a time, in the order they filled, and an open
	// batch runs when the one before it ends (Wait is not used): for writes that
	// contend on one row, where two at once only make one of them try again.
	Overlap bool
	Wait    time.Duration
}

// Batcher runs the calls of each key in batches. It is safe for concurrent use.
type Batcher[K comparable, T, R any] struct {
	run func(ctx context.Context, key K, items []T) []R
	cfg Config

	mu   sync.Mutex
	keys map[K]*keyState[T, R]
}

type keyState[T, R any] struct {
	running int
	open    *batch[T, R]   // gathering callers
	queued  []*batch[T, R] // full, waiting their turn (without Overlap)
}

type batch[T, R any] struct {
	items   []T
	out     []R
	started bool          // its leader has been told to run it
	start   chan struct{} // closed to tell the leader
	done    chan struct{} // closed when out is filled, or run panicked
	// panicked is what run panicked with: every caller of the batch panics with it.
	panicked any
	// deadline is the latest of its callers' deadlines; unbounded when one had none.
	deadline  time.Time
	unbounded bool
}

// join records a caller's deadline in bt. The caller holds mu.
func (bt *batch[T, R]) join(ctx context.Context) {
	dl, ok := ctx.Deadline()
	switch {
	case !ok:
		bt.unbounded = true
	case dl.After(bt.deadline):
		bt.deadline = dl
	}
}

// New returns a Batcher that runs batches with run. run gets the items in the order
// their calls joined and must return one result for each, in the same order. A batch
// of several callers runs with its first caller's context without its cancellation
// (the others wait on it) and with the latest of their deadlines (none when one of
// them had none); a lone caller's call runs with its own context. When run panics,
// every caller of the batch panics with the same value, and the key runs on.
func New[K comparable, T, R any](cfg Config, run func(ctx context.Context, key K, items []T) []R) *Batcher[K, T, R] {
	cfg.Size = max(cfg.Size, 1)
	return &Batcher[K, T, R]{run: run, cfg: cfg, keys: map[K]*keyState[T, R]{}}
}

// Do runs item in a batch of key and returns its result. It waits for the result
// whatever ctx does: the batch may hold other callers' items, and an item handed to
// run must have its result seen.
func (b *Batcher[K, T, R]) Do(ctx context.Context, key K, item T) R {
	b.mu.Lock()
	ks := b.keys[key]
	if ks == nil {
		ks = &keyState[T, R]{}
		b.keys[key] = ks
	}
	if bt := ks.open; bt != nil {
		i := len(bt.items)
		bt.items = append(bt.items, item)
		bt.join(ctx)
		if len(bt.items) >= b.cfg.Size {
			ks.open = nil
			b.ready(ks, bt)
		}
		b.mu.Unlock()
		<-bt.done
		if bt.panicked != nil {
			panic(bt.panicked)
		}
		return bt.out[i]
	}
	if ks.running == 0 && len(ks.queued) == 0 {
		ks.running++ // idle: run alone, now
		b.mu.Unlock()
		return b.exec(ctx, key, ks, []T{item})[0]
	}
	bt := &batch[T, R]{items: []T{item}, start: make(chan struct{}), done: make(chan struct{})}
	bt.join(ctx)
	if b.cfg.Size <= 1 {
		b.ready(ks, bt)
	} else {
		ks.open = bt
	}
	b.mu.Unlock()

	// Lead the batch: wait for its turn, then run it for everyone in it.
	var timeout <-chan time.Time
	if b.cfg.Overlap && b.cfg.Wait > 0 {
		t := time.NewTimer(b.cfg.Wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-bt.start:
	case <-timeout:
	}
	b.mu.Lock()
	if ks.open == bt {
		ks.open = nil
	}
	if !bt.started { // waited long enough: run alongside the running ones
		b.begin(ks, bt)
	}
	// No caller joins once it started: its deadline is final.
	ctx = context.WithoutCancel(ctx)
	if !bt.unbounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, bt.deadline)
		defer cancel()
	}
	b.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			bt.panicked = p
			close(bt.done)
			panic(p)
		}
	}()
	bt.out = b.exec(ctx, key, ks, bt.items)
	close(bt.done)
	return bt.out[0]
}

// ready hands a batch that takes no more callers on to run: at once with Overlap or
// when the key is idle, else after the batches queued before it. The caller holds mu.
func (b *Batcher[K, T, R]) ready(ks *keyState[T, R], bt *batch[T, R]) {
	if b.cfg.Overlap || ks.running == 0 && len(ks.queued) == 0 {
		b.begin(ks, bt)
		return
	}
	ks.queued = append(ks.queued, bt)
}

// begin tells bt's leader to run it. The caller holds mu.
func (b *Batcher[K, T, R]) begin(ks *keyState[T, R], bt *batch[T, R]) {
	bt.started = true
	ks.running++
	close(bt.start)
}

// exec runs items and hands the key's next batch on, also when run panics (the
// panic goes on to the callers).
func (b *Batcher[K, T, R]) exec(ctx context.Context, key K, ks *keyState[T, R], items []T) []R {
	defer b.finish(key, ks)
	out := b.run(ctx, key, items)
	if len(out) != len(items) {
		panic(fmt.Sprintf("coalesce: run returned %d results for %d items", len(out), len(items)))
	}
	return out
}

// finish ends a run of key: the next batch waiting its turn, if any, runs.
func (b *Batcher[K, T, R]) finish(key K, ks *keyState[T, R]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ks.running--
	switch {
	case len(ks.queued) > 0 && ks.running == 0:
		next := ks.queued[0]
		ks.queued = ks.queued[1:]
		b.begin(ks, next)
	case ks.open != nil && ks.running == 0:
		next := ks.open
		ks.open = nil
		b.begin(ks, next)
	}
	if ks.running == 0 && ks.open == nil && len(ks.queued) == 0 {
		delete(b.keys, key)
	}
}
