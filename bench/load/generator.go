// Package load is the bench's load generator: open-loop (a fixed arrival rate, so a
// slow system shows as latency and missed sends, not as a lower rate) and closed-loop
// (N clients, each sending its next request when the last one is answered), always
// bounded in count and in time. It also holds the shopper's HTTP client the bench
// drives it with: tokens, retries with the same Idempotency-Key, ticket polling.
package load

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is how requests are paced.
type Mode string

const (
	// Closed: Concurrency clients, each sends when its previous request is answered.
	Closed Mode = "closed"
	// Open: requests are due at a fixed rate whatever the answers do.
	Open Mode = "open"
)

// Hard bounds, whatever a caller asks for.
const (
	MaxCount    = 10_000_000
	MaxDuration = time.Hour
)

// Config paces a run.
type Config struct {
	Mode Mode
	// Rate is the open loop's arrival rate, requests a second.
	Rate float64
	// Concurrency is the closed loop's number of clients, and the open loop's most
	// requests in flight: a request due while that many are in flight is not sent
	// and counts as missed.
	Concurrency int
	// Count is the most requests (both modes); in the open loop 0 means Rate*Duration.
	Count int
	// Duration is the most time requests are sent for; requests in flight when it
	// ends are waited for.
	Duration time.Duration
	// LateAfter: an open-loop request sent this long after it was due counts as late
	// (default 10 ms). Its latency is measured from when it was due either way.
	LateAfter time.Duration
}

// Outcome is what one request came to.
type Outcome struct {
	Code    string // "201", "409 sold_out", "error timeout", ...
	Retries int    // extra tries it took
}

// Attempt sends request i. due is when it was meant to go out (open loop) or when it
// went out (closed loop); latency is measured from due.
type Attempt func(ctx context.Context, i int, due time.Time) Outcome

// Live are counters a progress display may read while a run goes.
type Live struct {
	Sent   atomic.Int64
	Done   atomic.Int64
	Missed atomic.Int64
}

// Result is what a run measured.
type Result struct {
	Mode     Mode
	Started  time.Time // the first request was due
	LastSent time.Time
	Ended    time.Time // the last answer arrived
	Sent     int64
	Missed   int64 // open loop: due but not sent (Concurrency in flight)
	Late     int64 // open loop: sent more than LateAfter after due
	Retries  int64
	Codes    map[string]int64
	Latency  *Histogram // due -> answer
	SendLag  *Histogram // open loop: due -> sent
}

// SendRate is requests sent per second between the first and the last send.
func (r *Result) SendRate() float64 {
	d := r.Ended.Sub(r.Started).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(r.Sent) / d
}

// CodeList is the codes sorted by count, most first.
func (r *Result) CodeList() []string {
	out := make([]string, 0, len(r.Codes))
	for c := range r.Codes {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if r.Codes[out[i]] != r.Codes[out[j]] {
			return r.Codes[out[i]] > r.Codes[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}

func (c *Config) check() error {
	switch c.Mode {
	case Closed:
		if c.Concurrency <= 0 {
			return errors.New("load: the closed loop needs Concurrency > 0")
		}
		if c.Count <= 0 {
			return errors.New("load: the closed loop needs Count > 0")
		}
	case Open:
		if c.Rate <= 0 {
			return errors.New("load: the open loop needs Rate > 0")
		}
		if c.Concurrency <= 0 {
			c.Concurrency = 1024
		}
		if c.Count <= 0 {
			if c.Duration <= 0 {
				return errors.New("load: the open loop needs Count or Duration")
			}
			c.Count = int(c.Rate * c.Duration.Seconds())
		}
	default:
		return fmt.Errorf("load: unknown mode %q", c.Mode)
	}
	if c.Count > MaxCount {
		return fmt.Errorf("load: %d requests is over the bound of %d", c.Count, MaxCount)
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		c.Duration = MaxDuration
	}
	if c.LateAfter <= 0 {
		c.LateAfter = 10 * time.Millisecond
	}
	return nil
}

// Run sends requests with fn as cfg says, until Count are sent, Duration has passed
// or ctx ends, then waits for those in flight. live may be nil.
func Run(ctx context.Context, cfg Config, fn Attempt, live *Live) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if live == nil {
		live = &Live{}
	}
	r := &Result{Mode: cfg.Mode, Codes: map[string]int64{}, Latency: NewHistogram(), SendLag: NewHistogram()}
	var mu sync.Mutex
	var nSent, nMissed, retries, late, lastSent atomic.Int64
	record := func(out Outcome, due time.Time) {
		r.Latency.Record(time.Since(due))
		retries.Add(int64(out.Retries))
		mu.Lock()
		r.Codes[out.Code]++
		mu.Unlock()
		live.Done.Add(1)
	}
	sent := func() {
		nSent.Add(1)
		live.Sent.Add(1)
		lastSent.Store(time.Now().UnixNano())
	}
	r.Started = time.Now()
	stopSending := r.Started.Add(cfg.Duration)
	var wg sync.WaitGroup
	switch cfg.Mode {
	case Closed:
		var next atomic.Int64
		for range cfg.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					i := int(next.Add(1) - 1)
					if i >= cfg.Count {
						return
					}
					due := time.Now()
					if due.After(stopSending) {
						return
					}
					sent()
					record(fn(ctx, i, due), due)
				}
			}()
		}
	case Open:
		// Due times are absolute (start + i/rate), so a slow wake-up is caught up
		// at once rather than lowering the rate.
		inflight := make(chan struct{}, cfg.Concurrency)
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
	send:
		for i := 0; i < cfg.Count; i++ {
			due := r.Started.Add(time.Duration(float64(i) * float64(time.Second) / cfg.Rate))
			if due.After(stopSending) {
				break
			}
			if d := time.Until(due); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					break send
				case <-timer.C:
				}
			} else if ctx.Err() != nil {
				break
			}
			select {
			case inflight <- struct{}{}:
			default:
				nMissed.Add(1)
				live.Missed.Add(1)
				continue
			}
			lag := time.Since(due)
			r.SendLag.Record(lag)
			if lag > cfg.LateAfter {
				late.Add(1)
			}
			sent()
			wg.Add(1)
			go func() {
				defer wg.Done()
				record(fn(ctx, i, due), due)
				<-inflight
			}()
		}
	}
	wg.Wait()
	r.Ended = time.Now()
	r.Sent, r.Missed, r.Late, r.Retries = nSent.Load(), nMissed.Load(), late.Load(), retries.Load()
	if ns := lastSent.Load(); ns > 0 {
		r.LastSent = time.Unix(0, ns)
	}
	return r, ctx.Err()
}
