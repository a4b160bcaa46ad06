package gateway

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Layers of the gateway that shed requests.
const (
	layerInput     = "input"
	layerAuth      = "auth"
	layerRateLimit = "rate_limit"
	layerCache     = "cache"
	layerPlugin    = "plugin"
	layerBackend   = "backend"
)

// shedCounter counts what each layer shed, by reason: as a Prometheus series, and per
// activity for the activity stats.
type shedCounter struct {
	vec *prometheus.CounterVec
	mu  sync.Mutex
	per map[int64]map[string]*atomic.Int64 // activity -> "layer/reason"
}

func newShedCounter(reg prometheus.Registerer) *shedCounter {
	s := &shedCounter{
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seckill_gateway_shed_total",
			Help: "Requests the gateway answered without an order, by layer and reason."}, []string{"layer", "reason"}),
		per: map[int64]map[string]*atomic.Int64{},
	}
	if reg != nil {
		reg.MustRegister(s.vec)
	}
	return s
}

func (s *shedCounter) add(activityID int64, layer, reason string) {
	s.vec.WithLabelValues(layer, reason).Inc()
	if activityID <= 0 {
		return
	}
	key := layer + "/" + reason
	s.mu.Lock()
	m := s.per[activityID]
	if m == nil {
		if len(s.per) > 10_000 { // bound memory: ids come from clients
			clear(s.per)
		}
		m = map[string]*atomic.Int64{}
		s.per[activityID] = m
	}
	c := m[key]
	if c == nil {
		c = &atomic.Int64{}
		m[key] = c
	}
	s.mu.Unlock()
	c.Add(1)
}

func (s *shedCounter) of(activityID int64) map[string]int64 {
	out := map[string]int64{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.per[activityID] {
		out[k] = c.Load()
	}
	return out
}
