package redis_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/testenv"
)

// allowAll runs n checks of key(i) at once and returns each one's answer.
func allowAll(t *testing.T, s *redis.SharedLimiter, n int, key func(i int) string, rps float64, burst func(i int) int) ([]bool, []time.Duration) {
	t.Helper()
	ok, wait := make([]bool, n), make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			if ok[i], wait[i], err = s.Allow(context.Background(), key(i), rps, burst(i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	return ok, wait
}

// TestSharedLimiterBurstAndRate: one key hammered from many goroutines at once gets
// its burst and then its rate, no more and hardly less, and a refusal says when the
// next token is due.
func TestSharedLimiterBurstAndRate(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := redis.NewSharedLimiter(rdb, "test-"+testenv.ID())
			const rps, burst = 10.0, 20
			start := time.Now()
			ok, _ := allowAll(t, s, 256, func(int) string { return "u:1" }, rps, func(int) int { return burst })
			first := 0
			for _, o := range ok {
				if o {
					first++
				}
			}
			if most := burst + int(time.Since(start).Seconds()*rps); first < burst || first > most {
				t.Fatalf("256 checks at once: %d allowed, want %d (the burst; at most %d with what refilled meanwhile)", first, burst, most)
			}

			var allowed atomic.Int64
			allowed.Add(int64(first))
			until := start.Add(1500 * time.Millisecond)
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					for time.Now().Before(until) {
						ok, wait, err := s.Allow(context.Background(), "u:1", rps, burst)
						switch {
						case err != nil:
							t.Error(err)
							return
						case ok:
							allowed.Add(1)
						case wait <= 0 || wait > time.Second/rps:
							t.Errorf("refused with retry after %s, want within (0, %s]", wait, time.Second/rps)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start).Seconds()
			got, least, most := allowed.Load(), int64(burst+int(1.5*rps))-1, int64(burst+int(elapsed*rps))
			if got < least || got > most {
				t.Fatalf("hammered for %.2fs: %d allowed, want %d to %d (burst %d, then %g a second)", elapsed, got, least, most, burst, rps)
			}
		})
	}
}

// TestSharedLimiterKeysApart: the checks of many keys in one batch each take from
// their own bucket.
func TestSharedLimiterKeysApart(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := redis.NewSharedLimiter(rdb, "test-"+testenv.ID())
			const keys, tries = 200, 6
			burst := func(i int) int { return 1 + i%keys%5 }
			ok, _ := allowAll(t, s, keys*tries, func(i int) string { return "u:" + strconv.Itoa(i%keys) }, 0.001, burst)
			got := make([]int, keys)
			for i, o := range ok {
				if o {
					got[i%keys]++
				}
			}
			for k, n := range got {
				if n != burst(k) {
					t.Errorf("key %d: %d of %d checks allowed, want %d (its burst)", k, n, tries, burst(k))
				}
			}
		})
	}
}

// TestSharedLimiterFractionalRate: a rate under one a second, or not whole, spaces
// the tokens by its interval.
func TestSharedLimiterFractionalRate(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := redis.NewSharedLimiter(rdb, "test-"+testenv.ID())
			for _, tt := range []struct {
				rps      float64
				interval time.Duration
			}{{0.5, 2 * time.Second}, {2.5, 400 * time.Millisecond}} {
				key := "u:" + strconv.FormatFloat(tt.rps, 'f', -1, 64)
				if ok, _, err := s.Allow(ctx, key, tt.rps, 1); !ok || err != nil {
					t.Fatalf("%g/s: first check: %v, %v, want allowed", tt.rps, ok, err)
				}
				ok, wait, err := s.Allow(ctx, key, tt.rps, 1)
				if ok || err != nil || wait <= tt.interval-100*time.Millisecond || wait > tt.interval {
					t.Fatalf("%g/s: second check at once: %v, retry after %s, %v; want refused, retry after nearly %s", tt.rps, ok, wait, err, tt.interval)
				}
				time.Sleep(wait)
				if ok, wait, err := s.Allow(ctx, key, tt.rps, 1); !ok || err != nil {
					t.Fatalf("%g/s: check once the token is due: %v (retry after %s), %v; want allowed", tt.rps, ok, wait, err)
				}
			}
		})
	}
}

// TestSharedLimiterScriptFlushed: a batch that meets an empty script cache loads the
// script and runs again, each check once.
func TestSharedLimiterScriptFlushed(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			s := redis.NewSharedLimiter(rdb, "test-"+testenv.ID())
			if err := rdb.ScriptFlush(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			ok, _ := allowAll(t, s, 64, func(i int) string { return "u:" + strconv.Itoa(i%16) }, 0.001, func(int) int { return 2 })
			n := 0
			for _, o := range ok {
				if o {
					n++
				}
			}
			if n != 32 {
				t.Fatalf("16 keys of burst 2, 4 checks each, after SCRIPT FLUSH: %d allowed, want 32", n)
			}
		})
	}
}

// TestSharedLimiterRedisDown: when Redis cannot be reached every check of a batch
// allows, with the error, and none waits long.
func TestSharedLimiterRedisDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	s := redis.NewSharedLimiter(rdb, "test-"+testenv.ID())
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 64 {
		wg.Go(func() {
			ok, _, err := s.Allow(context.Background(), "u:"+strconv.Itoa(i), 1, 1)
			if !ok || err == nil {
				t.Errorf("check %d with Redis down: %v, %v; want allowed with an error", i, ok, err)
			} else {
				failed.Add(1)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("64 checks with Redis down: %d answered after 10s", failed.Load())
	}
}

// pipelines counts a client's pipelines: round trips of batches.
type pipelines struct{ n atomic.Int64 }

func (*pipelines) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (*pipelines) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }
func (p *pipelines) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		p.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestSharedLimiterBatches: checks that arrive together share round trips.
func TestSharedLimiterBatches(t *testing.T) {
	rdb := testenv.Redis(t)
	s := redis.NewSharedLimiter(rdb, "test-"+testenv.ID())
	if _, _, err := s.Allow(context.Background(), "u:0", 1e6, 1e6); err != nil { // the script loaded
		t.Fatal(err)
	}
	var trips pipelines
	rdb.AddHook(&trips)
	const callers, each = 64, 20
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				if _, _, err := s.Allow(context.Background(), "u:"+strconv.Itoa(c*each+i), 1e6, 1e6); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n := trips.n.Load()
	t.Logf("%d checks by %d callers at once: %d round trips", callers*each, callers, n)
	if n >= callers*each/2 {
		t.Fatalf("%d checks by %d callers at once took %d round trips, want far fewer (batches)", callers*each, callers, n)
	}
}
