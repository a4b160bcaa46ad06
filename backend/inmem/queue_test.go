package inmem

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// req returns a valid request for item and bucket, named by ticket.
func req(ticket string, item int64, bucket int) domain.OrderRequest {
	return domain.OrderRequest{Ticket: ticket, UserID: 1, ActivityID: 1, ItemID: item, Bucket: bucket, Quantity: 1}
}

// mustPublish publishes every request or fails the test.
func mustPublish(tb testing.TB, q *Queue, rs ...domain.OrderRequest) {
	tb.Helper()
	for _, r := range rs {
		if err := q.Publish(context.Background(), r); err != nil {
			tb.Fatalf("publish %s: %v", r.Ticket, err)
		}
	}
}

// mustSubscribe subscribes h and stops the subscription when the test ends.
func mustSubscribe(tb testing.TB, q *Queue, h domain.HandlerFunc) (stop func() error) {
	tb.Helper()
	stop, err := q.Subscribe(h)
	if err != nil {
		tb.Fatalf("subscribe: %v", err)
	}
	tb.Cleanup(func() { stop() })
	return stop
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recorder is a handler that records every batch it sees and answers with fail.
type recorder struct {
	mu      sync.Mutex
	batches [][]domain.Delivery
	fail    func(batch []domain.Delivery) error
}

func (r *recorder) Handle(_ context.Context, batch []domain.Delivery) error {
	r.mu.Lock()
	r.batches = append(r.batches, slices.Clone(batch))
	r.mu.Unlock()
	if r.fail != nil {
		return r.fail(batch)
	}
	return nil
}

func (r *recorder) seen() [][]domain.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

func (r *recorder) deliveries() int {
	n := 0
	for _, b := range r.seen() {
		n += len(b)
	}
	return n
}

// tickets renders batches as "t1,t2|t3" for comparison.
func tickets(batches [][]domain.Delivery) string {
	var parts []string
	for _, b := range batches {
		var ts []string
		for _, d := range b {
			ts = append(ts, d.Request.Ticket)
		}
		parts = append(parts, strings.Join(ts, ","))
	}
	return strings.Join(parts, "|")
}

func TestDeliveryOrder(t *testing.T) {
	q := New(Config{Goroutines: 1, BatchSize: 1, MaxAttempts: 3})
	var want []string
	for i := range 20 {
		r := req(fmt.Sprintf("t%d", i), int64(i%3+1), i%2)
		mustPublish(t, q, r)
		want = append(want, r.Ticket)
	}
	rec := &recorder{}
	mustSubscribe(t, q, rec.Handle)
	waitFor(t, "20 deliveries", func() bool { return rec.deliveries() == 20 })

	if got, want := tickets(rec.seen()), strings.Join(want, "|"); got != want {
		t.Errorf("got order %s, want %s", got, want)
	}
	ids := map[string]bool{}
	for _, b := range rec.seen() {
		d := b[0]
		if d.Attempt != 1 || d.Last || d.Malformed != nil {
			t.Errorf("delivery %s: got attempt %d last %v malformed %v, want 1 false nil", d.Request.Ticket, d.Attempt, d.Last, d.Malformed)
		}
		if d.ID == "" || ids[d.ID] {
			t.Errorf("delivery %s: got id %q, want a new non-empty id", d.Request.Ticket, d.ID)
		}
		ids[d.ID] = true
	}
	waitFor(t, "acks", func() bool { return q.Len() == 0 })
	if got := q.Stats(); got.Published != 20 || got.Acked != 20 || got.Delivered != 20 || got.Held != 0 {
		t.Errorf("got stats %+v, want 20 published, delivered and acked, none held", got)
	}
}

func TestBatchGrouping(t *testing.T) {
	// Items a=1, b=2 (bucket 0), and item 1 bucket 1 as c.
	a := func(n int) domain.OrderRequest { return req(fmt.Sprintf("a%d", n), 1, 0) }
	b := func(n int) domain.OrderRequest { return req(fmt.Sprintf("b%d", n), 2, 0) }
	c := func(n int) domain.OrderRequest { return req(fmt.Sprintf("c%d", n), 1, 1) }
	published := []domain.OrderRequest{a(1), b(1), a(2), c(1), a(3), a(4), b(2), c(2)}
	tests := []struct {
		batchSize int
		want      string
	}{
		{1, "a1|b1|a2|c1|a3|a4|b2|c2"},
		{2, "a1,a2|b1,b2|c1,c2|a3,a4"},
		{3, "a1,a2,a3|b1,b2|c1,c2|a4"},
		{10, "a1,a2,a3,a4|b1,b2|c1,c2"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("batch%d", tt.batchSize), func(t *testing.T) {
			q := New(Config{Goroutines: 1, BatchSize: tt.batchSize})
			mustPublish(t, q, published...)
			rec := &recorder{}
			mustSubscribe(t, q, rec.Handle)
			waitFor(t, "every delivery", func() bool { return rec.deliveries() == len(published) })
			if got := tickets(rec.seen()); got != tt.want {
				t.Errorf("got batches %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRedelivery(t *testing.T) {
	tests := []struct {
		name         string
		failures     int // deliveries the handler fails before it succeeds
		maxAttempts  int
		wantAttempts []int
		wantLast     []bool
		want         Stats
	}{
		{"succeeds first", 0, 3, []int{1}, []bool{false}, Stats{Published: 1, Delivered: 1, Acked: 1}},
		{"succeeds on retry", 2, 5, []int{1, 2, 3}, []bool{false, false, false}, Stats{Published: 1, Delivered: 3, Acked: 1, Redelivered: 2}},
		{"succeeds on last", 2, 3, []int{1, 2, 3}, []bool{false, false, true}, Stats{Published: 1, Delivered: 3, Acked: 1, Redelivered: 2}},
		{"dead letter", 100, 3, []int{1, 2, 3}, []bool{false, false, true}, Stats{Published: 1, Delivered: 3, Redelivered: 2, DeadLetters: 1}},
		{"one attempt", 100, 1, []int{1}, []bool{true}, Stats{Published: 1, Delivered: 1, DeadLetters: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(Config{Goroutines: 2, MaxAttempts: tt.maxAttempts, Backoff: time.Millisecond})
			var calls atomic.Int32
			rec := &recorder{fail: func([]domain.Delivery) error {
				if int(calls.Add(1)) <= tt.failures {
					return errors.New("write failed")
				}
				return nil
			}}
			mustPublish(t, q, req("t1", 1, 0))
			mustSubscribe(t, q, rec.Handle)
			waitFor(t, "the message to leave the queue", func() bool { return q.Len() == 0 })

			var attempts []int
			var last []bool
			for _, b := range rec.seen() {
				attempts = append(attempts, b[0].Attempt)
				last = append(last, b[0].Last)
				if b[0].ID != rec.seen()[0][0].ID {
					t.Errorf("got id %s on a redelivery, want %s", b[0].ID, rec.seen()[0][0].ID)
				}
			}
			if !slices.Equal(attempts, tt.wantAttempts) {
				t.Errorf("got attempts %v, want %v", attempts, tt.wantAttempts)
			}
			if !slices.Equal(last, tt.wantLast) {
				t.Errorf("got last flags %v, want %v", last, tt.wantLast)
			}
			if got := q.Stats(); got != tt.want {
				t.Errorf("got stats %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFailedBatchRedeliveredWhole(t *testing.T) {
	q := New(Config{Goroutines: 1, BatchSize: 4, MaxAttempts: 3, Backoff: time.Millisecond})
	var calls atomic.Int32
	rec := &recorder{fail: func([]domain.Delivery) error {
		if calls.Add(1) == 1 {
			return errors.New("transient")
		}
		return nil
	}}
	mustPublish(t, q, req("a1", 1, 0), req("a2", 1, 0), req("a3", 1, 0))
	mustSubscribe(t, q, rec.Handle)
	waitFor(t, "acks", func() bool { return q.Stats().Acked == 3 })

	seen := rec.seen()
	if got, want := tickets(seen), "a1,a2,a3|a1,a2,a3"; got != want {
		t.Fatalf("got batches %s, want %s", got, want)
	}
	for i, b := range seen {
		for _, d := range b {
			if d.Attempt != i+1 {
				t.Errorf("batch %d %s: got attempt %d, want %d", i, d.Request.Ticket, d.Attempt, i+1)
			}
		}
	}
}

func TestBackoff(t *testing.T) {
	q := New(Config{Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{1, 10 * time.Millisecond},
		{2, 20 * time.Millisecond},
		{3, 40 * time.Millisecond},
		{4, 50 * time.Millisecond},
		{30, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := q.backoff(tt.attempt); got != tt.want {
			t.Errorf("backoff after attempt %d: got %v, want %v", tt.attempt, got, tt.want)
		}
	}
}

func TestRedeliveryWaitsOutBackoff(t *testing.T) {
	const backoff = 30 * time.Millisecond
	q := New(Config{Goroutines: 1, MaxAttempts: 3, Backoff: backoff})
	var mu sync.Mutex
	var at []time.Time
	mustPublish(t, q, req("t1", 1, 0))
	mustSubscribe(t, q, func(context.Context, []domain.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		return errors.New("fail")
	})
	waitFor(t, "dead letter", func() bool { return q.Stats().DeadLetters == 1 })
	mu.Lock()
	defer mu.Unlock()
	for i, want := range []time.Duration{backoff, 2 * backoff} {
		if got := at[i+1].Sub(at[i]); got < want {
			t.Errorf("gap before attempt %d: got %v, want at least %v", i+2, got, want)
		}
	}
}

func TestStop(t *testing.T) {
	q := New(Config{Goroutines: 1, MaxAttempts: 5, Backoff: time.Millisecond})
	mustPublish(t, q, req("t1", 1, 0), req("t2", 2, 0), req("t3", 3, 0))

	inHand := make(chan struct{})
	release := make(chan error)
	stop := mustSubscribe(t, q, func(_ context.Context, b []domain.Delivery) error {
		inHand <- struct{}{}
		return <-release
	})
	<-inHand // t1 is in hand

	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("stop returned while a batch was in hand")
	case <-time.After(50 * time.Millisecond):
	}
	release <- errors.New("not written") // t1 fails: it stays for a later subscription
	<-stopped
	if err := stop(); err != nil {
		t.Errorf("second stop: got %v, want nil", err)
	}
	select {
	case <-inHand:
		t.Fatal("a batch was taken after stop")
	default:
	}
	if got := q.Stats(); got.Held != 3 || got.InHand != 0 || got.Acked != 0 || got.Redelivered != 1 {
		t.Fatalf("after stop: got stats %+v, want 3 held, none in hand or acked, 1 redelivered", got)
	}

	// A later subscription gets what is left: t2, t3 and t1's second delivery.
	rec := &recorder{}
	mustSubscribe(t, q, rec.Handle)
	waitFor(t, "the rest", func() bool { return q.Len() == 0 })
	got := map[string]int{}
	for _, b := range rec.seen() {
		got[b[0].Request.Ticket] = b[0].Attempt
	}
	if want := map[string]int{"t1": 2, "t2": 1, "t3": 1}; !mapsEqual(got, want) {
		t.Errorf("got attempts %v, want %v", got, want)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestStopLeavesDelayedMessages(t *testing.T) {
	q := New(Config{Goroutines: 2, MaxAttempts: 5, Backoff: time.Hour})
	mustPublish(t, q, req("t1", 1, 0))
	stop := mustSubscribe(t, q, func(context.Context, []domain.Delivery) error { return errors.New("fail") })
	waitFor(t, "the failed delivery", func() bool { return q.Stats().Redelivered == 1 })
	stop()
	if got := q.Len(); got != 1 {
		t.Errorf("got %d held after stop, want 1", got)
	}
}

func TestCapacity(t *testing.T) {
	t.Run("context ends", func(t *testing.T) {
		q := New(Config{Capacity: 2})
		mustPublish(t, q, req("t1", 1, 0), req("t2", 1, 0))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := q.Publish(ctx, req("t3", 1, 0)); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("publish to a full queue: got %v, want %v", err, context.DeadlineExceeded)
		}
		if got := q.Stats(); got.Held != 2 || got.Published != 2 {
			t.Errorf("got stats %+v, want 2 held and published", got)
		}
	})
	t.Run("context ended before", func(t *testing.T) {
		q := New(Config{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := q.Publish(ctx, req("t1", 1, 0)); !errors.Is(err, context.Canceled) {
			t.Errorf("publish with an ended context: got %v, want %v", err, context.Canceled)
		}
		if got := q.Len(); got != 0 {
			t.Errorf("got %d held, want 0", got)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		q := New(Config{Capacity: 1, PublishTimeout: 20 * time.Millisecond})
		mustPublish(t, q, req("t1", 1, 0))
		if err := q.Publish(context.Background(), req("t2", 1, 0)); !errors.Is(err, ErrFull) {
			t.Errorf("publish to a full queue: got %v, want %v", err, ErrFull)
		}
	})
	t.Run("room made", func(t *testing.T) {
		q := New(Config{Capacity: 1, Goroutines: 1})
		mustPublish(t, q, req("t1", 1, 0))
		done := make(chan error, 1)
		go func() { done <- q.Publish(context.Background(), req("t2", 1, 0)) }()
		select {
		case err := <-done:
			t.Fatalf("publish to a full queue returned %v before room was made", err)
		case <-time.After(20 * time.Millisecond):
		}
		rec := &recorder{}
		mustSubscribe(t, q, rec.Handle)
		if err := <-done; err != nil {
			t.Fatalf("publish once room was made: got %v, want nil", err)
		}
		waitFor(t, "both", func() bool { return rec.deliveries() == 2 })
	})
	t.Run("redeliveries keep their room", func(t *testing.T) {
		q := New(Config{Capacity: 1, MaxAttempts: 3, Backoff: time.Hour, PublishTimeout: 10 * time.Millisecond})
		mustPublish(t, q, req("t1", 1, 0))
		mustSubscribe(t, q, func(context.Context, []domain.Delivery) error { return errors.New("fail") })
		waitFor(t, "the failed delivery", func() bool { return q.Stats().Redelivered == 1 })
		if err := q.Publish(context.Background(), req("t2", 1, 0)); !errors.Is(err, ErrFull) {
			t.Errorf("publish while a redelivery waits: got %v, want %v", err, ErrFull)
		}
	})
	t.Run("closed", func(t *testing.T) {
		q := New(Config{Capacity: 1})
		mustPublish(t, q, req("t1", 1, 0))
		done := make(chan error, 1)
		go func() { done <- q.Publish(context.Background(), req("t2", 1, 0)) }()
		time.Sleep(10 * time.Millisecond)
		q.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("publish blocked by a full queue that closed: got %v, want %v", err, ErrClosed)
		}
		if err := q.Publish(context.Background(), req("t3", 1, 0)); !errors.Is(err, ErrClosed) {
			t.Errorf("publish to a closed queue: got %v, want %v", err, ErrClosed)
		}
		if _, err := q.Subscribe(domain.HandlerFunc(func(context.Context, []domain.Delivery) error { return nil })); !errors.Is(err, ErrClosed) {
			t.Errorf("subscribe to a closed queue: got %v, want %v", err, ErrClosed)
		}
	})
}

func TestGoroutinesBound(t *testing.T) {
	const goroutines = 3
	q := New(Config{Goroutines: goroutines})
	var running, peak atomic.Int32
	for i := range 30 {
		mustPublish(t, q, req(fmt.Sprintf("t%d", i), int64(i), 0))
	}
	mustSubscribe(t, q, func(context.Context, []domain.Delivery) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		running.Add(-1)
		return nil
	})
	waitFor(t, "acks", func() bool { return q.Stats().Acked == 30 })
	if got := peak.Load(); got > goroutines {
		t.Errorf("got %d batches at once, want at most %d", got, goroutines)
	}
}

func TestMalformedAndPanic(t *testing.T) {
	q := New(Config{Goroutines: 1, MaxAttempts: 2, Backoff: time.Millisecond})
	bad := req("", 1, 0) // no ticket
	mustPublish(t, q, bad)
	var calls atomic.Int32
	rec := &recorder{fail: func([]domain.Delivery) error {
		if calls.Add(1) == 1 {
			panic("boom")
		}
		return nil
	}}
	mustSubscribe(t, q, rec.Handle)
	waitFor(t, "ack", func() bool { return q.Stats().Acked == 1 })
	seen := rec.seen()
	if len(seen) != 2 {
		t.Fatalf("got %d deliveries, want 2 (the panic counts as a failure)", len(seen))
	}
	if seen[0][0].Malformed == nil {
		t.Errorf("got no Malformed error for a request without a ticket, want one")
	}
}

func TestTraceIsCopied(t *testing.T) {
	q := New(Config{Goroutines: 1})
	r := req("t1", 1, 0)
	r.Trace = map[string]string{"traceparent": "a"}
	mustPublish(t, q, r)
	r.Trace["traceparent"] = "changed"
	rec := &recorder{}
	mustSubscribe(t, q, rec.Handle)
	waitFor(t, "delivery", func() bool { return rec.deliveries() == 1 })
	if got := rec.seen()[0][0].Request.Trace["traceparent"]; got != "a" {
		t.Errorf("got trace %q, want %q", got, "a")
	}
}

// TestHammer publishes from many goroutines while two subscriptions handle batches
// that fail at random, then checks every message ended exactly once: acknowledged
// once, or dead-lettered after its last delivery.
func TestHammer(t *testing.T) {
	const (
		publishers = 16
		each       = 200
		total      = publishers * each
	)
	q := New(Config{Capacity: 64, Goroutines: 4, BatchSize: 8, MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})
	var mu sync.Mutex
	acked := map[string]int{}
	lastFailed := map[string]int{}
	var n atomic.Int64
	h := func(_ context.Context, b []domain.Delivery) error {
		fail := n.Add(1)%3 == 0
		mu.Lock()
		defer mu.Unlock()
		for _, d := range b {
			if d.Attempt < 1 || d.Attempt > 3 || d.Last != (d.Attempt == 3) {
				t.Errorf("%s: got attempt %d last %v", d.Request.Ticket, d.Attempt, d.Last)
			}
			if fail && d.Last {
				lastFailed[d.Request.Ticket]++
			} else if !fail {
				acked[d.Request.Ticket]++
			}
		}
		if fail {
			return errors.New("random failure")
		}
		return nil
	}
	mustSubscribe(t, q, h)
	mustSubscribe(t, q, h)

	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				r := req(fmt.Sprintf("p%d-%d", p, i), int64(i%5+1), i%2)
				if err := q.Publish(context.Background(), r); err != nil {
					t.Errorf("publish %s: %v", r.Ticket, err)
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, "the queue to drain", func() bool { return q.Len() == 0 })

	mu.Lock()
	defer mu.Unlock()
	for p := range publishers {
		for i := range each {
			ticket := fmt.Sprintf("p%d-%d", p, i)
			if got := acked[ticket] + lastFailed[ticket]; got != 1 {
				t.Errorf("%s: got %d acks and %d failed last deliveries, want exactly one end", ticket, acked[ticket], lastFailed[ticket])
			}
		}
	}
	st := q.Stats()
	if st.Published != total || st.Acked+st.DeadLetters != total || st.DeadLetters != int64(len(lastFailed)) {
		t.Errorf("got stats %+v, want %d published, acked + dead letters = %d, %d dead letters", st, total, total, len(lastFailed))
	}
}
