package worker

import (
	"context"
	"sync"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/mysql"
)

// batcher gathers orders of the same item and bucket that arrive within a window and
// writes them in one transaction. The first order of a group waits up to the window
// (or until the group is full) and then writes the group; the others wait for their
// share of the result. The callers' own concurrency bounds how many groups are written
// at once.
type batcher struct {
	writeFn func(context.Context, []domain.OrderRequest, int) ([]mysql.Written, []error)
	size    int
	window  time.Duration

	mu     sync.Mutex
	groups map[batchKey]*group
}

type batchKey struct {
	item   int64
	bucket int
	limit  int
}

type group struct {
	reqs    []domain.OrderRequest
	results []chan batchResult
	full    chan struct{}
}

type batchResult struct {
	w   mysql.Written
	err error
}

func newBatcher(fn func(context.Context, []domain.OrderRequest, int) ([]mysql.Written, []error), size int, window time.Duration) *batcher {
	return &batcher{writeFn: fn, size: size, window: window, groups: map[batchKey]*group{}}
}

func (b *batcher) write(ctx context.Context, r domain.OrderRequest, limit int) (mysql.Written, error) {
	key := batchKey{item: r.ItemID, bucket: r.Bucket, limit: limit}
	res := make(chan batchResult, 1)
	b.mu.Lock()
	g, ok := b.groups[key]
	leader := !ok
	if leader {
		g = &group{full: make(chan struct{})}
		b.groups[key] = g
	}
	g.reqs = append(g.reqs, r)
	g.results = append(g.results, res)
	if len(g.reqs) >= b.size {
		delete(b.groups, key) // the next order starts a new group
		close(g.full)
	}
	b.mu.Unlock()

	if leader {
		t := time.NewTimer(b.window)
		select {
		case <-g.full:
		case <-t.C:
		}
		t.Stop()
		b.mu.Lock()
		if b.groups[key] == g {
			delete(b.groups, key)
		}
		b.mu.Unlock()
		// The group is closed to newcomers now; write it even if this caller's context
		// ends, since others wait on it.
		written, errs := b.writeFn(context.WithoutCancel(ctx), g.reqs, limit)
		for i, ch := range g.results {
			ch <- batchResult{w: written[i], err: errs[i]}
		}
	}
	select {
	case out := <-res:
		return out.w, out.err
	case <-ctx.Done():
		return mysql.Written{}, ctx.Err()
	}
}
