// Package inmem implements the domain's ports in memory: Store (Catalog and
// OrderStore, as MySQL), Ledger (StockLedger, as the Redis scripts), Cache, and Queue
// (Publisher, and a subscription that delivers to a Handler, as RocketMQ). The port
// contract tests (backend/domain/domaintest) hold them to the real adapters' behaviour,
// so the sale rules can be tested in milliseconds; the Queue also serves the embedded
// quick start, where one process runs everything and nothing needs to be installed.
//
// The Queue behaves like RocketMQ's push consumer as the worker sees it: a bounded number of
// goroutines handle batches, a batch the handler fails is delivered again later with
// the attempt counted up, the final delivery is marked Last, and nothing is
// acknowledged before the handler returns nil. Messages of one item and bucket are
// grouped into the same batch, as the RocketMQ producer's sharding key groups them.
//
// It holds messages in memory only: they live as long as the process, which is as long
// as the embedded Redis and MySQL stand-ins keep their data.
package inmem

import (
	"container/heap"
	"container/list"
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// Errors Publish and Subscribe return.
var (
	// ErrFull means the queue held Config.Capacity messages for the whole
	// Config.PublishTimeout: the message was not stored.
	ErrFull = errors.New("in-memory queue is full")
	// ErrClosed means the queue was closed: the message was not stored.
	ErrClosed = errors.New("in-memory queue is closed")
)

// Config tunes a Queue. Zero fields take the defaults of the RocketMQ adapter where it
// has one.
type Config struct {
	// Capacity bounds the messages held: waiting, waiting for a redelivery, and in a
	// handler's hands. Publish waits for room (default 10000).
	Capacity int
	// PublishTimeout is how long Publish waits for room before it gives up with
	// ErrFull, whatever its context allows (default 3s, the RocketMQ producer's send
	// timeout).
	PublishTimeout time.Duration
	// Goroutines bounds how many batches a subscription handles at once (default 8).
	Goroutines int
	// BatchSize is the most messages handed to the handler at once (default 1).
	BatchSize int
	// MaxAttempts is how many deliveries a message gets; the last is marked
	// Delivery.Last and the message is dropped after it whatever the handler
	// returns (default 8).
	MaxAttempts int
	// Backoff is the delay before the first redelivery of a failed batch; it doubles
	// with each further attempt up to MaxBackoff (defaults 100ms and 5s).
	Backoff    time.Duration
	MaxBackoff time.Duration
}

func (c Config) withDefaults() Config {
	if c.Capacity <= 0 {
		c.Capacity = 10000
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 3 * time.Second
	}
	if c.Goroutines <= 0 {
		c.Goroutines = 8
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.Backoff <= 0 {
		c.Backoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = c.Backoff
	}
	return c
}

// Stats counts what a queue did.
type Stats struct {
	Published   int64 // messages stored by Publish
	Delivered   int64 // deliveries handed to handlers, redeliveries included
	Acked       int64 // messages whose batch the handler acknowledged
	Redelivered int64 // messages put back for another delivery after a handler error
	DeadLetters int64 // messages dropped after their last delivery failed
	Held        int   // messages held now: waiting, delayed or in hand
	InHand      int   // of those, messages in a handler's hands
}

// Queue is an in-process message queue. It implements domain.Publisher, and its
// Subscribe method is a worker.Subscriber. It is safe for concurrent use.
type Queue struct {
	cfg Config

	mu      sync.Mutex
	ready   *list.List                   // *message in delivery order
	byKey   map[groupKey][]*list.Element // ready messages of each item and bucket, in order
	delayed delayHeap                    // messages waiting out a backoff
	held    int                          // ready + delayed + in hand
	inHand  int
	seq     uint64
	closed  bool
	subs    map[*subscription]struct{}
	// changed is closed and replaced when a message becomes ready or the queue closes;
	// freed when room is made or the queue closes.
	changed chan struct{}
	freed   chan struct{}

	published, delivered, acked, redelivered, deadLetters atomic.Int64
}

var _ domain.BatchPublisher = (*Queue)(nil)

// groupKey is what batches are grouped by: the item and bucket of a request, as the
// RocketMQ producer's sharding key.
type groupKey struct {
	item   int64
	bucket int
}

type message struct {
	id       string
	seq      uint64 // publish order
	req      domain.OrderRequest
	key      groupKey
	attempts int       // deliveries so far
	due      time.Time // when a delayed message becomes ready
}

// New returns an empty queue.
func New(cfg Config) *Queue {
	return &Queue{
		cfg:     cfg.withDefaults(),
		ready:   list.New(),
		byKey:   map[groupKey][]*list.Element{},
		subs:    map[*subscription]struct{}{},
		changed: make(chan struct{}),
		freed:   make(chan struct{}),
	}
}

// Config returns the queue's configuration with defaults filled in.
func (q *Queue) Config() Config { return q.cfg }

// PublishBatch stores rs in order, each as Publish does; on error the ones before the
// failed one are stored.
func (q *Queue) PublishBatch(ctx context.Context, rs []domain.OrderRequest) error {
	for _, r := range rs {
		if err := q.Publish(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// Publish stores r and returns nil once it is stored. When the queue is full it waits
// for room until ctx ends or Config.PublishTimeout passes, and then returns an error
// (ErrFull, or ctx's error) without storing r.
func (q *Queue) Publish(ctx context.Context, r domain.OrderRequest) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish order %s: %w", r.Ticket, err)
	}
	r.Trace = maps.Clone(r.Trace) // the caller may reuse its map
	var timeout <-chan time.Time
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return fmt.Errorf("publish order %s: %w", r.Ticket, ErrClosed)
		}
		if q.held < q.cfg.Capacity {
			q.seq++
			m := &message{id: "inmem-" + strconv.FormatUint(q.seq, 10), seq: q.seq, req: r, key: groupKey{r.ItemID, r.Bucket}}
			q.held++
			q.published.Add(1)
			q.pushReady(m)
			q.mu.Unlock()
			return nil
		}
		freed := q.freed
		q.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(q.cfg.PublishTimeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			return fmt.Errorf("publish order %s: %w", r.Ticket, ErrFull)
		case <-ctx.Done():
			return fmt.Errorf("publish order %s: %w", r.Ticket, ctx.Err())
		}
	}
}

// pushReady appends m to the ready messages and wakes consumers. q.mu is held.
func (q *Queue) pushReady(m *message) {
	e := q.ready.PushBack(m)
	q.byKey[m.key] = append(q.byKey[m.key], e)
	close(q.changed)
	q.changed = make(chan struct{})
}

// promote moves delayed messages that are due to the ready list and returns when the
// next one is due (zero when none waits). q.mu is held.
func (q *Queue) promote(now time.Time) time.Time {
	for q.delayed.Len() > 0 {
		m := q.delayed[0]
		if m.due.After(now) {
			return m.due
		}
		heap.Pop(&q.delayed)
		q.pushReady(m)
	}
	return time.Time{}
}

// take removes the next batch from the ready list: the oldest ready message and the
// ready messages of the same item and bucket after it, up to BatchSize, in order. It
// returns nil when nothing is ready. q.mu is held.
func (q *Queue) take() []*message {
	front := q.ready.Front()
	if front == nil {
		return nil
	}
	key := front.Value.(*message).key
	els := q.byKey[key] // els[0] is front: the oldest ready message is the oldest of its key
	n := min(len(els), q.cfg.BatchSize)
	batch := make([]*message, n)
	for i, e := range els[:n] {
		batch[i] = q.ready.Remove(e).(*message)
	}
	clear(els[:n]) // let the removed elements go
	if n == len(els) {
		delete(q.byKey, key)
	} else {
		q.byKey[key] = els[n:]
	}
	q.inHand += n
	return batch
}

// backoff is the delay before delivery attempt+1 of a message delivered attempt times.
func (q *Queue) backoff(attempt int) time.Duration {
	d := q.cfg.Backoff
	for i := 1; i < attempt && d < q.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, q.cfg.MaxBackoff)
}

// finish applies a handler's answer to a batch it held: acknowledged messages and
// failed final deliveries leave the queue; other failed ones wait out a backoff.
func (q *Queue) finish(batch []*message, failed bool) {
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inHand -= len(batch)
	gone := 0
	for _, m := range batch {
		switch {
		case !failed:
			q.acked.Add(1)
			gone++
		case m.attempts >= q.cfg.MaxAttempts:
			q.deadLetters.Add(1)
			gone++
		default:
			q.redelivered.Add(1)
			m.due = now.Add(q.backoff(m.attempts))
			heap.Push(&q.delayed, m)
		}
	}
	if gone > 0 {
		q.held -= gone
		close(q.freed)
		q.freed = make(chan struct{})
	}
	if gone < len(batch) {
		// A consumer waiting for the next due message must learn of the new one.
		close(q.changed)
		q.changed = make(chan struct{})
	}
}

// Stats returns the queue's counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	held, inHand := q.held, q.inHand
	q.mu.Unlock()
	return Stats{
		Published: q.published.Load(), Delivered: q.delivered.Load(), Acked: q.acked.Load(),
		Redelivered: q.redelivered.Load(), DeadLetters: q.deadLetters.Load(), Held: held, InHand: inHand,
	}
}

// Len is how many messages the queue holds: waiting, delayed or in hand.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.held
}

// Subscribe starts delivering messages to h from Config.Goroutines goroutines and
// returns the function that stops it. stop stops taking new batches, waits for the
// batches in hand to be handled, and leaves every message not yet acknowledged in the
// queue for a later subscription; it returns nil and may be called more than once, but
// not from inside h. Several subscriptions share the messages, each message going to
// one of them, as consumers of one RocketMQ consumer group do.
//
// The context h gets is not cancelled by stop, so batches in hand finish their writes.
// A panic in h is recovered and counts as a handler error.
func (q *Queue) Subscribe(h domain.Handler) (stop func() error, err error) {
	if h == nil {
		return nil, errors.New("subscribe to in-memory queue: nil handler")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, fmt.Errorf("subscribe to in-memory queue: %w", ErrClosed)
	}
	s := &subscription{q: q, h: h, quit: make(chan struct{})}
	q.subs[s] = struct{}{}
	for range q.cfg.Goroutines {
		s.wg.Add(1)
		go s.run()
	}
	return s.stop, nil
}

// Close refuses further messages and subscriptions, wakes publishers waiting for room,
// and stops every subscription (waiting for the batches in hand). Messages still held
// are dropped with the queue.
func (q *Queue) Close() error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.changed)
		q.changed = make(chan struct{})
		close(q.freed)
		q.freed = make(chan struct{})
	}
	subs := make([]*subscription, 0, len(q.subs))
	for s := range q.subs {
		subs = append(subs, s)
	}
	q.mu.Unlock()
	for _, s := range subs {
		s.stop()
	}
	return nil
}

// subscription is one Subscribe: its goroutines take batches until stopped.
type subscription struct {
	q        *Queue
	h        domain.Handler
	quit     chan struct{}
	stopped  bool // under q.mu: take no more batches
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func (s *subscription) stop() error {
	s.stopOnce.Do(func() {
		s.q.mu.Lock()
		s.stopped = true
		delete(s.q.subs, s)
		s.q.mu.Unlock()
		close(s.quit)
		s.wg.Wait()
	})
	return nil
}

func (s *subscription) run() {
	defer s.wg.Done()
	for {
		batch, ok := s.next()
		if !ok {
			return
		}
		s.handle(batch)
	}
}

// next waits for a batch; ok is false once the subscription stops or the queue closes.
func (s *subscription) next() (batch []*message, ok bool) {
	q := s.q
	for {
		q.mu.Lock()
		if q.closed || s.stopped {
			q.mu.Unlock()
			return nil, false
		}
		due := q.promote(time.Now())
		if batch := q.take(); batch != nil {
			for _, m := range batch {
				m.attempts++
			}
			q.mu.Unlock()
			return batch, true
		}
		changed := q.changed
		q.mu.Unlock()
		var wake <-chan time.Time
		var timer *time.Timer
		if !due.IsZero() {
			timer = time.NewTimer(time.Until(due))
			wake = timer.C
		}
		select {
		case <-s.quit:
		case <-changed:
		case <-wake:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// handle hands one batch to the handler and applies its answer.
func (s *subscription) handle(batch []*message) {
	q := s.q
	ds := make([]domain.Delivery, len(batch))
	for i, m := range batch {
		d := domain.Delivery{ID: m.id, Request: m.req, Attempt: m.attempts, Last: m.attempts >= q.cfg.MaxAttempts}
		d.Request.Trace = maps.Clone(m.req.Trace) // each delivery gets its own map
		if err := d.Request.Validate(); err != nil {
			d.Malformed = fmt.Errorf("message %s: %w", m.id, err)
		}
		ds[i] = d
	}
	q.delivered.Add(int64(len(ds)))
	err := callHandler(s.h, ds)
	q.finish(batch, err != nil)
}

func callHandler(h domain.Handler, batch []domain.Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h.Handle(context.Background(), batch)
}

// delayHeap orders delayed messages by when they are due, then by publish order.
type delayHeap []*message

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(*message)) }
func (h *delayHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return m
}
