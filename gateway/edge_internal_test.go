package gateway

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/rpcerr"
)

// TestLookupsEvictOnlyTheirKind: a flood of unknown ids, many times the null
// objects' room, evicts only null objects: the known entries stay cached (never a
// "clear everything"), and the LRU holds no more than its room.
func TestLookupsEvictOnlyTheirKind(t *testing.T) {
	loads := map[int64]int{}
	l := newLookups("item", time.Minute, func(int64) time.Duration { return time.Minute }, 3, 5, func(_ context.Context, id int64) (int64, error) {
		loads[id]++
		if id >= 100 {
			return 0, rpcerr.ToBiz(domain.Errorf(domain.ENotFound, "item %d not found", id))
		}
		return id * 10, nil
	})
	ctx := context.Background()
	for _, id := range []int64{1, 2, 3} {
		if v, _, err := l.get(ctx, id); err != nil || v != id*10 {
			t.Fatalf("get %d: got %v %v", id, v, err)
		}
	}
	for id := int64(100); id < 1100; id++ {
		if _, cached, err := l.get(ctx, id); !domain.IsCode(err, domain.ENotFound) || cached {
			t.Fatalf("get %d: got cached %v, %v; want a fresh not_found", id, cached, err)
		}
		if _, cached, err := l.get(ctx, id); !domain.IsCode(err, domain.ENotFound) || !cached {
			t.Fatalf("get %d again: got cached %v, %v; want the null object", id, cached, err)
		}
	}
	for _, id := range []int64{1, 2, 3} {
		if _, cached, err := l.get(ctx, id); err != nil || !cached || loads[id] != 1 {
			t.Fatalf("get %d after the flood: got cached %v, %v, %d loads; want it still cached", id, cached, err, loads[id])
		}
	}
	if n := l.missing.Len(); n != 5 {
		t.Fatalf("got %d null objects, want the LRU's 5", n)
	}
}

// TestLoadAcrossADropIsNotKept: a load that began before the entry was dropped (an
// operator's change announced while the backend answered) answers its caller but is
// not cached: the next read loads the changed value, not the old one for a TTL.
func TestLoadAcrossADropIsNotKept(t *testing.T) {
	var version atomic.Int64
	version.Store(1)
	entered, gate := make(chan struct{}, 1), make(chan struct{})
	var loads atomic.Int64
	l := newLookups("activity", time.Hour, func(int64) time.Duration { return time.Hour }, 10, 10, func(_ context.Context, id int64) (int64, error) {
		v := version.Load() // read before the change lands
		if loads.Add(1) == 1 {
			entered <- struct{}{}
			<-gate
		}
		return v, nil
	})
	first := make(chan int64)
	go func() { v, _, _ := l.get(context.Background(), 7); first <- v }()
	<-entered
	version.Store(2) // the change, and its announcement, while the load is out
	l.forget(7)
	close(gate)
	if v := <-first; v != 1 {
		t.Fatalf("the load begun before the change: got %d, want the old 1 (it answers its caller)", v)
	}
	v, cached, err := l.get(context.Background(), 7)
	if err != nil || cached || v != 2 {
		t.Fatalf("next read: got %d (cached %v), %v; want 2 loaded again", v, cached, err)
	}
}
