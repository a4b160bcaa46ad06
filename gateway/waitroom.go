// The waiting room of POST /api/v1/orders (docs/WAITING_ROOM.md): for an activity that
// has it on, it runs after the plugins and before the call to the backend, and
// either lets the order go on (then frees its slot once the backend answered) or
// answers with the shopper's place in line.

package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/gateway/api"
	"github.com/seckill/flashsale/internal/secret"
)

// RoomConfig tunes the waiting room of the activities that have it on.
type RoomConfig struct {
	// Secret is the HMAC key of queue tokens, the same on every gateway of the fleet;
	// "": derived from JWTSecret.
	Secret string `yaml:"secret"`
	// PlaceTTL: a place nobody asked about for this long lapses (and its token no
	// longer gives it back). 0: 30 s.
	PlaceTTL time.Duration `yaml:"place_ttl"`
	// PollMin and PollMax bound the retry_after a queued shopper is given. 0: 250 ms
	// and 5 s.
	PollMin time.Duration `yaml:"poll_min"`
	PollMax time.Duration `yaml:"poll_max"`
}

func (c *RoomConfig) defaults() {
	if c.PlaceTTL <= 0 {
		c.PlaceTTL = 30 * time.Second
	}
	if c.PollMin <= 0 {
		c.PollMin = 250 * time.Millisecond
	}
	if c.PollMax <= 0 {
		c.PollMax = 5 * time.Second
	}
	c.PollMax = max(c.PollMax, c.PollMin)
}

// HeaderQueueToken carries a queued shopper's token on the next try of the same order.
const HeaderQueueToken = "Queue-Token"

// layerRoom is the waiting room's layer in the shed counts.
const layerRoom = "room"

// room is the gateway's side of the waiting room.
type room struct {
	line    domain.Line // nil: no line; activities with the room on are served without it
	cfg     RoomConfig
	key     []byte // queue tokens' HMAC key
	lease   time.Duration
	metrics *roomMetrics
	held    atomic.Int32 // queued shoppers held at once (holdInLine)
}

func newRoom(line domain.Line, cfg RoomConfig, jwtSecret string, rpcTimeout time.Duration, reg prometheus.Registerer) (*room, error) {
	cfg.defaults()
	key := cfg.Secret
	if key != "" {
		// Whoever guesses it can mint a place at the head of every line.
		if err := secret.Check(SettingRoomSecret, key); err != nil {
			return nil, err
		}
	} else {
		key = jwtSecret // checked as gateway.jwt_secret
	}
	if key == "" {
		return nil, fmt.Errorf("the waiting room needs a key for its queue tokens: set %s (or gateway.jwt_secret, from which it is derived)", SettingRoomSecret)
	}
	if cfg.PlaceTTL < 2*cfg.PollMax {
		return nil, fmt.Errorf("gateway.waiting_room.place_ttl (%s) must be at least twice poll_max (%s): a shopper who polls as told must keep the place", cfg.PlaceTTL, cfg.PollMax)
	}
	return &room{line: line, cfg: cfg, key: queueKey(key), lease: rpcTimeout + 2*time.Second, metrics: newRoomMetrics(reg)}, nil
}

// waitRoom runs the waiting room in front of next, the call to the backend.
func (g *Gateway) waitRoom(next app.HandlerFunc) app.HandlerFunc {
	return func(ctx context.Context, c *app.RequestContext) {
		if c.IsAborted() {
			return
		}
		// Past the plugins: whatever the room answers is not a plugin's refusal.
		c.Set("forwarded", true)
		b := orderOf(ctx, c)
		a, _, err := g.edge.activity(ctx, b.ActivityID)
		if err != nil {
			failErr(c, err)
			return
		}
		if !a.WaitingRoom || g.room.line == nil || stateOf(ctx, c).retry {
			// A retry of an admitted order takes no place: the backend answers it
			// with the first attempt's outcome and takes nothing.
			next(ctx, c)
			return
		}
		wait := stateOf(ctx, c).wait // how long a queued shopper waits in this request
		e := domain.LineEntry{ActivityID: b.ActivityID, ItemID: b.ItemID, UserID: userOf(ctx, c), Buckets: int(a.BucketCount),
			Factor: a.AdmissionFactor, PlaceTTL: g.room.cfg.PlaceTTL, Lease: g.room.lease, Quantity: b.Quantity}
		if raw := c.GetHeader(HeaderQueueToken); len(raw) > 0 {
			t, err := parseQueueToken(g.room.key, string(raw))
			if err != nil {
				g.shed.add(b.ActivityID, layerInput, "bad_request")
				fail(c, domain.EBadRequest, "invalid queue token")
				return
			}
			if t.UserID != e.UserID || t.ActivityID != e.ActivityID || t.ItemID != e.ItemID {
				g.shed.add(b.ActivityID, layerInput, "bad_request")
				fail(c, domain.EBadRequest, "the queue token is for another shopper or item")
				return
			}
			e.Seq, e.Issued = t.Seq, t.Issued
		}
		d, err := g.enterLine(ctx, e)
		if err == nil && d.Outcome == domain.LineQueued && wait > 0 {
			d, err = g.holdInLine(ctx, e, d, wait, connAlive(c))
		}
		if err != nil {
			g.log.Warn("waiting room unavailable; refusing the order", "activity", b.ActivityID, "item", b.ItemID, "err", err)
			g.shed.add(b.ActivityID, layerRoom, domain.EUnavailable)
			fail(c, domain.EUnavailable, "the waiting room is unavailable; nothing was taken")
			return
		}
		switch d.Outcome {
		case domain.LineOpen:
			next(ctx, c)
		case domain.LineAdmitted:
			g.room.admitted(ctx, c, e, d.Seq, next, g.log)
		case domain.LineQueued:
			g.shed.add(b.ActivityID, layerRoom, "queued")
			wait := g.room.retryAfter(d)
			c.Header("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
			c.JSON(http.StatusAccepted, api.Queued{Status: "queued", Position: d.Position, RetryAfterMs: wait.Milliseconds(),
				QueueToken: queueToken{ActivityID: e.ActivityID, ItemID: e.ItemID, UserID: e.UserID, Seq: d.Seq, Issued: d.Now}.sign(g.room.key)})
		case domain.LineSoldOut, domain.LineLimit:
			if g.isRetry(ctx, b, e.UserID, idemOf(ctx, c)) {
				// A retry of an order the backend admitted: it answers with the first
				// outcome and takes nothing.
				next(ctx, c)
				return
			}
			if d.Outcome == domain.LineLimit {
				g.shed.add(b.ActivityID, layerRoom, domain.ELimitExceeded)
				fail(c, domain.ELimitExceeded, fmt.Sprintf("you already hold the per-user limit of item %d", b.ItemID))
				return
			}
			g.shed.add(b.ActivityID, layerRoom, domain.ESoldOut)
			fail(c, domain.ESoldOut, fmt.Sprintf("item %d is sold out", b.ItemID))
		case domain.LineBusy:
			g.shed.add(b.ActivityID, layerRoom, "busy")
			c.Header("Retry-After", "1")
			fail(c, domain.EConflict, "an order of yours for this item is being placed; ask again when it is answered")
		}
	}
}

// enterLine takes or asks after e's place in its line, counting the decision.
func (g *Gateway) enterLine(ctx context.Context, e domain.LineEntry) (domain.LineDecision, error) {
	d, err := g.room.line.Enter(ctx, e)
	if err != nil {
		g.room.metrics.decisions.WithLabelValues("error").Inc()
		return d, err
	}
	g.room.metrics.seen(e.ActivityID, e.ItemID, d)
	outcome := d.Outcome.String()
	if d.Outcome == domain.LineAdmitted && d.Waited > 0 {
		outcome = "admitted_from_line"
		g.room.metrics.wait.Observe(d.Waited.Seconds())
	}
	g.room.metrics.decisions.WithLabelValues(outcome).Inc()
	return d, nil
}

// maxLineWaits bounds the queued shoppers a gateway holds at once (?wait=); past it
// they are answered at once, to ask again after retry_after_ms. A held shopper costs
// a goroutine and the line's look at each pause, as a poll would.
const maxLineWaits = 10_000

// hangUpCheck is how often a held shopper's connection is looked at: hertz does not
// end a request's context when its client hangs up.
const hangUpCheck = 500 * time.Millisecond

// wakePositions: shoppers held this near the head ask again as soon as a slot frees
// anywhere in the fleet; those further back keep to their pace (a freed slot wakes a
// few, not the whole line).
const wakePositions = 16

// holdInLine keeps a queued shopper who asked to wait (?wait=, at most MaxTicketWait)
// in the request: it asks after the place again as a poll with its token would (after
// retry_after), at once when this gateway hears the item sell out, and, near the
// head, when a slot of the line frees anywhere in the fleet, until the shopper is
// admitted, the item is sold out, or the wait ends
// (then the shopper is still queued, with a fresh token). Past the bounds on held
// waits (the gateway's, the shopper's) the shopper gets d back at once. A shopper
// who hangs up is let go within hangUpCheck (alive): the hold and the shopper's
// share of waits are free again, and the place stays theirs for the token's life.
func (g *Gateway) holdInLine(ctx context.Context, e domain.LineEntry, d domain.LineDecision, wait time.Duration, alive func() bool) (domain.LineDecision, error) {
	if g.room.held.Add(1) > maxLineWaits {
		g.room.held.Add(-1)
		return d, nil
	}
	defer g.room.held.Add(-1)
	if !g.waits.take(e.UserID) {
		return d, nil
	}
	defer g.waits.give(e.UserID)
	deadline := time.Now().Add(wait)
	soldOut := g.edge.soldOutSignal(e.ActivityID, e.ItemID)
	check := time.NewTicker(hangUpCheck)
	defer check.Stop()
	for d.Outcome == domain.LineQueued {
		left := time.Until(deadline)
		if left <= 0 {
			return d, nil
		}
		var freed <-chan struct{} // nil: never ready
		if d.Position <= wakePositions {
			freed = g.edge.freedSignal(e.ActivityID, e.ItemID)
		}
		timer := time.NewTimer(min(g.room.retryAfter(d), left))
	pause:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return d, nil
			case <-check.C:
				if !alive() {
					timer.Stop()
					return d, nil // nobody to admit: the slot goes to one who waits
				}
				continue
			case <-soldOut:
				timer.Stop()
				soldOut = nil // asked once; the line says what it says
			case <-freed:
				timer.Stop()
			case <-timer.C:
			}
			break pause
		}
		if a, _, err := g.edge.activity(ctx, e.ActivityID); err == nil && !a.WaitingRoom {
			// The operator turned the room off meanwhile: on to the backend, as
			// every other order now goes.
			d.Outcome = domain.LineOpen
			return d, nil
		}
		e.Seq, e.Issued = d.Seq, d.Now // the place the shopper holds
		var err error
		if d, err = g.enterLine(ctx, e); err != nil {
			return d, err
		}
	}
	return d, nil
}

// admitted runs an admitted order on to the backend and then frees its slot in the
// line, even when next panics (the recovery middleware answers 500 further out):
//   - 503 took nothing: the shopper goes back to the place, to retry at the head;
//   - 504 may have taken a unit, and the backend may still be working on it: the slot
//     stays held until its lease ends, so the fleet's bound on orders in flight
//     holds while the backend is slow; a retry meanwhile is told the order is being
//     placed, and after that learns its outcome with its idempotency key;
//   - any other answer (or a panic) frees the slot.
func (r *room) admitted(ctx context.Context, c *app.RequestContext, e domain.LineEntry, seq int64, next app.HandlerFunc, log *slog.Logger) {
	status := 0
	defer func() {
		if status == http.StatusGatewayTimeout {
			return
		}
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := r.line.Leave(lctx, e.ActivityID, e.ItemID, e.UserID, seq, status == http.StatusServiceUnavailable); err != nil {
			log.Warn("free a waiting-room slot; it frees when its lease ends", "item", e.ItemID, "err", err)
		}
	}()
	next(ctx, c)
	status = c.Response.StatusCode()
}

// retryAfter is how long a queued shopper should wait before asking again: about half
// the time the line needs to reach them at its admission rate, within the bounds.
func (r *room) retryAfter(d domain.LineDecision) time.Duration {
	var wait time.Duration
	if d.Rate > 0 {
		wait = time.Duration(float64(d.Position) / d.Rate / 2 * float64(time.Second))
	} else {
		wait = time.Duration(d.Position) * 10 * time.Millisecond
	}
	return min(max(wait, r.cfg.PollMin), r.cfg.PollMax)
}

// roomStats adds each item's line to an activity's stats.
func (g *Gateway) roomStats(ctx context.Context, a activityRoom, items []api.ItemStats) error {
	if g.room.line == nil {
		return nil
	}
	for k := range items {
		st, err := g.room.line.Stats(ctx, a.id, items[k].ItemID, a.buckets, a.factor)
		if err != nil {
			return err
		}
		items[k].WaitingRoom = &api.RoomStats{Enabled: a.on, K: a.factor, QueueLength: st.Length, InFlight: st.InFlight,
			Capacity: st.Capacity, Places: st.Places, Admitted: st.Admitted, AdmittedFromLine: st.AdmittedFromLine,
			SoldOutTold: st.SoldOutTold, Lapsed: st.Lapsed, AdmissionRate: float64(int64(st.Rate*100)) / 100,
			AvgWaitMs: st.AvgWait.Milliseconds(), HeadWaitMs: st.HeadWait.Milliseconds()}
	}
	return nil
}

// activityRoom is what the stats need of an activity's waiting room.
type activityRoom struct {
	id      int64
	on      bool
	factor  float64
	buckets int
}

// roomMetrics are the waiting room's Prometheus series.
type roomMetrics struct {
	decisions *prometheus.CounterVec
	wait      prometheus.Histogram

	mu    sync.Mutex
	items map[[2]int64]lineSeen // what this gateway last saw of each line
}

type lineSeen struct {
	d  domain.LineDecision
	at time.Time
}

func newRoomMetrics(reg prometheus.Registerer) *roomMetrics {
	m := &roomMetrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "seckill_gateway_room_decisions_total",
			Help: "Waiting-room steps by outcome: admitted (at once), admitted_from_line, queued, sold_out, busy, open (no sale state: unbounded), error."}, []string{"outcome"}),
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "seckill_gateway_room_wait_seconds",
			Help: "How long shoppers admitted from a waiting room's line waited.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}),
		items: map[[2]int64]lineSeen{},
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.wait, m)
	}
	return m
}

func (m *roomMetrics) seen(activityID, itemID int64, d domain.LineDecision) {
	m.mu.Lock()
	m.items[[2]int64{activityID, itemID}] = lineSeen{d: d, at: time.Now()}
	m.mu.Unlock()
}

var (
	roomLengthDesc   = prometheus.NewDesc("seckill_gateway_room_queue_length", "Places in a waiting room's line, as this gateway last saw it (the line is the fleet's: take the max over gateways).", []string{"activity", "item"}, nil)
	roomInFlightDesc = prometheus.NewDesc("seckill_gateway_room_in_flight", "A waiting room's admissions in flight to the backend, fleet-wide, as this gateway last saw them.", []string{"activity", "item"}, nil)
	roomCapDesc      = prometheus.NewDesc("seckill_gateway_room_capacity", "A waiting room's bound on admissions in flight, ceil(k x stock left), as this gateway last saw it.", []string{"activity", "item"}, nil)
)

// Describe implements prometheus.Collector.
func (m *roomMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- roomLengthDesc
	ch <- roomInFlightDesc
	ch <- roomCapDesc
}

// Collect implements prometheus.Collector: the lines this gateway saw in the last
// minute.
func (m *roomMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, s := range m.items {
		if time.Since(s.at) > time.Minute {
			delete(m.items, k)
			continue
		}
		a, i := strconv.FormatInt(k[0], 10), strconv.FormatInt(k[1], 10)
		ch <- prometheus.MustNewConstMetric(roomLengthDesc, prometheus.GaugeValue, float64(s.d.Length), a, i)
		ch <- prometheus.MustNewConstMetric(roomInFlightDesc, prometheus.GaugeValue, float64(s.d.InFlight), a, i)
		ch <- prometheus.MustNewConstMetric(roomCapDesc, prometheus.GaugeValue, float64(s.d.Capacity), a, i)
	}
}
