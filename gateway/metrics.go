package gateway

import "github.com/prometheus/client_golang/prometheus"

// httpMetrics counts requests by route and status, and times them.
type httpMetrics struct {
	requests *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "seckill_gateway_request_seconds",
		Help: "HTTP requests by route and status.", Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14)}, []string{"route", "method", "status"})}
	if reg != nil {
		reg.MustRegister(m.requests)
	}
	return m
}
