package worker

import (
	"context"
	"sync"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// batcher gathers orders of the same item and bucket that arrive within a window and
// writes them in one transaction. The first order of a group (its leader) waits up to
// the window, or until the group is full, and then writes the group; the others wait
// for their share of the result.
//
// One group of a key is written at a time: a group whose window ends while the key's
// previous group is still being written stays open, and goes on filling, until that
// write ends (group commit). So a worker never races itself on a stock row's version,
// and the busier the row, the bigger its batches. The callers' own concurrency bounds
// how many groups are written at once.
type batcher struct {
	writeFn func(context.Context, []domain.OrderRequest, int) ([]domain.Written, []error)
	size    int
	window  time.Duration

	mu   sync.Mutex
	keys map[batchKey]*keyState
}

type batchKey struct {
	item   int64
	bucket int
	limit  int
}

// keyState is a key's open group and the lock its writes take in turn. leaders counts
// the groups of the key not yet written; the state goes when none is left.
type keyState struct {
	open    *group
	leaders int
	writing sync.Mutex
}

type group struct {
	reqs    []domain.OrderRequest
	results []chan batchResult
	full    chan struct{}
}

type batchResult struct {
	w   domain.Written
	err error
}

func newBatcher(fn func(context.Context, []domain.OrderRequest, int) ([]domain.Written, []error), size int, window time.Duration) *batcher {
	return &batcher{writeFn: fn, size: size, window: window, keys: map[batchKey]*keyState{}}
}

func (b *batcher) write(ctx context.Context, r domain.OrderRequest, limit int) (domain.Written, error) {
	key := batchKey{item: r.ItemID, bucket: r.Bucket, limit: limit}
	res := make(chan batchResult, 1)
	b.mu.Lock()
	ks := b.keys[key]
	if ks == nil {
		ks = &keyState{}
		b.keys[key] = ks
	}
	g := ks.open
	leader := g == nil
	if leader {
		g = &group{full: make(chan struct{})}
		ks.open = g
		ks.leaders++
	}
	g.reqs = append(g.reqs, r)
	g.results = append(g.results, res)
	if len(g.reqs) >= b.size {
		ks.open = nil // the next order starts a new group
		close(g.full)
	}
	b.mu.Unlock()

	if leader {
		b.lead(ctx, key, ks, g, limit)
	}
	select {
	case out := <-res:
		return out.w, out.err
	case <-ctx.Done():
		return domain.Written{}, ctx.Err()
	}
}

// lead waits out g's window, then its turn to write, and writes it.
func (b *batcher) lead(ctx context.Context, key batchKey, ks *keyState, g *group, limit int) {
	t := time.NewTimer(b.window)
	select {
	case <-g.full:
	case <-t.C:
	}
	t.Stop()
	ks.writing.Lock()
	b.mu.Lock()
	if ks.open == g {
		ks.open = nil // closed to newcomers from here on
	}
	b.mu.Unlock()
	// Others wait on the group: write it even if this caller's context ends.
	written, errs := b.writeFn(context.WithoutCancel(ctx), g.reqs, limit)
	ks.writing.Unlock()
	for i, ch := range g.results {
		ch <- batchResult{w: written[i], err: errs[i]}
	}
	b.mu.Lock()
	if ks.leaders--; ks.leaders == 0 {
		delete(b.keys, key)
	}
	b.mu.Unlock()
}
