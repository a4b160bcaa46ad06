package load

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		gen  func() time.Duration
		n    int
	}{
		{"lognormal", func() time.Duration { return time.Duration(math.Exp(rng.NormFloat64()*1.5 + 13)) }, 100_000},
		{"uniform ms", func() time.Duration { return time.Duration(rng.Int64N(int64(50 * time.Millisecond))) }, 20_000},
		{"tiny", func() time.Duration { return time.Duration(rng.Int64N(100)) }, 5_000},
		{"one value", func() time.Duration { return 1234567 }, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistogram()
			vals := make([]time.Duration, tc.n)
			for i := range vals {
				vals[i] = tc.gen()
				h.Record(vals[i])
			}
			sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				rank := int(math.Ceil(q*float64(len(vals)))) - 1
				want := vals[rank]
				got := h.Quantile(q)
				if diff := math.Abs(float64(got - want)); diff > float64(want)/64+1 {
					t.Errorf("q%.3f: got %v, want %v (within 1/64)", q, got, want)
				}
			}
			if h.Count() != uint64(tc.n) || h.Min() != vals[0] || h.Max() != vals[len(vals)-1] {
				t.Errorf("got count %d min %v max %v, want %d %v %v", h.Count(), h.Min(), h.Max(), tc.n, vals[0], vals[len(vals)-1])
			}
		})
	}
	t.Run("empty and merge", func(t *testing.T) {
		a, b := NewHistogram(), NewHistogram()
		if a.Quantile(0.5) != 0 || a.Min() != 0 || a.Mean() != 0 {
			t.Fatal("an empty histogram: got non-zero figures")
		}
		for i := 1; i <= 100; i++ {
			a.Record(time.Duration(i) * time.Millisecond)
			b.Record(time.Duration(i+100) * time.Millisecond)
		}
		a.Merge(b)
		if got := a.Quantile(0.5); got < 99*time.Millisecond || got > 102*time.Millisecond {
			t.Fatalf("merged p50: got %v, want about 100ms", got)
		}
		if a.Count() != 200 || a.Max() != 200*time.Millisecond || a.Min() != time.Millisecond {
			t.Fatalf("merged: got count %d max %v min %v", a.Count(), a.Max(), a.Min())
		}
	})
}

// server is a loopback HTTP server that counts requests and in-flight requests.
type server struct {
	*httptest.Server
	hits, inflight, peak atomic.Int64
	mu                   sync.Mutex
	arrivals             []time.Time
}

func newServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		n := s.inflight.Add(1)
		defer s.inflight.Add(-1)
		for {
			p := s.peak.Load()
			if n <= p || s.peak.CompareAndSwap(p, n) {
				break
			}
		}
		s.mu.Lock()
		s.arrivals = append(s.arrivals, time.Now())
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func okHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	w.Write([]byte(`{"ticket":"t","status":"pending"}`))
}

func shopFor(s *server) *Shop {
	return &Shop{HTTP: NewHTTPClient(256, ""), Base: s.URL, Tries: 3, Timeout: 2 * time.Second, Backoff: 5 * time.Millisecond}
}

func orderAttempt(shop *Shop) Attempt {
	return func(ctx context.Context, i int, _ time.Time) Outcome {
		a := shop.PlaceOrder(ctx, OrderRequest{Token: "t", ActivityID: 1, ItemID: 1, Quantity: 1})
		return Outcome{Code: a.Label(), Retries: a.Tries - 1}
	}
}

func TestOpenLoopKeepsItsRate(t *testing.T) {
	s := newServer(t, okHandler)
	const rate, d = 400.0, 1500 * time.Millisecond
	res, err := Run(context.Background(), Config{Mode: Open, Rate: rate, Duration: d, Concurrency: 256}, orderAttempt(shopFor(s)), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(rate * d.Seconds())
	if res.Sent+res.Missed != want {
		t.Fatalf("got %d sent + %d missed, want %d due", res.Sent, res.Missed, want)
	}
	if res.Sent < want*9/10 {
		t.Fatalf("got %d sent, want nearly all of %d (a fast server)", res.Sent, want)
	}
	// The arrivals span the duration: the rate held, neither bunched up nor spread.
	s.mu.Lock()
	span := s.arrivals[len(s.arrivals)-1].Sub(s.arrivals[0])
	s.mu.Unlock()
	got := float64(len(s.arrivals)-1) / span.Seconds()
	if got < rate*0.7 || got > rate*1.3 {
		t.Fatalf("got %.0f requests/s at the server, want about %.0f", got, rate)
	}
	if res.Codes["202 pending"] != res.Sent {
		t.Fatalf("got answers %v", res.Codes)
	}
}

func TestOpenLoopCountsMissedSends(t *testing.T) {
	// A slow server and few slots: the loop does not slow down, it misses sends, and
	// the latency of what it sent shows the slowness.
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
		okHandler(w, r)
	})
	res, err := Run(context.Background(), Config{Mode: Open, Rate: 200, Count: 100, Concurrency: 4}, orderAttempt(shopFor(s)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Missed == 0 || res.Sent+res.Missed != 100 {
		t.Fatalf("got %d sent, %d missed, want some missed and 100 in all", res.Sent, res.Missed)
	}
	if p := s.peak.Load(); p > 4 {
		t.Fatalf("got %d in flight at once, want at most 4", p)
	}
	if got := res.Latency.Quantile(0.5); got < 200*time.Millisecond {
		t.Fatalf("got p50 %v, want at least the server's 200ms", got)
	}
}

func TestClosedLoopConcurrency(t *testing.T) {
	const clients = 8
	// The first requests wait until `clients` of them are in flight (or 2 s): the loop
	// must run exactly that many at once, and never more.
	var arrived atomic.Int64
	all := make(chan struct{})
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == clients {
			close(all)
		}
		select {
		case <-all:
		case <-time.After(2 * time.Second):
		}
		time.Sleep(time.Millisecond)
		okHandler(w, r)
	})
	res, err := Run(context.Background(), Config{Mode: Closed, Concurrency: clients, Count: 200}, orderAttempt(shopFor(s)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 200 || s.hits.Load() != 200 {
		t.Fatalf("got %d sent, %d at the server, want 200", res.Sent, s.hits.Load())
	}
	if p := s.peak.Load(); p != clients {
		t.Fatalf("got at most %d in flight, want %d", p, clients)
	}
}

func TestRunIsBoundedInTime(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		okHandler(w, r)
	})
	start := time.Now()
	res, err := Run(context.Background(), Config{Mode: Closed, Concurrency: 4, Count: 1_000_000, Duration: 300 * time.Millisecond}, orderAttempt(shopFor(s)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("a 300ms run took %v", el)
	}
	if res.Sent == 0 || res.Sent >= 1_000_000 {
		t.Fatalf("got %d sent, want some, far from the count", res.Sent)
	}
	if got := s.hits.Load(); got != res.Sent {
		t.Fatalf("got %d at the server, %d sent", got, res.Sent)
	}
}

func TestRunIsBoundedInCount(t *testing.T) {
	for _, cfg := range []Config{{Mode: Closed, Concurrency: 16, Count: 137}, {Mode: Open, Rate: 2000, Count: 137}} {
		t.Run(string(cfg.Mode), func(t *testing.T) {
			s := newServer(t, okHandler)
			res, err := Run(context.Background(), cfg, orderAttempt(shopFor(s)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent+res.Missed != 137 || s.hits.Load() != res.Sent {
				t.Fatalf("got %d sent, %d missed, %d at the server, want 137 in all", res.Sent, res.Missed, s.hits.Load())
			}
		})
	}
	if _, err := Run(context.Background(), Config{Mode: Closed, Concurrency: 1, Count: MaxCount + 1}, nil, nil); err == nil {
		t.Fatal("a count over the bound: got no error")
	}
	if _, err := Run(context.Background(), Config{Mode: Closed, Concurrency: 1}, nil, nil); err == nil {
		t.Fatal("no count: got no error")
	}
}

func TestRetriesKeepTheIdempotencyKey(t *testing.T) {
	type seen struct {
		mu   sync.Mutex
		keys []string
	}
	for _, tc := range []struct {
		name      string
		handler   func(try int, w http.ResponseWriter)
		wantTries int
		wantLabel string
	}{
		{"503 then accepted", func(try int, w http.ResponseWriter) {
			if try < 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"error":"unavailable","message":"x"}`))
				return
			}
			okHandler(w, nil)
		}, 3, "202 pending"},
		{"timeout then accepted", func(try int, w http.ResponseWriter) {
			if try == 1 {
				time.Sleep(400 * time.Millisecond)
			}
			okHandler(w, nil)
		}, 2, "202 pending"},
		{"always 503: bounded", func(_ int, w http.ResponseWriter) {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"unavailable","message":"x"}`))
		}, 3, "503 unavailable"},
		{"409 is final", func(_ int, w http.ResponseWriter) {
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":"sold_out","message":"x"}`))
		}, 1, "409 sold_out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sn seen
			s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				sn.mu.Lock()
				sn.keys = append(sn.keys, r.Header.Get("Idempotency-Key"))
				try := len(sn.keys)
				sn.mu.Unlock()
				if r.Header.Get("Authorization") != "Bearer tok" {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				tc.handler(try, w)
			})
			shop := &Shop{HTTP: NewHTTPClient(8, ""), Base: s.URL, Tries: 3, Timeout: 200 * time.Millisecond, Backoff: time.Millisecond}
			a := shop.PlaceOrder(context.Background(), OrderRequest{Token: "tok", ActivityID: 1, ItemID: 2, Quantity: 1, Key: "key-42"})
			if a.Tries != tc.wantTries || a.Label() != tc.wantLabel {
				t.Fatalf("got %d tries, %q; want %d, %q", a.Tries, a.Label(), tc.wantTries, tc.wantLabel)
			}
			sn.mu.Lock()
			defer sn.mu.Unlock()
			if len(sn.keys) != tc.wantTries {
				t.Fatalf("got %d requests at the server, want %d", len(sn.keys), tc.wantTries)
			}
			for _, k := range sn.keys {
				if k != "key-42" {
					t.Fatalf("got Idempotency-Key %q on a try, want key-42 on every try", k)
				}
			}
		})
	}
}

func TestPollerFollowsTicketsToTheEnd(t *testing.T) {
	var mu sync.Mutex
	polls := map[string]int{}
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		tk := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		mu.Lock()
		polls[tk]++
		n := polls[tk]
		mu.Unlock()
		var out map[string]string
		switch {
		case tk == "gone":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"not_found"}`))
			return
		case n < 3:
			out = map[string]string{"status": "pending"}
		case tk == "bad":
			out = map[string]string{"status": "failed", "reason": "db down"}
		default:
			out = map[string]string{"status": "created", "order_id": "o-" + tk}
		}
		json.NewEncoder(w).Encode(out)
	})
	p := &Poller{Shop: shopFor(s), Workers: 4, FirstWait: time.Millisecond, MaxWait: 5 * time.Millisecond}
	p.Start(context.Background())
	for _, id := range []string{"a", "b", "bad", "gone"} {
		p.Add(Ticket{ID: id, Token: "t", Started: time.Now()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !p.Wait(ctx) {
		t.Fatalf("tickets still open: %d", p.Outstanding())
	}
	got := map[string]Final{}
	for _, f := range p.Stop() {
		got[f.ID] = f
	}
	for id, want := range map[string]string{"a": "created", "b": "created", "bad": "failed", "gone": "unknown"} {
		if got[id].Status != want {
			t.Fatalf("ticket %s: got %q, want %q", id, got[id].Status, want)
		}
	}
	if got["a"].OrderID != "o-a" || got["a"].Polls != 3 || got["bad"].Reason != "db down" {
		t.Fatalf("got %+v and %+v", got["a"], got["bad"])
	}
	if p.Completion.Count() != 4 {
		t.Fatalf("got %d completion times, want 4", p.Completion.Count())
	}
}

func TestPollerStopReportsOpenTickets(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"pending"}`)) })
	p := &Poller{Shop: shopFor(s), Workers: 2, FirstWait: time.Millisecond, MaxWait: 2 * time.Millisecond}
	p.Start(context.Background())
	p.Add(Ticket{ID: "x", Token: "t", Started: time.Now()})
	time.Sleep(50 * time.Millisecond)
	finals := p.Stop()
	if len(finals) != 1 || finals[0].Status != "pending" || finals[0].Polls == 0 {
		t.Fatalf("got %+v, want the ticket reported pending after some polls", finals)
	}
}

func TestTargetsAreLoopbackUnlessExplicit(t *testing.T) {
	for _, tc := range []struct {
		url      string
		explicit bool
		ok       bool
	}{
		{"http://127.0.0.1:8080", false, true},
		{"http://localhost:8080", false, true},
		{"http://[::1]:8080", false, true},
		{"http://10.1.2.3:8080", false, false},
		{"http://example.com", false, false},
		{"http://10.1.2.3:8080", true, true},
		{"https://127.0.0.1:8443", false, false},
		{"https://10.1.2.3", true, false},
		{"ftp://127.0.0.1", true, false},
	} {
		_, err := CheckTarget(tc.url, tc.explicit)
		if (err == nil) != tc.ok {
			t.Errorf("%s explicit=%v: got err %v, want ok=%v", tc.url, tc.explicit, err, tc.ok)
		}
	}
	// The client itself refuses to dial anything else.
	hc := NewHTTPClient(1, "")
	_, err := hc.Get("http://10.255.255.1:9/")
	if err == nil || !strings.Contains(err.Error(), "refusing to dial") {
		t.Fatalf("dial a non-loopback address: got %v, want a refusal", err)
	}
}
