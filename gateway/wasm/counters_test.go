package wasm

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for MemoryCounters.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestMemoryCounters(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	c := NewMemoryCounters(0)
	c.now = clock.Now
	ctx := context.Background()
	steps := []struct {
		advance time.Duration
		key     string
		delta   int64
		want    int64
	}{
		{0, "a", 1, 1},
		{time.Second, "a", 1, 2},
		{0, "a", 5, 7},
		{0, "b", -3, -3},
		{8 * time.Second, "a", 1, 8}, // 9s after the first increment: still alive
		{time.Second, "a", 1, 1},     // 10s: expired, a new window
		{9 * time.Second, "a", 1, 2}, // the window is not extended by increments
		{time.Second, "a", 1, 1},
	}
	for i, s := range steps {
		clock.Add(s.advance)
		got, err := c.Incr(ctx, s.key, s.delta, 10*time.Second)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got != s.want {
			t.Errorf("step %d: got %d, want %d", i, got, s.want)
		}
	}
	if _, err := c.Incr(ctx, "a", 1, 0); err == nil {
		t.Errorf("ttl 0: got no error, want one")
	}
}

func TestMemoryCounters_Bounded(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	c := NewMemoryCounters(memoryShards) // one key per shard
	c.now = clock.Now
	ctx := context.Background()
	full := 0
	for i := range 10 * memoryShards {
		if _, err := c.Incr(ctx, strconv.Itoa(i), 1, time.Second); errors.Is(err, ErrCountersFull) {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Len(); got > memoryShards {
		t.Errorf("got %d keys, want at most %d", got, memoryShards)
	}
	if full == 0 {
		t.Errorf("got no ErrCountersFull, want some")
	}
	// Live counters are never evicted: an existing key still counts.
	clock.Add(500 * time.Millisecond)
	for i := range 10 * memoryShards {
		if v, err := c.Incr(ctx, strconv.Itoa(i), 1, time.Second); err == nil && v != 2 {
			t.Fatalf("key %d: got %d, want 2", i, v)
		}
	}
	// Expired keys make room.
	clock.Add(time.Second)
	for i := range memoryShards {
		if _, err := c.Incr(ctx, "new"+strconv.Itoa(i), 1, time.Second); err != nil && !errors.Is(err, ErrCountersFull) {
			t.Fatal(err)
		}
	}
	if got := c.Len(); got > memoryShards {
		t.Errorf("after expiry: got %d keys, want at most %d", got, memoryShards)
	}
}
