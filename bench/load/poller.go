package load

import (
	"container/heap"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Ticket is an admitted async order to follow until it ends.
type Ticket struct {
	ID      string
	Token   string    // its owner's token: only the owner may read it
	Started time.Time // when the order attempt was due; completion is measured from here
	ItemID  int64
	Attempt int
}

// Final is how a ticket ended.
type Final struct {
	Ticket
	Status  string // created, failed, unknown (404), pending (still pending when polling stopped)
	OrderID string
	Reason  string
	Polls   int
	Took    time.Duration // Started -> seen terminal
}

// Poller follows tickets with backoff, like a storefront's page does: the first read
// soon after admission, then further apart (doubling up to MaxWait), by a bounded pool
// of workers. A ticket's completion time is when a read first saw it terminal, so it
// is accurate to within the polling step.
type Poller struct {
	Shop      *Shop
	Workers   int           // concurrent reads (default 32)
	FirstWait time.Duration // default 10 ms
	MaxWait   time.Duration // default 250 ms

	mu          sync.Mutex
	queue       pollHeap
	finals      []Final
	wake        chan struct{}
	work        chan *polled
	outstanding atomic.Int64
	allDone     chan struct{} // signalled when outstanding drops to 0
	Completion  *Histogram
	Polls       atomic.Int64
	PollErrors  atomic.Int64
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

type polled struct {
	t     Ticket
	due   time.Time
	wait  time.Duration
	polls int
}

type pollHeap []*polled

func (h pollHeap) Len() int           { return len(h) }
func (h pollHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h pollHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pollHeap) Push(x any)        { *h = append(*h, x.(*polled)) }
func (h *pollHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Start begins polling; Stop ends it.
func (p *Poller) Start(ctx context.Context) {
	if p.Workers <= 0 {
		p.Workers = 32
	}
	if p.FirstWait <= 0 {
		p.FirstWait = 10 * time.Millisecond
	}
	if p.MaxWait <= 0 {
		p.MaxWait = 250 * time.Millisecond
	}
	p.Completion = NewHistogram()
	p.wake = make(chan struct{}, 1)
	p.work = make(chan *polled)
	p.allDone = make(chan struct{}, 1)
	ctx, p.cancel = context.WithCancel(ctx)
	p.wg.Add(1 + p.Workers)
	go p.dispatch(ctx)
	for range p.Workers {
		go p.worker(ctx)
	}
}

// Add follows a ticket.
func (p *Poller) Add(t Ticket) {
	p.outstanding.Add(1)
	p.push(&polled{t: t, due: time.Now().Add(p.FirstWait), wait: p.FirstWait})
}

func (p *Poller) push(x *polled) {
	p.mu.Lock()
	heap.Push(&p.queue, x)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Outstanding is how many tickets are not terminal yet.
func (p *Poller) Outstanding() int64 { return p.outstanding.Load() }

func (p *Poller) dispatch(ctx context.Context) {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if p.queue.Len() == 0 {
			p.mu.Unlock()
			select {
			case <-p.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		top := p.queue[0]
		d := time.Until(top.due)
		if d <= 0 {
			heap.Pop(&p.queue)
			p.mu.Unlock()
			select {
			case p.work <- top:
			case <-ctx.Done():
				p.requeue(top)
				return
			}
			continue
		}
		p.mu.Unlock()
		timer.Reset(d)
		select {
		case <-timer.C:
		case <-p.wake:
			timer.Stop() // (Go 1.23+ timers: no stale tick to drain)
		case <-ctx.Done():
			return
		}
	}
}

func (p *Poller) worker(ctx context.Context) {
	defer p.wg.Done()
	for {
		var x *polled
		select {
		case x = <-p.work:
		case <-ctx.Done():
			return
		}
		st, status, err := p.Shop.Ticket(ctx, x.t.Token, x.t.ID)
		x.polls++
		p.Polls.Add(1)
		switch {
		case status == http.StatusNotFound:
			p.finish(x, Final{Status: "unknown", Reason: "ticket not found"})
		case err != nil:
			if ctx.Err() != nil {
				p.requeue(x)
				return
			}
			p.PollErrors.Add(1)
			p.again(x)
		case st.Status == "pending":
			p.again(x)
		default:
			p.finish(x, Final{Status: st.Status, OrderID: st.OrderID, Reason: st.Reason})
		}
	}
}

// requeue puts back a ticket taken when polling stopped, so Stop reports it.
func (p *Poller) requeue(x *polled) {
	p.mu.Lock()
	heap.Push(&p.queue, x)
	p.mu.Unlock()
}

func (p *Poller) again(x *polled) {
	x.wait = min(x.wait*2, p.MaxWait)
	x.due = time.Now().Add(x.wait)
	p.push(x)
}

func (p *Poller) finish(x *polled, f Final) {
	f.Ticket, f.Polls, f.Took = x.t, x.polls, time.Since(x.t.Started)
	p.Completion.Record(f.Took)
	p.mu.Lock()
	p.finals = append(p.finals, f)
	p.mu.Unlock()
	if p.outstanding.Add(-1) == 0 {
		select {
		case p.allDone <- struct{}{}:
		default:
		}
	}
}

// Wait returns when every ticket added so far is terminal (true), or when ctx ends
// (false).
func (p *Poller) Wait(ctx context.Context) bool {
	for p.outstanding.Load() > 0 {
		select {
		case <-p.allDone:
		case <-ctx.Done():
			return p.outstanding.Load() == 0
		case <-time.After(100 * time.Millisecond):
		}
	}
	return true
}

// Stop ends polling and returns every ticket's end; tickets still pending are
// returned with status "pending".
func (p *Poller) Stop() []Final {
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]Final(nil), p.finals...)
	for _, x := range p.queue {
		out = append(out, Final{Ticket: x.t, Status: "pending", Polls: x.polls, Took: time.Since(x.t.Started)})
	}
	p.queue = nil
	return out
}
