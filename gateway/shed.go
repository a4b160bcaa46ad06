package gateway

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/flashsale/internal/tally"
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

// shedCounter counts what each layer shed, by reason: as a Prometheus series, per
// activity for the activity stats (this gateway's), and in deltas handed to the
// fleet's tallies, so the stats are the fleet's sums. Only activities the backend
// knows are counted apart (known), so made-up ids neither add entries nor push real
// activities' counts out of the LRU or into Redis.
type shedCounter struct {
	vec     *prometheus.CounterVec
	per     *lru.Cache[int64, *sync.Map] // activity -> *shedKind -> *atomic.Int64
	kinds   atomic.Pointer[map[[2]string]*shedKind]
	kindsMu sync.Mutex                  // held to add to kinds
	known   func(activityID int64) bool // nil: every positive id
	tallies Tallies                     // nil: this gateway's counts alone
	deltas  tally.Counts
	log     *slog.Logger
}

// Tallies sum counts over the fleet (backend/redis.Tallies).
type Tallies interface {
	Add(ctx context.Context, prefix string, counts map[int64]map[string]int64) error
}

func newShedCounter(reg prometheus.Registerer, tallies Tallies, log *slog.Logger) *shedCounter {
	per, err := lru.New[int64, *sync.Map](10_000)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	s := &shedCounter{
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seckill_gateway_shed_total",
			Help: "Requests the gateway answered without an order, by layer and reason."}, []string{"layer", "reason"}),
		per: per, tallies: tallies, log: log,
	}
	if reg != nil {
		reg.MustRegister(s.vec)
	}
	return s
}

// shedKind is a layer and reason's series and its key in the activity stats,
// resolved once: a shed costs no label hashing nor string building. Layers and
// reasons come from fixed sets, so kinds stays small.
type shedKind struct {
	ctr prometheus.Counter
	key string // "layer/reason"
}

func (s *shedCounter) kind(layer, reason string) *shedKind {
	k := [2]string{layer, reason}
	if p := s.kinds.Load(); p != nil {
		if sk, ok := (*p)[k]; ok {
			return sk
		}
	}
	s.kindsMu.Lock()
	defer s.kindsMu.Unlock()
	next := map[[2]string]*shedKind{}
	if p := s.kinds.Load(); p != nil {
		if sk, ok := (*p)[k]; ok {
			return sk
		}
		for k, sk := range *p {
			next[k] = sk
		}
	}
	sk := &shedKind{ctr: s.vec.WithLabelValues(layer, reason), key: layer + "/" + reason}
	next[k] = sk
	s.kinds.Store(&next)
	return sk
}

func (s *shedCounter) add(activityID int64, layer, reason string) {
	sk := s.kind(layer, reason)
	sk.ctr.Inc()
	if activityID <= 0 || s.known != nil && !s.known(activityID) {
		return // an id no activity has (callers pass 0 for one): nothing to count it under
	}
	m, ok := s.per.Get(activityID)
	if !ok {
		fresh := &sync.Map{}
		if prev, found, _ := s.per.PeekOrAdd(activityID, fresh); found {
			m = prev
		} else {
			m = fresh
		}
	}
	c, ok := m.Load(sk) // a pointer key: no boxing
	if !ok {
		c, _ = m.LoadOrStore(sk, &atomic.Int64{})
	}
	c.(*atomic.Int64).Add(1)
	if s.tallies != nil {
		s.deltas.Add(activityID, sk.key, 1)
	}
}

func (s *shedCounter) of(activityID int64) map[string]int64 {
	out := map[string]int64{}
	if m, ok := s.per.Peek(activityID); ok {
		m.Range(func(k, v any) bool {
			out[k.(*shedKind).key] = v.(*atomic.Int64).Load()
			return true
		})
	}
	return out
}

// flush hands the counts since the last flush to the fleet's tallies.
func (s *shedCounter) flush(ctx context.Context) {
	if s.tallies == nil {
		return
	}
	d := s.deltas.Drain()
	if err := s.tallies.Add(ctx, "gw:", d); err != nil {
		s.deltas.Undrain(d)
		s.log.Warn("hand sheds to the fleet's tallies", "err", err)
	}
}

// run flushes every second until ctx ends.
func (s *shedCounter) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
		}
		s.flush(ctx)
	}
}
