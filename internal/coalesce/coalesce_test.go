package coalesce

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a run function that answers item*10 and keeps every batch it ran; gate,
// when set, holds each run until it is closed.
type recorder struct {
	mu      sync.Mutex
	batches map[string][][]int
	running map[string]int
	most    map[string]int // most runs of a key at once
	gate    chan struct{}
	entered chan string // told of every run's start, when set
}

func newRecorder() *recorder {
	return &recorder{batches: map[string][][]int{}, running: map[string]int{}, most: map[string]int{}}
}

func (r *recorder) run(_ context.Context, key string, items []int) []int {
	r.mu.Lock()
	r.batches[key] = append(r.batches[key], slices.Clone(items))
	r.running[key]++
	r.most[key] = max(r.most[key], r.running[key])
	gate, entered := r.gate, r.entered
	r.mu.Unlock()
	if entered != nil {
		entered <- key
	}
	if gate != nil {
		<-gate
	}
	r.mu.Lock()
	r.running[key]--
	r.mu.Unlock()
	out := make([]int, len(items))
	for i, it := range items {
		out[i] = it * 10
	}
	return out
}

func (r *recorder) sizes(key string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, b := range r.batches[key] {
		out = append(out, len(b))
	}
	return out
}

func TestLoneCallRunsAtOnce(t *testing.T) {
	for _, overlap := range []bool{false, true} {
		t.Run(fmt.Sprintf("overlap %v", overlap), func(t *testing.T) {
			r := newRecorder()
			b := New(Config{Size: 8, Overlap: overlap, Wait: time.Hour}, r.run)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range 3 {
					if got := b.Do(context.Background(), "k", i); got != i*10 {
						t.Errorf("call %d: got %d, want %d", i, got, i*10)
					}
				}
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second): // Wait is an hour: only a waiting call is this slow
				t.Fatal("a lone call waited for others to join")
			}
			if got := r.sizes("k"); !slices.Equal(got, []int{1, 1, 1}) {
				t.Fatalf("got batches of %v, want three of one", got)
			}
			if len(b.keys) != 0 {
				t.Fatalf("got %d keys held after the calls, want none", len(b.keys))
			}
		})
	}
}

// busy starts a lone call of key that holds its run until the returned release.
func busy(t *testing.T, b *Batcher[string, int, int], r *recorder, key string, item int) (release func(), result chan int) {
	t.Helper()
	r.gate = make(chan struct{})
	r.entered = make(chan string, 64)
	result = make(chan int, 1)
	go func() { result <- b.Do(context.Background(), key, item) }()
	if got := <-r.entered; got != key {
		t.Fatalf("got a run of %q, want %q", got, key)
	}
	return func() { close(r.gate) }, result
}

// waitWaiting waits until n callers of key wait in its open and queued batches.
func waitWaiting(t *testing.T, b *Batcher[string, int, int], key string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		got := 0
		if ks := b.keys[key]; ks != nil {
			if ks.open != nil {
				got = len(ks.open.items)
			}
			for _, q := range ks.queued {
				got += len(q.items)
			}
		}
		b.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %q: got %d callers waiting, want %d", key, got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitOpen waits until key's open batch holds n items.
func waitOpen(t *testing.T, b *Batcher[string, int, int], key string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		got := 0
		if ks := b.keys[key]; ks != nil && ks.open != nil {
			got = len(ks.open.items)
		}
		b.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %q: got %d callers in the open batch, want %d", key, got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCallersGatherBehindARunningBatch(t *testing.T) {
	r := newRecorder()
	b := New(Config{Size: 4}, r.run)
	release, first := busy(t, b, r, "k", 100)
	results := make([]chan int, 10)
	for i := range results {
		results[i] = make(chan int, 1)
		go func() { results[i] <- b.Do(context.Background(), "k", i) }()
	}
	// 10 callers behind a running batch, 4 a batch: two full batches queued, two in the open one.
	waitWaiting(t, b, "k", 10)
	waitOpen(t, b, "k", 2)
	if got := r.sizes("k"); !slices.Equal(got, []int{1}) {
		t.Fatalf("while the first runs: got batches %v, want only the first (one at a time)", got)
	}
	release()
	if got := <-first; got != 1000 {
		t.Fatalf("first: got %d, want 1000", got)
	}
	for i, ch := range results {
		if got := <-ch; got != i*10 {
			t.Fatalf("caller %d: got %d, want %d", i, got, i*10)
		}
	}
	got := r.sizes("k")
	slices.Sort(got)
	if !slices.Equal(got, []int{1, 2, 4, 4}) {
		t.Fatalf("got batches of %v, want 1, then 4, 4 and 2", got)
	}
	if r.most["k"] != 1 {
		t.Fatalf("got %d runs of one key at once, want 1 without overlap", r.most["k"])
	}
}

func TestOverlapRunsAWaitedBatchAlongside(t *testing.T) {
	r := newRecorder()
	b := New(Config{Size: 64, Overlap: true, Wait: 5 * time.Millisecond}, r.run)
	release, first := busy(t, b, r, "k", 1)
	second := make(chan int, 1)
	go func() { second <- b.Do(context.Background(), "k", 2) }()
	// The second waits out Wait behind the held first, then runs alongside it.
	select {
	case key := <-r.entered:
		if key != "k" {
			t.Fatalf("got a run of %q", key)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting batch did not run alongside the running one")
	}
	release()
	if a, c := <-first, <-second; a != 10 || c != 20 {
		t.Fatalf("got %d and %d, want 10 and 20", a, c)
	}
	if r.most["k"] != 2 {
		t.Fatalf("got %d runs at once, want 2", r.most["k"])
	}
}

func TestKeysAreApart(t *testing.T) {
	r := newRecorder()
	b := New(Config{Size: 8}, r.run)
	release, first := busy(t, b, r, "a", 1)
	// Another key is idle: its call runs at once although "a" is held.
	done := make(chan int, 1)
	go func() { done <- b.Do(context.Background(), "b", 2) }()
	if key := <-r.entered; key != "b" {
		t.Fatalf("got a run of %q, want b", key)
	}
	release()
	if got := <-done; got != 20 {
		t.Fatalf("got %d, want 20", got)
	}
	<-first
}

// TestHammer: many callers on a few keys, batches held for a moment now and then;
// every item runs exactly once, in a batch of its own key, within the size, and gets
// its own result.
func TestHammer(t *testing.T) {
	for _, cfg := range []Config{{Size: 7}, {Size: 16, Overlap: true, Wait: 200 * time.Microsecond}, {Size: 1}} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			var mu sync.Mutex
			seen := map[int]int{}
			var bad atomic.Int64
			b := New(cfg, func(_ context.Context, key int, items []int) []int {
				if len(items) > cfg.Size {
					bad.Add(1)
				}
				mu.Lock()
				for _, it := range items {
					seen[it]++
					if it%5 != key {
						bad.Add(1)
					}
				}
				mu.Unlock()
				if rand.IntN(4) == 0 {
					time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
				}
				out := make([]int, len(items))
				for i, it := range items {
					out[i] = -it
				}
				return out
			})
			const n = 20_000
			var wg sync.WaitGroup
			for g := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := g; i < n; i += 64 {
						if got := b.Do(context.Background(), i%5, i); got != -i {
							t.Errorf("item %d: got %d", i, got)
						}
					}
				}()
			}
			wg.Wait()
			if len(seen) != n || bad.Load() != 0 {
				t.Fatalf("got %d items seen, %d misplaced or oversized; want %d, 0", len(seen), bad.Load(), n)
			}
			for it, c := range seen {
				if c != 1 {
					t.Fatalf("item %d ran %d times", it, c)
				}
			}
			if len(b.keys) != 0 {
				t.Fatalf("got %d keys held after the calls, want none", len(b.keys))
			}
		})
	}
}

func TestCancelledCallerStillGetsItsResult(t *testing.T) {
	r := newRecorder()
	b := New(Config{Size: 8}, r.run)
	release, first := busy(t, b, r, "k", 1)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan int, 1)
	go func() { got <- b.Do(ctx, "k", 2) }()
	waitOpen(t, b, "k", 1)
	cancel()
	release()
	<-first
	if v := <-got; v != 20 {
		t.Fatalf("got %d, want 20: a caller whose context ended must still learn its item's result", v)
	}
}

// TestPanicReachesEveryCaller: a run that panics makes each caller of its batch panic
// with its value (none waits forever), and the key's next batches still run.
func TestPanicReachesEveryCaller(t *testing.T) {
	var calls atomic.Int64
	gate := make(chan struct{})
	entered := make(chan struct{}, 8)
	b := New(Config{Size: 8}, func(_ context.Context, _ string, items []int) []int {
		entered <- struct{}{}
		<-gate
		if calls.Add(1) == 2 {
			panic("run bug")
		}
		return slices.Clone(items)
	})
	do := func(i int) (got int, p any) {
		defer func() { p = recover() }()
		return b.Do(context.Background(), "k", i), nil
	}
	type res struct {
		got int
		p   any
	}
	out := make(chan res, 4)
	go func() { g, p := do(0); out <- res{g, p} }()
	<-entered // the first runs alone; three gather behind it and panic together
	for i := 1; i <= 3; i++ {
		go func() { g, p := do(i); out <- res{g, p} }()
	}
	waitOpen(t, b, "k", 3)
	close(gate)
	panics := 0
	for range 4 {
		select {
		case r := <-out:
			if r.p != nil {
				if r.p != "run bug" {
					t.Fatalf("got panic %v, want the run's", r.p)
				}
				panics++
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a caller of the panicking batch still waits")
		}
	}
	if panics != 3 {
		t.Fatalf("got %d callers panicking, want the 3 of the batch", panics)
	}
	if got, p := do(9); p != nil || got != 9 {
		t.Fatalf("after the panic: got %d, %v; want the key to run on", got, p)
	}
}

// TestBatchKeepsItsCallersDeadline: a batch runs with the latest of its callers'
// deadlines, and with none when one of them has none.
func TestBatchKeepsItsCallersDeadline(t *testing.T) {
	for _, tt := range []struct {
		name   string
		late   bool // the late joiner has a deadline
		wantDL bool
	}{{"all bounded", true, true}, {"one unbounded", false, false}} {
		gate := make(chan struct{})
		entered := make(chan struct{}, 8)
		var got []time.Time
		var mu sync.Mutex
		b := New(Config{Size: 8}, func(ctx context.Context, _ string, items []int) []int {
			entered <- struct{}{}
			<-gate
			dl, _ := ctx.Deadline()
			mu.Lock()
			got = append(got, dl)
			mu.Unlock()
			return items
		})
		go b.Do(context.Background(), "k", 0) // runs alone, holds the key
		<-entered
		soon, cancel1 := context.WithTimeout(context.Background(), time.Minute)
		defer cancel1()
		later := context.Background()
		if tt.late {
			var cancel2 context.CancelFunc
			later, cancel2 = context.WithTimeout(context.Background(), time.Hour)
			defer cancel2()
		}
		done := make(chan struct{}, 2)
		go func() { b.Do(soon, "k", 1); done <- struct{}{} }()
		waitOpen(t, b, "k", 1)
		go func() { b.Do(later, "k", 2); done <- struct{}{} }()
		waitOpen(t, b, "k", 2)
		close(gate)
		<-done
		<-done
		mu.Lock()
		dl := got[1]
		mu.Unlock()
		if tt.wantDL != !dl.IsZero() || tt.wantDL && time.Until(dl) < 50*time.Minute {
			t.Errorf("%s: the batch ran with deadline %v, want the latest caller's (an hour) or none", tt.name, dl)
		}
	}
}
