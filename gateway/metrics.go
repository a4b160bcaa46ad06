package gateway

import "github.com/prometheus/client_golang/prometheus"

// httpMetrics counts requests by route and status, and times them; and counts the
// panics the gateway turned into 500s.
type httpMetrics struct {
	requests *prometheus.HistogramVec
	panics   prometheus.Counter
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
