package wasm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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

// mustRedis returns a client of the Redis at SECKILL_REDIS_ADDR, or skips.
func mustRedis(tb testing.TB) *redis.Client {
	tb.Helper()
	addr := os.Getenv("SECKILL_REDIS_ADDR")
	if addr == "" {
		tb.Skip("SECKILL_REDIS_ADDR is not set: skipping the Redis counters test (CI sets it)")
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	tb.Cleanup(func() {
		if err := rdb.Close(); err != nil {
			tb.Errorf("close redis: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		tb.Fatalf("redis at %s: %v", addr, err)
	}
	return rdb
}

func TestRedisCounters(t *testing.T) {
	rdb := mustRedis(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("sk:wasm:test:%d:", time.Now().UnixNano())
	c := NewRedisCounters(rdb, prefix)
	t.Cleanup(func() {
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			err = rdb.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	for i, want := range []int64{1, 2, 3} {
		got, err := c.Incr(ctx, "k", 1, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("incr %d: got %d, want %d", i, got, want)
		}
	}
	ttl, err := rdb.PTTL(ctx, prefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 50*time.Second || ttl > time.Minute {
		t.Errorf("got ttl %v, want about 1m (set once)", ttl)
	}
	// The ttl is set by the first increment only.
	if _, err := c.Incr(ctx, "k", 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := rdb.PTTL(ctx, prefix+"k").Result(); ttl > time.Minute {
		t.Errorf("got ttl %v after a later increment, want it unchanged (<= 1m)", ttl)
	}
	// Expiry starts a new window.
	if v, _ := c.Incr(ctx, "short", 1, 50*time.Millisecond); v != 1 {
		t.Fatalf("got %d, want 1", v)
	}
	time.Sleep(120 * time.Millisecond)
	if v, err := c.Incr(ctx, "short", 1, 50*time.Millisecond); err != nil || v != 1 {
		t.Errorf("after expiry: got %d, %v, want 1", v, err)
	}
	// Script cache flushed: Run falls back to EVAL.
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Incr(ctx, "k", 1, time.Minute); err != nil || v != 5 {
		t.Errorf("after SCRIPT FLUSH: got %d, %v, want 5", v, err)
	}
}

// TestRedisCounters_SharedAcrossManagers: two managers (two gateway
// instances) with the attemptlimit plugin share one limit through Redis.
func TestRedisCounters_SharedAcrossManagers(t *testing.T) {
	rdb := mustRedis(t)
	prefix := fmt.Sprintf("sk:wasm:test:%d:", time.Now().UnixNano())
	var ms []*Manager
	for range 2 {
		m := newTestManager(t, Options{Counters: NewRedisCounters(rdb, prefix)})
		mustPut(t, m, "attemptlimit", Spec{Wasm: mustReadWasm(t, attemptlimitWasm), Config: []byte(`{"max":4,"window_ms":60000}`), FailPolicy: FailClosed})
		ms = append(ms, m)
	}
	admitted := 0
	for i := range 10 {
		if v, _ := handle(ms[i%2], newTestHost("X-Seckill-User", "7")); v.Admitted {
			admitted++
		}
	}
	if admitted != 4 {
		t.Errorf("got %d admitted across two gateways, want 4", admitted)
	}
	keys, err := rdb.Keys(context.Background(), prefix+"*").Result()
	if err == nil && len(keys) > 0 {
		err = rdb.Del(context.Background(), keys...).Err()
	}
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
}
