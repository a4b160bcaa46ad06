package wasm

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"time"
)

// Counters are the shared counters behind seckill.counter_incr: fixed-window
// counters with a time to live, shared by every gateway instance that uses
// the same store.
type Counters interface {
	// Incr adds delta to key and returns the new value. The first increment
	// of a key (or the first after it expired) sets its time to live to ttl;
	// later increments do not extend it.
	Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
}

// ErrCountersFull is returned by MemoryCounters when it holds its maximum
// number of live keys.
var ErrCountersFull = errors.New("counters: too many live keys")

var _ Counters = (*MemoryCounters)(nil)

// MemoryCounters is an in-process Counters: bounded and expiring. It is for
// a single gateway instance (tests, the embedded demo); several instances
// need a shared store (backend/redis.PluginCounters keeps them in Redis).
type MemoryCounters struct {
	seed   maphash.Seed
	shards [memoryShards]memoryShard
	max    int // live keys per shard
	now    func() time.Time
}

const memoryShards = 32

type memoryShard struct {
	mu sync.Mutex
	m  map[string]memoryCounter
	// nextSweep is when sweeping may free a slot again: the earliest expiry
	// seen by the last sweep that found the shard full.
	nextSweep time.Time
}

type memoryCounter struct {
	value   int64
	expires time.Time
}

// NewMemoryCounters returns MemoryCounters holding at most maxKeys live keys
// (at least memoryShards; 0 means 1<<20). When full, an increment of a new key
// fails with ErrCountersFull rather than evicting a live counter, which
// would let a flood of new keys reset the limits of others.
func NewMemoryCounters(maxKeys int) *MemoryCounters {
	if maxKeys <= 0 {
		maxKeys = 1 << 20
	}
	perShard := (maxKeys + memoryShards - 1) / memoryShards
	c := &MemoryCounters{seed: maphash.MakeSeed(), max: perShard, now: time.Now}
	for i := range c.shards {
		c.shards[i].m = make(map[string]memoryCounter)
	}
	return c
}

// Incr implements Counters.
func (c *MemoryCounters) Incr(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, errors.New("counters: ttl must be positive")
	}
	s := &c.shards[maphash.String(c.seed, key)%memoryShards]
	now := c.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.m[key]
	if ok && now.Before(cur.expires) {
		cur.value += delta
		s.m[key] = cur
		return cur.value, nil
	}
	if !ok && len(s.m) >= c.max {
		s.sweep(now)
		if len(s.m) >= c.max {
			return 0, ErrCountersFull
		}
	}
	s.m[key] = memoryCounter{value: delta, expires: now.Add(ttl)}
	return delta, nil
}

// sweep deletes expired keys. It scans at most once per expiry: until the
// earliest expiry seen by the last scan, nothing can have expired.
func (s *memoryShard) sweep(now time.Time) {
	if now.Before(s.nextSweep) {
		return
	}
	var earliest time.Time
	for k, v := range s.m {
		if !now.Before(v.expires) {
			delete(s.m, k)
			continue
		}
		if earliest.IsZero() || v.expires.Before(earliest) {
			earliest = v.expires
		}
	}
	s.nextSweep = earliest
}

// Len is the number of keys held, expired or not (for tests and metrics).
func (c *MemoryCounters) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
