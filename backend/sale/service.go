// Package sale is the backend's engine: it admits order requests against Redis, writes
// them to MySQL at once (sync) or hands them to the queue (async, bucket), and serves
// the catalog, the orders and the operators' changes.
package sale

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"golang.org/x/sync/singleflight"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/telemetry"
	"github.com/seckill/flashsale/internal/coalesce"
	"github.com/seckill/flashsale/internal/randhex"
	"github.com/seckill/flashsale/internal/shardlru"
	"github.com/seckill/flashsale/internal/tally"
)

// Config tunes the service.
type Config struct {
	Catalog CatalogConfig
	// PublishAttempts is how often a send to the queue is tried before the request is
	// refused and its stock given back (the client library retries inside each).
	PublishAttempts int
	// ReplayWait is how long a replayed sync request waits for the first to finish
	// before it answers with the ticket, pending (well under the gateway's RPC timeout).
	ReplayWait time.Duration
	// EndWithin bounds how long a ticket whose deduction failed in doubt stays in
	// flight before it is ended (its stock back).
	EndWithin time.Duration
	// BatchSize is the most concurrent requests of one item that share one stock
	// script call, one queue send, one settle script, or (sync) one transaction; 1
	// turns batching off. Default 64.
	BatchSize int
	// BatchWait is how long a batch of admissions, sends or settles waits behind its
	// item's calls in progress before it goes alongside them (default 1 ms). A
	// request that finds its item idle never waits; sync writes of an item go one
	// transaction at a time whatever the wait.
	BatchWait time.Duration
	// TicketSecret is the secret every backend of a fleet shares from which the key
	// of its tickets is derived (domain.TicketKey; the server gives backend.ticket_secret,
	// or its RPC secret when that is unset). Empty: a random key of this process's
	// own, so a ticket another backend admitted that Redis and MySQL have both lost
	// reads not_found here. PreviousTicketSecret is the one it replaced (none when
	// empty): tickets of that key still read as this fleet's.
	TicketSecret, PreviousTicketSecret []byte
	// ResetsHold is how long an operator's change holds the reconciler's resets of an
	// item it takes units from, unless renewed (the change renews it every third of
	// this while it runs): a backend that dies mid-change blocks the item's repairs
	// this long at most (default 15 s).
	ResetsHold time.Duration
	// StaleTicket and StaleSync are how long after its admission a ticket lost with
	// Redis's data (known to neither Redis nor MySQL) may still be written: until
	// then it reads pending, after it is voided at its read and reads failed. The
	// reconciler's windows for tickets in flight (ReconcileConfig): 15 min and 30 s
	// by default.
	StaleTicket, StaleSync time.Duration
	// OrdersSettle holds orders written this recently back from the operators' pages
	// of an activity's orders (domain.OrderQuery.WrittenBefore), so a walk through them
	// during a sale never skips one that was still committing. Default 5 s; negative:
	// none.
	OrdersSettle time.Duration
}

// Deps are the ports a Service works through.
type Deps struct {
	Catalog   domain.Catalog     // activities and items for good
	Orders    domain.OrderStore  // orders, buyers and stock rows: the last word
	Ledger    domain.StockLedger // the hot state where shoppers are admitted
	Cache     domain.Cache       // the catalog's shared cache
	Publisher domain.Publisher   // nil when no activity uses a queued strategy
	Tallies   Tallies            // the fleet's counts of refusals; nil: this process's own
	Changes   Changes            // word of activity changes between processes; nil: none
	Leases    domain.Leases      // the background duties' lease; nil: they always run here
	Metrics   *Metrics           // nil: unregistered series
	Log       *slog.Logger
}

// Service is the backend. It is safe for concurrent use.
type Service struct {
	activities domain.Catalog
	orders     domain.OrderStore
	ledger     domain.StockLedger
	pub        domain.Publisher
	catalog    *Catalog
	cfg        Config
	log        *slog.Logger
	metrics    *Metrics

	restore   singleflight.Group
	voids     singleflight.Group // lostTicket's voids, by ticket
	voidSlots chan struct{}      // lostTicket's voids under way, at most maxVoids
	tallies   Tallies
	changes   Changes
	leases    domain.Leases
	refused   tally.Counts // since the last hand-over to tallies
	tickets   *domain.TicketKey
	lost      *shardlru.Cache[lostKey, time.Time] // tickets lostTicket found lost, until when to believe it
	// itemOf maps item ids to their activity's (an item never moves), so an item's
	// read goes through the activity's caches, not to MySQL each time.
	itemOf *shardlru.Cache[int64, int64]
	shedMu sync.Mutex
	shed   map[int64]map[string]*atomic.Int64 // activity -> reason -> count, this process's

	// Batches of concurrent requests of one item (nil: batching off).
	deducts *coalesce.Batcher[deductKey, domain.Deduction, deductResult]
	settles *coalesce.Batcher[settleKey, domain.Ticket, error]
	sends   *coalesce.Batcher[sendKey, domain.OrderRequest, error] // nil also when the queue has no batch send
	writes  *coalesce.Batcher[writeKey, domain.OrderRequest, writeResult]
	reads   *coalesce.Batcher[itemKey, domain.Ticket, ticketRead] // shoppers' ticket polls

	// Work the service carries on after a request's answer (settleSoon): life is
	// stopped and bg waited for in Close.
	life context.Context
	stop context.CancelFunc
	bg   sync.WaitGroup
}

// Tallies sum counts over the fleet (backend/redis.Tallies): the backends' refusals
// under "be:", the gateways' sheds under "gw:".
type Tallies interface {
	Add(ctx context.Context, prefix string, counts map[int64]map[string]int64) error
	Read(ctx context.Context, activity int64, prefix string) (map[string]int64, error)
}

// Changes carries word of an operator's change of an activity to every process of the
// fleet, so each drops its cached copy at once instead of when the copy expires.
type Changes interface {
	AnnounceActivity(ctx context.Context, id, version int64) error
	// WatchActivities calls changed for each announcement until stop is called.
	WatchActivities(ctx context.Context, changed func(id, version int64)) (stop func() error, err error)
}

// ticketKey derives the key of tickets from a fleet's secret (nil for none).
func ticketKey(secret []byte) []byte {
	if len(secret) == 0 {
		return nil
	}
	derive := hmac.New(sha256.New, secret)
	derive.Write([]byte("seckill ticket key v1"))
	return derive.Sum(nil)
}

// New returns a Service on d's ports.
func New(d Deps, cfg Config) *Service {
	if cfg.PublishAttempts <= 0 {
		cfg.PublishAttempts = 3
	}
	if cfg.ReplayWait <= 0 {
		cfg.ReplayWait = time.Second
	}
	if cfg.EndWithin <= 0 {
		cfg.EndWithin = 30 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 64
	}
	if cfg.OrdersSettle == 0 {
		cfg.OrdersSettle = 5 * time.Second
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = time.Millisecond
	}
	if cfg.ResetsHold <= 0 {
		cfg.ResetsHold = 15 * time.Second
	}
	stale := ReconcileConfig{StaleTicket: cfg.StaleTicket, StaleSync: cfg.StaleSync}
	stale.defaults()
	cfg.StaleTicket, cfg.StaleSync = stale.StaleTicket, stale.StaleSync
	secret := cfg.TicketSecret
	if len(secret) == 0 {
		secret = []byte(randhex.String(32))
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	s := &Service{
		activities: d.Catalog, orders: d.Orders, ledger: d.Ledger, pub: d.Publisher, tallies: d.Tallies, changes: d.Changes, leases: d.Leases, cfg: cfg, log: d.Log, metrics: d.Metrics,
		catalog:   NewCatalog(d.Catalog, d.Cache, cfg.Catalog, d.Log),
		shed:      map[int64]map[string]*atomic.Int64{},
		tickets:   domain.NewTicketKey(ticketKey(secret), ticketKey(cfg.PreviousTicketSecret)),
		lost:      shardlru.New[lostKey, time.Time](4096),
		itemOf:    shardlru.New[int64, int64](1 << 16),
		voidSlots: make(chan struct{}, maxVoids),
	}
	s.life, s.stop = context.WithCancel(context.Background())
	if cfg.BatchSize > 1 {
		overlap := coalesce.Config{Size: cfg.BatchSize, Overlap: true, Wait: cfg.BatchWait}
		s.deducts = coalesce.New(overlap, s.runDeducts)
		s.settles = coalesce.New(overlap, s.runSettles)
		s.reads = coalesce.New(overlap, s.runReads)
		if bp, ok := d.Publisher.(domain.BatchPublisher); ok {
			s.sends = coalesce.New(overlap, func(ctx context.Context, _ sendKey, rs []domain.OrderRequest) []error {
				return s.runSends(ctx, bp, rs)
			})
		}
		// One transaction of an item's bucket at a time: two would race on its stock
		// row's version, and the loser would only try again.
		s.writes = coalesce.New(coalesce.Config{Size: cfg.BatchSize}, s.runWrites)
	}
	return s
}

// Close stops the work the service carries on after answering (the ends of tickets
// whose deduction may have run: the reconciler ends those it leaves) and returns once
// it has stopped. Call it after the last request.
func (s *Service) Close() {
	s.stop()
	s.bg.Wait()
}

// Catalog is the service's read path of activities.
func (s *Service) Catalog() *Catalog { return s.catalog }

// PlaceOrder is one shopper's attempt to buy.
type PlaceOrder struct {
	UserID, ActivityID, ItemID int64
	Quantity                   int
	IdempotencyKey             string
	Trace                      map[string]string
}

// Placed is the answer to an admitted attempt.
type Placed struct {
	Status   domain.TicketStatus // created (sync) or pending (queued)
	OrderID  int64
	Ticket   string
	Replayed bool
}

func (s *Service) count(activityID int64, reason string) {
	s.metrics.Refused.WithLabelValues(reason).Inc()
	s.shedMu.Lock()
	m := s.shed[activityID]
	if m == nil {
		m = map[string]*atomic.Int64{}
		s.shed[activityID] = m
	}
	c := m[reason]
	if c == nil {
		c = &atomic.Int64{}
		m[reason] = c
	}
	s.shedMu.Unlock()
	c.Add(1)
	if s.tallies != nil {
		s.refused.Add(activityID, reason, 1)
	}
}

// FlushTallies hands the refusals counted since the last time to the fleet's tallies,
// every interval until ctx ends.
func (s *Service) FlushTallies(ctx context.Context, every time.Duration) {
	if s.tallies == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// The last hand-over: bounded, as the caller waits for it.
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			s.flushTallies(last)
			cancel()
			return
		case <-t.C:
		}
		s.flushTallies(ctx)
	}
}

func (s *Service) flushTallies(ctx context.Context) {
	if s.tallies == nil {
		return
	}
	d := s.refused.Drain()
	if err := s.tallies.Add(ctx, "be:", d); err != nil {
		s.refused.Undrain(d)
		s.log.Warn("hand refusals to the fleet's tallies", "err", err)
	}
}

// newTicket mints the ticket of an attempt of userID admitted now.
func (s *Service) newTicket(activityID, itemID, userID int64) string {
	var random [8]byte
	rand.Read(random[:])
	return s.tickets.Mint(activityID, itemID, userID, time.Now(), random[:])
}

func homeBucket(userID int64, buckets int) int {
	if buckets <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(strconv.FormatInt(userID, 10)))
	return int(h.Sum32() % uint32(buckets))
}

// PlaceOrder admits or refuses one attempt. Refusals are *domain.Error; unavailable
// means nothing was taken, outcome_unknown that the order may have been taken (a retry
// with the same idempotency key learns which).
func (s *Service) PlaceOrder(ctx context.Context, p PlaceOrder) (Placed, error) {
	start := time.Now()
	ctx, span := telemetry.Tracer().Start(telemetry.Extract(ctx, p.Trace), "backend.place_order")
	defer span.End()
	res, err := s.placeOrder(ctx, p)
	outcome := "admitted"
	if err != nil {
		outcome = domain.ErrorCode(err)
		s.count(p.ActivityID, outcome)
		span.SetStatus(codes.Error, outcome)
	}
	span.SetAttributes(attribute.String("seckill.outcome", outcome), attribute.String("seckill.ticket", res.Ticket))
	s.metrics.Place.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	return res, err
}

func (s *Service) placeOrder(ctx context.Context, p PlaceOrder) (Placed, error) {
	if p.UserID <= 0 || p.ActivityID <= 0 || p.ItemID <= 0 {
		return Placed{}, domain.Errorf(domain.EBadRequest, "user, activity and item ids must be positive")
	}
	if p.Quantity <= 0 || p.Quantity > domain.MaxQuantity {
		return Placed{}, domain.Errorf(domain.EBadRequest, "quantity must be 1 to %d", domain.MaxQuantity)
	}
	if len(p.IdempotencyKey) > domain.MaxIdemKey {
		return Placed{}, domain.Errorf(domain.EBadRequest, "idempotency key is longer than %d bytes", domain.MaxIdemKey)
	}
	a, item, err := s.onSale(ctx, p.ActivityID, p.ItemID, s.catalog.Activity)
	if domain.IsCode(err, domain.ENotFound) {
		// The local copy may predate another backend's create or publish.
		a, item, err = s.onSale(ctx, p.ActivityID, p.ItemID, s.catalog.Recheck)
	}
	if domain.IsCode(err, domain.ENotFound) && a != nil && p.IdempotencyKey != "" {
		// An item taken off sale after the first attempt with this key was admitted:
		// the retry gets that attempt's outcome.
		if _, known := a.Item(p.ItemID); known {
			tk, ok, kerr := s.ledger.KeyTicket(ctx, a.ID, p.ItemID, p.UserID, p.IdempotencyKey)
			switch {
			case kerr != nil:
				return Placed{}, s.unavailable(kerr) // it may be a retry: no definite refusal
			case ok:
				return s.replay(ctx, p.UserID, a, tk)
			}
		}
	}
	if err != nil {
		return Placed{}, err
	}
	d := domain.Deduction{
		ActivityID: a.ID, ItemID: item.ID, UserID: p.UserID, Quantity: p.Quantity,
		IdempotencyKey: p.IdempotencyKey, Ticket: s.newTicket(a.ID, item.ID, p.UserID),
		Buckets: a.BucketCount, HomeBucket: homeBucket(p.UserID, a.BucketCount),
	}
	got, err := s.deduct(ctx, a, d)
	if err != nil {
		return Placed{}, err
	}
	if got.Replayed {
		return s.replay(ctx, p.UserID, a, got.Ticket)
	}
	r := domain.OrderRequest{
		Ticket: got.Ticket, UserID: p.UserID, ActivityID: a.ID, ItemID: item.ID, Bucket: got.Bucket, Parts: got.Parts,
		Quantity: p.Quantity, AmountCents: item.PriceCents * int64(p.Quantity), IdemKey: p.IdempotencyKey, AdmittedAt: time.Now().UnixMilli(),
	}
	if a.Strategy.Queued() {
		return s.enqueue(ctx, a, r)
	}
	return s.writeNow(ctx, a, r)
}

// onSale returns the activity and item of an order, or not_found when the item is not
// on sale (with the activity, when it was read).
func (s *Service) onSale(ctx context.Context, activityID, itemID int64, read func(context.Context, int64) (*domain.Activity, error)) (*domain.Activity, domain.Item, error) {
	a, err := read(ctx, activityID)
	if err != nil {
		return nil, domain.Item{}, s.unavailable(err)
	}
	item, err := a.OnSale(itemID)
	if err != nil {
		return a, domain.Item{}, err // the activity as read, for a retry's replay
	}
	return a, item, nil
}

// deduct runs the ledger's pre-deduction, restoring the item from the order store
// first when the ledger lost it. When the call fails (a timeout, a connection lost
// after the script was sent), the script may have run, or may still run: the ticket
// is ended at once (settled failed, which gives back whatever it took, and leaves a
// result that refuses the script if it lands later), so the answer can say nothing
// was taken; when even that fails, the answer is outcome_unknown and the ticket is
// ended in the background within seconds.
func (s *Service) deduct(ctx context.Context, a *domain.Activity, d domain.Deduction) (domain.Deducted, error) {
	dctx, dspan := telemetry.Tracer().Start(ctx, "redis.deduct")
	got, err := s.deductCall(dctx, d)
	dspan.End()
	if errors.Is(err, domain.ErrNotLoaded) {
		// Redis lost the sale (restart) or was never warmed: restore it from MySQL once,
		// then try again. Until then nothing is deducted.
		if rerr := s.restoreItem(ctx, a, d.ItemID); rerr != nil {
			s.log.Error("restore sale state", "activity", a.ID, "item", d.ItemID, "err", rerr)
			return domain.Deducted{}, domain.Errorf(domain.EUnavailable, "the sale's stock is being restored; try again")
		}
		got, err = s.deductCall(ctx, d)
	}
	var de *domain.Error
	switch {
	case err == nil:
		s.metrics.Lua.WithLabelValues("ok").Inc()
		return got, nil
	case errors.As(err, &de):
		s.metrics.Lua.WithLabelValues(de.Code).Inc()
		return got, err
	}
	s.metrics.Lua.WithLabelValues("error").Inc()
	if errors.Is(err, domain.ErrNotSent) {
		// The script never left: nothing can have been taken, nothing to end.
		s.log.Warn("deduct not sent; the stock store is unreachable", "ticket", d.Ticket, "err", err)
		return domain.Deducted{}, domain.Errorf(domain.EUnavailable, "the stock store is unreachable; nothing was taken")
	}
	s.log.Warn("deduct failed; ending its ticket in case the script ran", "ticket", d.Ticket, "err", err)
	t := domain.Ticket{ID: d.Ticket, UserID: d.UserID, Status: domain.TicketFailed, Reason: "deduct_failed"}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	_, serr := s.ledger.Settle(sctx, t, a.BucketCount)
	cancel()
	if serr == nil {
		return domain.Deducted{}, domain.Errorf(domain.EUnavailable, "the stock could not be reserved; nothing was taken")
	}
	r := domain.OrderRequest{Ticket: d.Ticket, UserID: d.UserID, ActivityID: d.ActivityID, ItemID: d.ItemID, Quantity: d.Quantity}
	s.bg.Go(func() { s.settleSoon(t, a.BucketCount, r) })
	return domain.Deducted{}, domain.Errorf(domain.EOutcomeUnknown,
		"the stock store did not answer; the order may have been reserved: retry with the same key to learn the outcome (a reservation is ended within %s, or by the reconciler while the stores cannot be reached)", s.cfg.EndWithin)
}

// deductCall runs the ledger's pre-deduction of d, in one script call with the item's
// other requests of the moment. An error that is neither a refusal nor ErrNotLoaded
// is the call failing: d may or may not have been taken.
func (s *Service) deductCall(ctx context.Context, d domain.Deduction) (domain.Deducted, error) {
	if s.deducts == nil {
		return s.ledger.Deduct(ctx, d)
	}
	r := s.deducts.Do(ctx, deductKey{activity: d.ActivityID, item: d.ItemID, buckets: d.Buckets}, d)
	return r.got, r.err
}

type deductKey struct {
	activity, item int64
	buckets        int
}

type deductResult struct {
	got domain.Deducted
	err error
}

// runDeducts runs one batch of pre-deductions: a lone one as Deduct, more in one
// DeductBatch, whose failure is each request's.
func (s *Service) runDeducts(ctx context.Context, _ deductKey, ds []domain.Deduction) []deductResult {
	s.metrics.Batch.WithLabelValues("deduct").Observe(float64(len(ds)))
	out := make([]deductResult, len(ds))
	if len(ds) == 1 {
		out[0].got, out[0].err = s.ledger.Deduct(ctx, ds[0])
		return out
	}
	got, errs, err := s.ledger.DeductBatch(ctx, ds)
	for i := range out {
		if err != nil {
			out[i].err = err
			continue
		}
		out[i] = deductResult{got: got[i], err: errs[i]}
	}
	return out
}

// settleCall settles t in one script call with the item's other settles of the moment.
func (s *Service) settleCall(ctx context.Context, t domain.Ticket, buckets int) error {
	if s.settles == nil {
		_, err := s.ledger.Settle(ctx, t, buckets)
		return err
	}
	a, i, err := domain.ParseTicket(t.ID)
	if err != nil {
		return err
	}
	return s.settles.Do(ctx, settleKey{activity: a, item: i, buckets: buckets}, t)
}

type settleKey struct {
	activity, item int64
	buckets        int
}

func (s *Service) runSettles(ctx context.Context, k settleKey, ts []domain.Ticket) []error {
	s.metrics.Batch.WithLabelValues("settle").Observe(float64(len(ts)))
	out := make([]error, len(ts))
	if len(ts) == 1 {
		_, out[0] = s.ledger.Settle(ctx, ts[0], k.buckets)
		return out
	}
	_, err := s.ledger.SettleBatch(ctx, ts, k.buckets)
	for i := range out {
		out[i] = err
	}
	return out
}

// publish hands r to the queue, in one send with the item's other requests of the
// moment when the queue takes batches.
func (s *Service) publish(ctx context.Context, r domain.OrderRequest) error {
	if s.sends == nil {
		return s.pub.Publish(ctx, r)
	}
	return s.sends.Do(ctx, sendKey{item: r.ItemID, bucket: r.Bucket}, r)
}

// sendKey is the queue's sharding key: requests of one item and bucket go to one queue.
type sendKey struct {
	item   int64
	bucket int
}

func (s *Service) runSends(ctx context.Context, bp domain.BatchPublisher, rs []domain.OrderRequest) []error {
	s.metrics.Batch.WithLabelValues("publish").Observe(float64(len(rs)))
	out := make([]error, len(rs))
	if len(rs) == 1 {
		out[0] = s.pub.Publish(ctx, rs[0])
		return out
	}
	err := bp.PublishBatch(ctx, rs)
	for i := range out {
		out[i] = err
	}
	return out
}

// write writes a sync order, in one transaction with the item's other sync orders of
// the moment that take from the same bucket (group commit); an order of several
// buckets is written on its own.
func (s *Service) write(ctx context.Context, r domain.OrderRequest, limit int) (domain.Written, error) {
	if s.writes == nil || len(r.Parts) > 1 {
		return s.orders.WriteOrder(ctx, r, limit)
	}
	res := s.writes.Do(ctx, writeKey{item: r.ItemID, bucket: r.Bucket, limit: limit}, r)
	return res.w, res.err
}

type writeKey struct {
	item   int64
	bucket int
	limit  int
}

type writeResult struct {
	w   domain.Written
	err error
}

// runWrites writes one group: a lone order as WriteOrder, more with WriteBatch, which
// answers each order as WriteOrder would (a failed commit is each order's unknown
// outcome, a refusal only the refused order's).
func (s *Service) runWrites(ctx context.Context, k writeKey, rs []domain.OrderRequest) []writeResult {
	s.metrics.Batch.WithLabelValues("write").Observe(float64(len(rs)))
	out := make([]writeResult, len(rs))
	if len(rs) == 1 {
		out[0].w, out[0].err = s.orders.WriteOrder(ctx, rs[0], k.limit)
		return out
	}
	ws, errs := s.orders.WriteBatch(ctx, rs, k.limit)
	for i := range out {
		out[i] = writeResult{w: ws[i], err: errs[i]}
	}
	return out
}

// settleSoon ends t, a ticket whose deduction may have run, trying again until it
// takes or cfg.EndWithin passes (then the reconciler's stale-ticket pass ends it).
// By then the reconciler may have sent the ticket on again (its republish), so it is
// decided in the order store first, as decide does: a void mark fences a write still
// to come, and an order already written makes the ticket created, never failed.
func (s *Service) settleSoon(t domain.Ticket, buckets int, r domain.OrderRequest) {
	ctx, cancel := context.WithTimeout(s.life, s.cfg.EndWithin)
	defer cancel()
	decided := false
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		if !decided {
			if o, voided, err := s.orders.VoidTicket(ctx, r); err == nil {
				decided = true
				switch {
				case !voided && o.Replayed(r.Ticket):
					t = domain.Ticket{ID: t.ID, UserID: t.UserID, Status: domain.TicketCreated, OrderID: o.ID, Reason: domain.ReasonReplayed}
				case !voided && o.Status != domain.OrderVoid:
					w := domain.OrderRequest{Ticket: o.Ticket, UserID: o.UserID, ActivityID: o.ActivityID, ItemID: o.ItemID, Bucket: o.Bucket,
						Parts: o.Parts, Quantity: o.Quantity, IdemKey: o.IdemKey, AdmittedAt: r.AdmittedAt} // what was written, where
					t = domain.Ticket{ID: t.ID, UserID: t.UserID, Status: domain.TicketCreated, OrderID: o.ID, Wrote: &w, WrittenAt: o.CreatedAt}
				}
			}
		}
		if decided {
			if _, err := s.ledger.Settle(ctx, t, buckets); err == nil {
				s.metrics.StaleSettle.WithLabelValues("ended_unknown").Inc()
				return
			}
		}
		select {
		case <-ctx.Done():
			if s.life.Err() != nil {
				s.log.Warn("stopping before a ticket whose deduction may have run was ended; the reconciler will", "ticket", t.ID)
			} else {
				s.log.Error("could not end a ticket whose deduction may have run; the reconciler will", "ticket", t.ID)
			}
			return
		case <-time.After(wait):
		}
	}
}

// unavailable passes domain errors through and turns anything else (a dependency
// failing) into unavailable, or outcome_unknown when the dependency may have made the
// change; the cause goes to the log, not to the client.
func (s *Service) unavailable(err error) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	s.log.Error("dependency failed", "err", err)
	if errors.Is(err, domain.ErrOutcomeUnknown) {
		return domain.Errorf(domain.EOutcomeUnknown, "a store did not say whether the change was made; retry to learn")
	}
	return &domain.Error{Code: domain.EUnavailable, Message: "a dependency is unavailable; nothing was taken"}
}

// settle records a ticket's end in the ledger; a failure leaves the ticket in flight
// for the reconciler, which ends it from the order store's record.
func (s *Service) settle(ctx context.Context, a *domain.Activity, t domain.Ticket) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.settleCall(sctx, t, a.BucketCount); err != nil {
		s.log.Warn("settle ticket; the reconciler will", "ticket", t.ID, "status", t.Status, "err", err)
	}
}

// created is the ticket of r written as w: a ledger that lost the ticket takes its
// units unless its load counted them (domain.Ticket.Wrote).
func created(r domain.OrderRequest, w domain.Written) domain.Ticket {
	t := domain.Ticket{ID: r.Ticket, UserID: r.UserID, Status: domain.TicketCreated, OrderID: w.Order.ID}
	switch {
	case w.Replay:
		t.Reason = domain.ReasonReplayed
	default: // written now or by an earlier try
		t.Wrote, t.WrittenAt = &r, w.Order.CreatedAt
	}
	return t
}

// writeNow writes a sync order in the request.
func (s *Service) writeNow(ctx context.Context, a *domain.Activity, r domain.OrderRequest) (Placed, error) {
	wctx, span := telemetry.Tracer().Start(ctx, "mysql.write_order")
	w, err := s.write(wctx, r, a.PerUserLimit)
	span.End()
	var de *domain.Error
	switch {
	case err == nil:
		s.settle(ctx, a, created(r, w))
		return Placed{Status: domain.TicketCreated, OrderID: w.Order.ID, Ticket: r.Ticket, Replayed: w.Replay}, nil
	case errors.As(err, &de) || domain.IsNotCommitted(err):
		reason, answer := "write_failed", s.unavailable(err)
		if de != nil {
			reason, answer = de.Code, err
		} else {
			s.log.Warn("write order failed before commit; stock given back", "ticket", r.Ticket, "err", err)
		}
		if de == nil || de.Code != domain.EVoided {
			// A void mark keeps the failure once Redis forgets it: a ticket neither
			// knows reads pending (lostTicket), and a replayed request may hold it.
			// Best effort: without it the ticket reads failed from Redis meanwhile.
			vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			o, voided, verr := s.orders.VoidTicket(vctx, r)
			cancel()
			if verr == nil && !voided && o.Status != domain.OrderVoid {
				return s.decide(ctx, a, r, reason) // written after all (a replay): decide answers it
			}
		}
		s.settle(ctx, a, domain.Ticket{ID: r.Ticket, UserID: r.UserID, Status: domain.TicketFailed, Reason: reason})
		return Placed{}, answer
	}
	// The commit's outcome is unknown: the void mark decides, against a commit still
	// landing (its insert holds the ticket's key until it ends).
	s.log.Warn("write order's outcome unknown; deciding it", "ticket", r.Ticket, "err", err)
	return s.decide(ctx, a, r, "write_failed")
}

// decide ends an admitted request whose write is in doubt: a void mark for its ticket
// (unless it was written, then it is the order), and the ticket settled accordingly.
// When the order store cannot be reached the ticket stays in flight for the
// reconciler, and the answer is outcome_unknown.
func (s *Service) decide(ctx context.Context, a *domain.Activity, r domain.OrderRequest, reason string) (Placed, error) {
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	o, voided, err := s.orders.VoidTicket(vctx, r)
	if err != nil {
		s.log.Error("could not decide an admitted request; left in flight for the reconciler", "ticket", r.Ticket, "err", err)
		return Placed{}, domain.Errorf(domain.EOutcomeUnknown, "the order store did not say whether the order was written; retry to learn")
	}
	if !voided && o.Replayed(r.Ticket) {
		// A worker's copy met the key's order and replayed it: so does this request.
		s.settle(ctx, a, domain.Ticket{ID: r.Ticket, UserID: r.UserID, Status: domain.TicketCreated, OrderID: o.ID, Reason: domain.ReasonReplayed})
		if a.Strategy.Queued() {
			return Placed{Status: domain.TicketPending, Ticket: r.Ticket, Replayed: true}, nil
		}
		return Placed{Status: domain.TicketCreated, OrderID: o.ID, Ticket: r.Ticket, Replayed: true}, nil
	}
	if !voided && o.Status != domain.OrderVoid {
		// Written, by this request's own write whose commit was in doubt (or a
		// worker's copy): a ledger that lost the ticket takes its units unless its
		// load counted them (see domain.Ticket.Wrote).
		s.settle(ctx, a, domain.Ticket{ID: r.Ticket, UserID: r.UserID, Status: domain.TicketCreated, OrderID: o.ID, Wrote: &r, WrittenAt: o.CreatedAt})
		if a.Strategy.Queued() {
			return Placed{Status: domain.TicketPending, Ticket: r.Ticket}, nil
		}
		return Placed{Status: domain.TicketCreated, OrderID: o.ID, Ticket: r.Ticket}, nil
	}
	s.settle(ctx, a, domain.Ticket{ID: r.Ticket, UserID: r.UserID, Status: domain.TicketFailed, Reason: reason})
	return Placed{}, domain.Errorf(domain.EUnavailable, "the order could not be written; nothing was taken")
}

func (s *Service) enqueue(ctx context.Context, a *domain.Activity, r domain.OrderRequest) (Placed, error) {
	if s.pub == nil {
		s.settle(ctx, a, domain.Ticket{ID: r.Ticket, UserID: r.UserID, Status: domain.TicketFailed, Reason: "no_queue"})
		return Placed{}, domain.Errorf(domain.EUnavailable, "no queue is configured; nothing was taken")
	}
	ctx, span := telemetry.Tracer().Start(ctx, "queue.publish")
	defer span.End()
	r.Trace = telemetry.Inject(ctx, nil) // the worker's span is a child of this one
	var err error
	for attempt := 1; attempt <= s.cfg.PublishAttempts; attempt++ {
		start := time.Now()
		if err = s.publish(ctx, r); err == nil {
			s.metrics.Publish.WithLabelValues("ok").Observe(time.Since(start).Seconds())
			return Placed{Status: domain.TicketPending, Ticket: r.Ticket}, nil
		}
		s.metrics.Publish.WithLabelValues("error").Observe(time.Since(start).Seconds())
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
	}
	// A send that looked failed may have reached the broker: the void mark fences the
	// message's write, so the stock can go back without risk of an order behind it.
	s.log.Warn("admitted request not handed on; deciding it", "ticket", r.Ticket, "err", err)
	return s.decide(ctx, a, r, "publish_failed")
}

// replay answers a request whose idempotency key was seen: with the first request's
// answer.
func (s *Service) replay(ctx context.Context, userID int64, a *domain.Activity, ticket string) (Placed, error) {
	if a.Strategy.Queued() {
		return Placed{Status: domain.TicketPending, Ticket: ticket, Replayed: true}, nil
	}
	deadline := time.Now().Add(s.cfg.ReplayWait)
	for again := false; ; again = true {
		t, err := s.lookTicket(ctx, userID, ticket, again)
		if err != nil {
			return Placed{}, s.unavailable(err)
		}
		switch t.Status {
		case domain.TicketCreated:
			return Placed{Status: domain.TicketCreated, OrderID: t.OrderID, Ticket: ticket, Replayed: true}, nil
		case domain.TicketFailed:
			return Placed{}, domain.Errorf(domain.EUnavailable, "the first request with this key failed: %s", t.Reason)
		}
		if time.Now().After(deadline) {
			// Still being written: the honest answer is the ticket, which the client
			// can poll, as for the queued strategies.
			return Placed{Status: domain.TicketPending, Ticket: ticket, Replayed: true}, nil
		}
		select {
		case <-ctx.Done():
			return Placed{}, s.unavailable(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// restoreItem loads an item's sale state into Redis from MySQL, once at a time. The
// activity is read from MySQL, not a cached copy, so the state restored is the
// latest (an item an operator took offline stays offline).
func (s *Service) restoreItem(ctx context.Context, a *domain.Activity, itemID int64) error {
	_, err, _ := s.restore.Do(strconv.FormatInt(itemID, 10), func() (any, error) {
		fresh, err := s.activities.Activity(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		return nil, s.warmItem(ctx, fresh, itemID, false)
	})
	return err
}

// warmItem writes what Redis needs to sell an item, from MySQL: its sale state, stock,
// buyers, and the idempotency keys its orders hold (so a retry after Redis lost its
// data replays the first order's ticket, whatever the limit or the stock left).
func (s *Service) warmItem(ctx context.Context, a *domain.Activity, itemID int64, overwrite bool) error {
	// One snapshot: an order ended before it has its units in the stock and its
	// buyer's count lowered, and is marked released so its release, if it lands after
	// this warm, does not give them again; one ended after it is in none of them, and
	// its release gives them. Orders written while the item was not loaded wait as
	// pending takes: the view says which it holds (their units are out of its stock);
	// the warm takes the others', and those of takes that come after this read.
	pending, err := s.ledger.PendingTakes(ctx, a.ID, itemID)
	if err != nil {
		return err
	}
	v, err := s.orders.View(ctx, itemID, time.Now().Add(-domain.ReleaseWithin), true, pending...)
	if err != nil {
		return err
	}
	st, err := saleState(a, itemID) // the item's own state and window, at a's version
	if err != nil {
		return err
	}
	// Every row gets its counter, the buckets past a lowered count too: their units
	// wait there for the rebalancer, and an ended order's units are all counted.
	st.Buckets = len(st.BucketStock)
	for _, r := range v.Stock {
		for len(st.BucketStock) <= r.Bucket {
			st.BucketStock = append(st.BucketStock, 0)
		}
		st.BucketStock[r.Bucket] = r.Available
	}
	st.Buyers, st.Keys, st.Recent, st.RecentSince = v.Buyers, v.Keys, v.Recent, v.RecentSince
	for _, t := range pending {
		if v.Written[t] {
			st.Counted = append(st.Counted, t)
		}
	}
	for _, o := range v.Ended {
		// An order with units in a bucket that has no row (none should) is left to
		// its release: the warm holds nothing of that bucket.
		if !slices.ContainsFunc(o.Units(), func(p domain.Part) bool { return p.Bucket >= len(st.BucketStock) }) {
			st.Released = append(st.Released, o.Ticket)
		}
	}
	return s.ledger.Warm(ctx, st, overwrite)
}

// Ticket tells a ticket's owner where it stands.
func (s *Service) Ticket(ctx context.Context, userID int64, ticket string) (domain.Ticket, error) {
	if err := owner(userID); err != nil {
		return domain.Ticket{}, err
	}
	t, err := s.ticket(ctx, userID, ticket)
	return t, s.unavailable(err)
}

// MaxTicketWait bounds WaitTicket's wait.
const MaxTicketWait = 10 * time.Second

// Between two looks at a waited-on ticket WaitTicket sleeps ticketLookFirst, doubling
// up to ticketLookMost: a ticket that ends soon is answered within milliseconds, and
// the looks of an item's waiters at the moment share one ledger read (ledgerTicket).
const (
	ticketLookFirst = 20 * time.Millisecond
	ticketLookMost  = 250 * time.Millisecond
)

// WaitTicket is Ticket, answered once the ticket ends or wait (at most MaxTicketWait)
// has passed, or ctx ends, whichever is first: a shopper's long poll costs the gateway
// one call.
func (s *Service) WaitTicket(ctx context.Context, userID int64, ticket string, wait time.Duration) (domain.Ticket, error) {
	if err := owner(userID); err != nil {
		return domain.Ticket{}, err
	}
	deadline := time.Now().Add(min(wait, MaxTicketWait))
	for pause, again := ticketLookFirst, false; ; pause, again = min(2*pause, ticketLookMost), true {
		t, err := s.lookTicket(ctx, userID, ticket, again)
		err = s.unavailable(err)
		left := time.Until(deadline)
		if err != nil || t.Status != domain.TicketPending || left <= 0 {
			return t, err
		}
		timer := time.NewTimer(min(pause, left))
		select {
		case <-ctx.Done():
			timer.Stop()
			return t, nil
		case <-timer.C:
		}
	}
}

// owner refuses a call on a shopper's orders or tickets that names no shopper: there
// is no "any owner".
func owner(userID int64) error {
	if userID <= 0 {
		return domain.Errorf(domain.EBadRequest, "user id must be positive, not %d", userID)
	}
	return nil
}

// ticket reads a ticket from the ledger, and when the ledger does not know it (Redis
// lost its data, or the result expired) from the order store, which keeps every
// ticket decided there: created when its order exists, failed when it was voided.
func (s *Service) ticket(ctx context.Context, userID int64, ticket string) (domain.Ticket, error) {
	return s.lookTicket(ctx, userID, ticket, false)
}

// lookTicket is ticket; again, it is a waiter's look after its first, and a ticket
// found lost (lostTicket) reads pending from memory for lostRecheck, not costing the
// order store two reads a look.
func (s *Service) lookTicket(ctx context.Context, userID int64, ticket string, again bool) (domain.Ticket, error) {
	t, err := s.ledgerTicket(ctx, userID, ticket)
	if !domain.IsCode(err, domain.ENotFound) {
		return t, err
	}
	if _, _, perr := domain.ParseTicket(ticket); perr != nil {
		return t, err
	}
	if until, ok := s.lost.Get(lostKey{userID, ticket}); again && ok && time.Now().Before(until) {
		return domain.Ticket{ID: ticket, UserID: userID, Status: domain.TicketPending}, nil // lostTicket said so just now
	}
	o, oerr := s.orders.OrderByTicket(ctx, ticket)
	if domain.IsCode(oerr, domain.ENotFound) {
		// A ticket that replayed another's order of its key has no row of its own.
		if o, rerr := s.orders.ReplayOf(ctx, ticket); rerr == nil && o.UserID == userID {
			return domain.Ticket{ID: ticket, UserID: userID, Status: domain.TicketCreated, OrderID: o.ID, Reason: domain.ReasonReplayed}, nil
		} else if rerr != nil && !domain.IsCode(rerr, domain.ENotFound) {
			return t, rerr
		}
	}
	switch {
	case domain.IsCode(oerr, domain.ENotFound):
		return s.lostTicket(ctx, userID, ticket)
	case oerr == nil && o.UserID != userID:
		return t, err
	case oerr != nil:
		return t, oerr
	case o.Status == domain.OrderVoid:
		return domain.Ticket{ID: ticket, UserID: userID, Status: domain.TicketFailed, Reason: domain.EVoided}, nil
	}
	return domain.Ticket{ID: ticket, UserID: userID, Status: domain.TicketCreated, OrderID: o.ID}, nil
}

// lostTicket answers a read of a ticket that neither the ledger nor the order store
// knows. One this fleet minted for userID was admitted, and Redis lost it with its
// data before its order was written: its message may still be on its way to a
// worker, its sync write under way. It reads pending while its order may still be
// written (the reconciler's window for a ticket in flight), and after that it is
// voided here, as the reconciler ends a ticket left in flight: it reads failed, and a
// late write of it writes nothing. No unit is held for it: the load that followed
// the loss counted from MySQL, which never had its order. Anything else (another
// shopper's ticket, a forgery, one of the older form) is not_found.
func (s *Service) lostTicket(ctx context.Context, userID int64, ticket string) (domain.Ticket, error) {
	unknown := domain.Errorf(domain.ENotFound, "unknown ticket")
	at, ok := s.tickets.Admitted(ticket, userID)
	if !ok {
		return domain.Ticket{}, unknown
	}
	activityID, itemID, _ := domain.ParseTicket(ticket)
	a, err := s.catalog.Activity(ctx, activityID)
	switch {
	case domain.IsCode(err, domain.ENotFound):
		return domain.Ticket{}, unknown
	case err != nil:
		return domain.Ticket{}, err
	}
	stale := s.cfg.StaleTicket
	if !a.Strategy.Queued() {
		stale = s.cfg.StaleSync
	}
	if time.Since(at) < stale {
		// A waiter's next looks within lostRecheck are answered from memory.
		until := time.Now().Add(lostRecheck)
		if end := at.Add(stale); end.Before(until) {
			until = end // past its window it is voided at its next look
		}
		s.lost.Add(lostKey{userID, ticket}, until)
		return domain.Ticket{ID: ticket, UserID: userID, Status: domain.TicketPending}, nil
	}
	// One void a ticket at a time in this process, at most maxVoids at once (each may
	// hold a MySQL connection while a write holds the ticket's key), and a read waits
	// for it at most lostVoidWait: a write still holding the key (a sync write blocked
	// past its window) holds the void's insert until it ends, and the ticket is
	// pending until then.
	ch := s.voids.DoChan(ticket, func() (any, error) {
		select {
		case s.voidSlots <- struct{}{}:
			defer func() { <-s.voidSlots }()
		default:
			return domain.Order{}, errVoidsBusy
		}
		vctx, cancel := context.WithTimeout(s.life, maxVoidWait)
		defer cancel()
		o, voided, err := s.orders.VoidTicket(vctx, domain.OrderRequest{Ticket: ticket, UserID: userID, ActivityID: activityID, ItemID: itemID})
		switch {
		case err != nil && s.life.Err() == nil:
			s.log.Warn("void a lost ticket past its window; a later read tries again", "ticket", ticket, "err", err)
		case voided:
			s.log.Warn("ticket lost with Redis's data and not written in time: voided", "ticket", ticket, "admitted", at)
			s.metrics.Repairs.WithLabelValues("lost_ticket").Inc()
		}
		return o, err
	})
	out := make(chan singleflight.Result, 1)
	s.bg.Go(func() { out <- <-ch }) // Close waits for the void, which it cancels
	timer := time.NewTimer(lostVoidWait)
	defer timer.Stop()
	var res singleflight.Result
	select {
	case res = <-out:
	case <-timer.C:
		s.lost.Add(lostKey{userID, ticket}, time.Now().Add(lostRecheck))
		return domain.Ticket{ID: ticket, UserID: userID, Status: domain.TicketPending}, nil
	case <-ctx.Done():
		return domain.Ticket{}, ctx.Err()
	}
	if errors.Is(res.Err, errVoidsBusy) {
		return domain.Ticket{ID: ticket, UserID: userID, Status: domain.TicketPending}, nil
	}
	if res.Err != nil {
		return domain.Ticket{}, res.Err
	}
	o := res.Val.(domain.Order)
	switch {
	case o.UserID != userID:
		return domain.Ticket{}, unknown
	case o.Replayed(ticket):
		return domain.Ticket{ID: ticket, UserID: userID, Status: domain.TicketCreated, OrderID: o.ID, Reason: domain.ReasonReplayed}, nil
	case o.Status == domain.OrderVoid:
		return domain.Ticket{ID: ticket, UserID: userID, Status: domain.TicketFailed, Reason: domain.EVoided}, nil
	}
	return domain.Ticket{ID: ticket, UserID: userID, Status: domain.TicketCreated, OrderID: o.ID}, nil
}

// lostRecheck is how long a ticket found lost (lostTicket) reads pending from memory
// before the order store is asked again. lostVoidWait is how long a read waits for the
// void of a lost ticket past its window before it answers pending; maxVoidWait bounds
// that void (a write's transaction, which may hold it, is bounded alike).
const (
	lostRecheck  = time.Second
	lostVoidWait = time.Second
	maxVoidWait  = 2 * time.Minute
	maxVoids     = 8
)

// errVoidsBusy: maxVoids voids of lost tickets are under way; the ticket is pending.
var errVoidsBusy = errors.New("voids of lost tickets busy")

type lostKey struct {
	user   int64
	ticket string
}

// ledgerTicket reads a ticket from the ledger, in one call with the item's other
// ticket reads of the moment (shoppers poll their tickets together).
func (s *Service) ledgerTicket(ctx context.Context, userID int64, ticket string) (domain.Ticket, error) {
	a, i, err := domain.ParseTicket(ticket)
	if s.reads == nil || err != nil {
		return s.ledger.Ticket(ctx, userID, ticket)
	}
	r := s.reads.Do(ctx, itemKey{activity: a, item: i}, domain.Ticket{ID: ticket, UserID: userID})
	return r.t, r.err
}

type itemKey struct{ activity, item int64 }

type ticketRead struct {
	t   domain.Ticket
	err error
}

// runReads reads one batch of an item's tickets: a lone one as Ticket, more in one
// Tickets call, whose failure is each read's.
func (s *Service) runReads(ctx context.Context, _ itemKey, q []domain.Ticket) []ticketRead {
	s.metrics.Batch.WithLabelValues("ticket").Observe(float64(len(q)))
	out := make([]ticketRead, len(q))
	if len(q) == 1 {
		out[0].t, out[0].err = s.ledger.Ticket(ctx, q[0].UserID, q[0].ID)
		return out
	}
	got, err := s.ledger.Tickets(ctx, q)
	for j := range out {
		switch {
		case err != nil:
			out[j].err = err
		case got[j].Status == "":
			out[j].err = domain.Errorf(domain.ENotFound, "unknown ticket")
		default:
			out[j].t = got[j]
		}
	}
	return out
}

// Order returns one of a user's orders.
func (s *Service) Order(ctx context.Context, userID, id int64) (domain.Order, error) {
	if err := owner(userID); err != nil {
		return domain.Order{}, err
	}
	o, err := s.orders.Order(ctx, userID, id)
	return o, s.unavailable(err)
}

// Cancel cancels a user's unpaid order and gives its stock back; cancelling twice is
// not an error.
func (s *Service) Cancel(ctx context.Context, userID, id int64) (domain.Order, error) {
	if err := owner(userID); err != nil {
		return domain.Order{}, err
	}
	return s.end(ctx, userID, id, domain.OrderCancelled)
}

func (s *Service) end(ctx context.Context, userID, id int64, to domain.OrderStatus) (domain.Order, error) {
	o, changed, err := s.orders.EndOrder(ctx, userID, id, to)
	if err != nil {
		return o, s.unavailable(err)
	}
	if o.Status == domain.OrderPaid {
		return o, domain.Errorf(domain.EConflict, "order %d is paid", id)
	}
	if !changed {
		return o, nil // ended before: its units went back then
	}
	s.metrics.Ended.WithLabelValues(string(to)).Inc()
	// The units go back to the ledger once, after MySQL's change: only the call that
	// changed the order releases them, whatever the ledger remembers. If the release
	// fails the order is still ended (and so answered); the reconciler brings the
	// ledger to MySQL's count.
	if _, err := s.ledger.Release(ctx, o); err != nil {
		s.log.Error("give back stock of ended order; the reconciler will", "order", id, "err", err)
		s.metrics.Repairs.WithLabelValues("release_failed").Inc()
	}
	return o, nil
}

// Pay marks an order paid (the payment itself is out of scope), so the unpaid-order
// timeout leaves it alone.
func (s *Service) Pay(ctx context.Context, userID, id int64) (domain.Order, error) {
	if err := owner(userID); err != nil {
		return domain.Order{}, err
	}
	o, err := s.orders.PayOrder(ctx, userID, id)
	return o, s.unavailable(err)
}

// ExpireUnpaid ends orders left unpaid for longer than timeout and gives their stock
// back. It returns how many it ended.
func (s *Service) ExpireUnpaid(ctx context.Context, timeout time.Duration) (int, error) {
	stale, err := s.orders.StaleOrders(ctx, time.Now().Add(-timeout), 500)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, o := range stale {
		if _, err := s.end(ctx, o.UserID, o.ID, domain.OrderExpired); err != nil {
			errs = append(errs, fmt.Errorf("expire order %d: %w", o.ID, err))
			continue // one order's failure holds back no other
		}
		n++
	}
	return n, errors.Join(errs...)
}
