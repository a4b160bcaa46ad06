package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/seckill/flashsale/gateway/auth"
	"github.com/seckill/flashsale/gateway/fleet"
	"github.com/seckill/flashsale/gateway/ratelimit"
	"github.com/seckill/flashsale/gateway/wasm"
	"github.com/seckill/flashsale/idl/kitex_gen/rpc/seckill"
)

// Trusted context headers: set by the gateway for plugins and the backend; the same
// headers from a client are dropped before anything reads them.
const (
	HeaderUser     = "X-Seckill-User"
	HeaderActivity = "X-Seckill-Activity"
	HeaderItem     = "X-Seckill-Item"
	HeaderRealIP   = "X-Real-IP"
)

var trustedHeaders = []string{HeaderUser, HeaderActivity, HeaderItem, HeaderRealIP}

// Gateway is the request handling of the edge. routes.go lists its routes; the
// handlers live in files named after what they serve (catalog.go, orders.go,
// admin_activities.go, ...), the middleware in middleware.go.
type Gateway struct {
	cfg      Config
	backend  seckill.Client
	verifier *auth.Verifier
	admin    *auth.AdminCheck
	limiter  *ratelimit.Limiter
	edge     *edgeCache
	tickets  *endedTickets // ended tickets' results, by owner (tickets.go)
	ips      *clientIPs
	routes   []routeOf     // what Register mounted, for Allow
	waits    waiters       // shoppers' ticket waits at once
	failLog  *rate.Limiter // how often a failed request is logged
	shed     *shedCounter
	metrics  *httpMetrics
	registry *prometheus.Registry
	plugins  *wasm.Manager
	fleet    *fleet.Agent
	shared   SharedLimiter // nil: per-user limits are this gateway's own
	keys     KeyChecker    // nil: retries are known by this gateway's own memory
	room     *room         // the waiting room (waitroom.go)
	log      *slog.Logger
}

// SharedLimiter keeps a rate limit across the fleet's gateways (Redis): a token of
// key's bucket of rps a second, burst at once.
type SharedLimiter interface {
	Allow(ctx context.Context, key string, rps float64, burst int) (ok bool, retryAfter time.Duration, err error)
}

// Limiter is the gateway's rate limiter (operators change it at run time).
func (g *Gateway) Limiter() *ratelimit.Limiter { return g.limiter }

// each converts every element of a list for an answer. The result is never
// nil: an empty list is [] on the wire, not null.
func each[T, U any](in []T, f func(T) U) []U {
	out := make([]U, 0, len(in))
	for _, v := range in {
		out = append(out, f(v))
	}
	return out
}
