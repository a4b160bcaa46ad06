package gateway

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts requests by route and status, and times them; and counts the
// panics the gateway turned into 500s.
type httpMetrics struct {
	requests *prometheus.HistogramVec
	panics   prometheus.Counter
	// observers holds each (route, method, status)'s series once resolved: a
	// lookup without WithLabelValues' hashing, status formatting and slice. The
	// labels come from bounded sets (observe), so the map stays small.
	observers atomic.Pointer[map[observerKey]prometheus.Observer]
	mu        sync.Mutex // held to add to observers
}

type observerKey struct {
	route, method string
	status        int
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "seckill_gateway_request_seconds",
		Help: "HTTP requests by route and status.", Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14)}, []string{"route", "method", "status"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{Name: "seckill_gateway_panics_total",
			Help: "Panics while serving a request, each answered 500 (the log has the stack under the request id)."})}
	if reg != nil {
		reg.MustRegister(m.requests, m.panics)
	}
	return m
}

// observer is the histogram series of a route, method and status.
func (m *httpMetrics) observer(route, method string, status int) prometheus.Observer {
	k := observerKey{route, method, status}
	if p := m.observers.Load(); p != nil {
		if o, ok := (*p)[k]; ok {
			return o
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var next map[observerKey]prometheus.Observer
	if p := m.observers.Load(); p != nil {
		if o, ok := (*p)[k]; ok {
			return o
		}
		next = make(map[observerKey]prometheus.Observer, len(*p)+1)
		for k, o := range *p {
			next[k] = o
		}
	} else {
		next = map[observerKey]prometheus.Observer{}
	}
	o := m.requests.WithLabelValues(route, method, strconv.Itoa(status))
	next[k] = o
	m.observers.Store(&next)
	return o
}
