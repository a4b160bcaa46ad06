package sale

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/seckill/flashsale/backend/domain"
)

// ReconcileConfig tunes the reconciler.
type ReconcileConfig struct {
	// Quiet is how long an item's state must stay unchanged before Redis is compared
	// with MySQL: the comparison is only exact while nothing moves.
	Quiet time.Duration
	// StaleTicket is how long a ticket may stay in flight before the reconciler decides
	// it from MySQL's record: created if its order exists, failed (and voided, so a
	// late write of it writes nothing) otherwise.
	StaleTicket time.Duration
	// StaleSync is StaleTicket for sync sales, whose orders are written within the
	// request: a ticket in flight longer than a request can last was left by a
	// backend that died between the deduction and the write. It is decided the same
	// way, and a write that lands after all finds the void mark.
	StaleSync time.Duration
	// Republish is how long a queued sale's ticket may stay in flight before the
	// reconciler sends its order to the queue again, once: the backend that admitted
	// it may have died before its send. A copy that was sent after all is written
	// once by the worker (orders are unique by ticket).
	Republish time.Duration
	// Parallel bounds the items checked at once.
	Parallel int
	// Fence is the background lease's fencing token the pass's repairs carry (0:
	// none, a pass an operator or a test asked for).
	Fence int64
}

func (c *ReconcileConfig) defaults() {
	if c.Quiet <= 0 {
		c.Quiet = 500 * time.Millisecond
	}
	if c.StaleTicket <= 0 {
		c.StaleTicket = 15 * time.Minute
	}
	if c.StaleSync <= 0 {
		c.StaleSync = 30 * time.Second
	}
	if c.Republish <= 0 {
		c.Republish = 30 * time.Second
	}
	if c.Parallel <= 0 {
		c.Parallel = 8
	}
}

// Repair is one change the reconciler made.
type Repair struct {
	ActivityID, ItemID int64
	Bucket             int
	Kind               string // "stock", "settled" (a written ticket left in flight) or "stale_ticket"
	Detail             string
}

// reconItem is one item the reconciler looks at.
type reconItem struct {
	a      *domain.Activity
	itemID int64
	before domain.ItemState
	rows   []domain.StockRow
	width  int  // buckets compared: the live ones and any past a lowered count with a row
	quiet  bool // nothing in flight was written meanwhile; compare after the quiet wait
}

// Reconcile makes one pass over every activity that may hold live state in Redis
// (published or offline, whatever its window; drafts never do), item by item, several
// at a time:
//   - a ticket still in flight whose order MySQL holds (its worker wrote it and died
//     before settling) is settled created, and so no longer counted in flight;
//   - a ticket in flight past cfg.StaleTicket (cfg.StaleSync in a sync sale) is
//     decided from MySQL's record;
//   - where an item stays quiet for cfg.Quiet, each bucket's Redis stock plus the
//     units in flight is compared with MySQL's available stock, and Redis is repaired
//     from MySQL where they differ; an item that moved meanwhile (a sale under way) is
//     compared as reconcileBusy says, so steady traffic does not keep drift for good.
//
// One item's failure is logged and holds back no other. Every repair is logged,
// counted and returned.
func (s *Service) Reconcile(ctx context.Context, cfg ReconcileConfig) ([]Repair, error) {
	cfg.defaults()
	var items []*reconItem
	err := s.eachActivity(ctx, domain.ActivityQuery{All: true}, func(a *domain.Activity) {
		if a.State == domain.StateDraft {
			return
		}
		for _, it := range a.Items {
			items = append(items, &reconItem{a: a, itemID: it.ID})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list activities: %w", err)
	}
	var mu sync.Mutex
	var repairs []Repair
	var errs []error
	record := func(rs []Repair, err error, it *reconItem) {
		mu.Lock()
		defer mu.Unlock()
		repairs = append(repairs, rs...)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("reconcile item", "activity", it.a.ID, "item", it.itemID, "err", err)
			errs = append(errs, fmt.Errorf("item %d: %w", it.itemID, err))
		}
	}
	each := func(f func(*reconItem) ([]Repair, error)) {
		var g errgroup.Group
		g.SetLimit(cfg.Parallel)
		for _, it := range items {
			g.Go(func() error {
				rs, err := f(it)
				record(rs, err, it)
				return nil
			})
		}
		g.Wait()
	}
	each(func(it *reconItem) ([]Repair, error) { return s.reconcileTickets(ctx, it, cfg) })
	// One quiet wait for the whole pass, not one per item.
	select {
	case <-ctx.Done():
		return repairs, ctx.Err()
	case <-time.After(cfg.Quiet):
	}
	each(func(it *reconItem) ([]Repair, error) { return s.reconcileStock(ctx, it, cfg.Fence) })
	return repairs, errors.Join(errs...)
}

// reconcileTickets ends the item's tickets that stayed in flight when they should
// not, and takes the snapshot the stock comparison starts from.
func (s *Service) reconcileTickets(ctx context.Context, it *reconItem, cfg ReconcileConfig) ([]Repair, error) {
	a := it.a
	flights, rows, err := s.flights(ctx, a.ID, it.itemID)
	if err != nil {
		return nil, err
	}
	stale := cfg.StaleTicket
	if !a.Strategy.Queued() {
		stale = cfg.StaleSync
	}
	var repairs []Repair
	for _, f := range flights {
		o, written := rows[f.Ticket]
		age := time.Since(f.AdmittedAt)
		if !written && age >= cfg.Republish && age < stale && a.Strategy.Queued() {
			if err := s.republish(ctx, a, it.itemID, f); err != nil {
				s.log.Warn("send a ticket left in flight again", "ticket", f.Ticket, "err", err)
			}
			continue
		}
		if !written && age < stale {
			continue
		}
		r, err := s.endFlight(ctx, a, it.itemID, f, o, written)
		if err != nil {
			return repairs, err
		}
		if r != nil {
			repairs = append(repairs, *r)
		}
	}
	if it.rows, err = s.orders.Stock(ctx, it.itemID); err != nil {
		return repairs, err
	}
	it.width = max(a.BucketCount, len(it.rows))
	if it.before, err = s.ledger.State(ctx, a.ID, it.itemID, it.width); err != nil || !it.before.Loaded {
		return repairs, err // not loaded: the next order restores it from MySQL
	}
	if r, err := s.reconcileSale(ctx, a, it.itemID, it.before); err != nil {
		return repairs, err
	} else if r != nil {
		repairs = append(repairs, *r)
	}
	it.quiet = true
	return repairs, nil
}

// flights are an item's in-flight tickets and the MySQL rows (orders or void marks)
// of those that have one.
func (s *Service) flights(ctx context.Context, activityID, itemID int64) ([]domain.Flight, map[string]domain.Order, error) {
	flights, err := s.ledger.InFlight(ctx, activityID, itemID)
	if err != nil || len(flights) == 0 {
		return flights, nil, err
	}
	tickets := make([]string, len(flights))
	for i, f := range flights {
		tickets[i] = f.Ticket
	}
	rows, err := s.orders.OrdersByTickets(ctx, tickets)
	return flights, rows, err
}

// reconcileSale brings the ledger's sale state, window and limit of an item to
// MySQL's when they differ: an operator's change committed in MySQL whose write to
// Redis failed is finished here. The activity is read again first, and the write
// carries its version, which the ledger refuses when it already holds a newer one: a
// change made meanwhile is never undone.
func (s *Service) reconcileSale(ctx context.Context, a *domain.Activity, itemID int64, st domain.ItemState) (*Repair, error) {
	same := func(a *domain.Activity) bool {
		want, err := saleState(a, itemID)
		return err != nil || st.State == want.State && st.PerUserLimit == want.PerUserLimit &&
			st.Start.UnixMilli() == want.Start.UnixMilli() && st.End.UnixMilli() == want.End.UnixMilli()
	}
	if a.State == domain.StateDraft || same(a) {
		return nil, nil
	}
	fresh, err := s.activities.Activity(ctx, a.ID)
	if err != nil || fresh.State == domain.StateDraft || same(fresh) {
		return nil, err
	}
	want, err := saleState(fresh, itemID)
	if err != nil {
		return nil, err
	}
	if err := s.applySale(ctx, fresh, itemID); err != nil {
		return nil, err
	}
	rep := Repair{ActivityID: a.ID, ItemID: itemID, Kind: "sale_state",
		Detail: fmt.Sprintf("redis %s %s..%s limit %d -> %s %s..%s limit %d", st.State, st.Start.UTC().Format(time.RFC3339), st.End.UTC().Format(time.RFC3339),
			st.PerUserLimit, want.State, want.Start.UTC().Format(time.RFC3339), want.End.UTC().Format(time.RFC3339), want.PerUserLimit)}
	s.log.Warn("reconciler brought the ledger's sale to MySQL's", "activity", a.ID, "item", itemID, "detail", rep.Detail)
	s.metrics.Repairs.WithLabelValues("sale_state").Inc()
	return &rep, nil
}

// republish sends a queued sale's ticket left in flight to the queue again, once.
func (s *Service) republish(ctx context.Context, a *domain.Activity, itemID int64, f domain.Flight) error {
	if s.pub == nil {
		return nil
	}
	first, err := s.ledger.Mark(ctx, a.ID, itemID, f.Ticket, "republished")
	if err != nil || !first {
		return err
	}
	r := f.Request(a.ID, itemID)
	if item, ok := a.Item(itemID); ok {
		r.AmountCents = item.PriceCents * int64(r.Quantity)
	}
	if err := s.pub.Publish(ctx, r); err != nil {
		return err // marked: the ticket is left to StaleTicket
	}
	s.metrics.StaleSettle.WithLabelValues("republished").Inc()
	s.log.Warn("reconciler sent a ticket left in flight to the queue again", "ticket", f.Ticket, "age", time.Since(f.AdmittedAt).Round(time.Second))
	return nil
}

// endFlight settles a ticket left in flight: from its MySQL row when it has one,
// else by voiding it (unless a write lands first, which the void then finds).
func (s *Service) endFlight(ctx context.Context, a *domain.Activity, itemID int64, f domain.Flight, o domain.Order, written bool) (*Repair, error) {
	kind := "settled"
	if !written {
		kind = "stale_ticket"
		var err error
		if o, _, err = s.orders.VoidTicket(ctx, f.Request(a.ID, itemID)); err != nil {
			return nil, err
		}
	}
	t := domain.Ticket{ID: f.Ticket, UserID: f.UserID, Status: domain.TicketCreated, OrderID: o.ID}
	switch {
	case o.Status == domain.OrderVoid:
		t = domain.Ticket{ID: f.Ticket, UserID: f.UserID, Status: domain.TicketFailed, Reason: "stale"}
	case o.Replayed(f.Ticket):
		t.Reason = domain.ReasonReplayed // its units go back; the key stays the order's
	}
	ok, err := s.ledger.Settle(ctx, t, a.BucketCount)
	if err != nil || !ok {
		return nil, err
	}
	s.metrics.StaleSettle.WithLabelValues(string(t.Status)).Inc()
	s.log.Warn("reconciler ended a ticket left in flight", "ticket", f.Ticket, "status", t.Status, "written", written)
	return &Repair{ActivityID: a.ID, ItemID: itemID, Kind: kind, Detail: f.Ticket + " -> " + string(t.Status)}, nil
}

// reconcileStock compares a quiet item's Redis stock with MySQL's and repairs Redis.
func (s *Service) reconcileStock(ctx context.Context, it *reconItem, fence int64) ([]Repair, error) {
	if !it.quiet {
		return nil, nil
	}
	a := it.a
	after, err := s.ledger.State(ctx, a.ID, it.itemID, it.width)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(it.before.BucketStock, after.BucketStock) || !slices.Equal(it.before.InFlightBy, after.InFlightBy) {
		return s.reconcileBusy(ctx, it, fence) // not quiet
	}
	// A ticket written since the first look would be counted twice (in flight and in
	// MySQL): such an item is not quiet.
	flights, written, err := s.flights(ctx, a.ID, it.itemID)
	if err != nil {
		return nil, err
	}
	if len(written) > 0 || len(flights) != after.Tickets {
		return s.reconcileBusy(ctx, it, fence)
	}
	rows, err := s.orders.Stock(ctx, it.itemID)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(it.rows, rows) {
		return s.reconcileBusy(ctx, it, fence)
	}
	// The orders ended lately have their units in the rows read above; a release of
	// one still on its way must not add them again once Redis is set to them. They are
	// read with the rows in one snapshot, which must still be the rows.
	ended := func() ([]domain.Order, bool, error) {
		v, err := s.orders.View(ctx, it.itemID, time.Now().Add(-domain.ReleaseWithin), false)
		if err != nil || !slices.Equal(v.Stock, rows) {
			return nil, false, err // moved meanwhile; next pass
		}
		return v.Ended, true, nil
	}
	return s.resetBuckets(ctx, it, fence, after, after.InFlightBy, it.before.Holds, rows, ended)
}

// Tries of reconcileBusy, a pause apart.
const (
	busyTries = 3
	busyPause = 20 * time.Millisecond
)

// reconcileBusy compares an item that did not stay quiet (a sale under way): one
// snapshot of MySQL reads the stock rows, the orders ended lately and which of the
// tickets in flight are written, between two looks at Redis that find the same count
// of changes (ItemState.Changes), counters and tickets in flight. A ticket written
// and not yet settled has its units out of MySQL's rows already, so it is not counted
// in flight; any other change lands in Redis too, and the looks would differ. A few
// tries; else the next pass.
func (s *Service) reconcileBusy(ctx context.Context, it *reconItem, fence int64) ([]Repair, error) {
	a := it.a
	look := func() (domain.ItemState, []domain.Flight, error) {
		st, err := s.ledger.State(ctx, a.ID, it.itemID, it.width)
		if err != nil {
			return st, nil, err
		}
		fl, err := s.ledger.InFlight(ctx, a.ID, it.itemID)
		slices.SortFunc(fl, func(x, y domain.Flight) int { return strings.Compare(x.Ticket, y.Ticket) })
		return st, fl, err
	}
	sameTickets := func(x, y []domain.Flight) bool {
		return slices.EqualFunc(x, y, func(p, q domain.Flight) bool { return p.Ticket == q.Ticket })
	}
	for try := range busyTries {
		if try > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(busyPause):
			}
		}
		first, flights, err := look()
		if err != nil || !first.Loaded {
			return nil, err
		}
		tickets := make([]string, len(flights))
		for i, f := range flights {
			tickets[i] = f.Ticket
		}
		v, err := s.orders.View(ctx, it.itemID, time.Now().Add(-domain.ReleaseWithin), false, tickets...)
		if err != nil {
			return nil, err
		}
		again, flightsAgain, err := look()
		if err != nil {
			return nil, err
		}
		// The count of changes catches what came and went between the looks (a
		// release and a sale that put a counter back where it was); the values are
		// compared too, in case a ledger does not count.
		if first.Changes != again.Changes || !slices.Equal(first.BucketStock, again.BucketStock) || !slices.Equal(first.InFlightBy, again.InFlightBy) ||
			first.Holds != again.Holds || !again.Loaded || !sameTickets(flights, flightsAgain) {
			continue
		}
		flying := slices.Clone(again.InFlightBy)
		for _, f := range flights {
			if !v.Written[f.Ticket] {
				continue
			}
			for _, p := range f.Parts {
				if p.Bucket < len(flying) {
					flying[p.Bucket] -= int64(p.Quantity)
				}
			}
		}
		ended := func() ([]domain.Order, bool, error) { return v.Ended, true, nil }
		return s.resetBuckets(ctx, it, fence, again, flying, first.Holds, v.Stock, ended)
	}
	s.metrics.Uncompared.Inc()
	return nil, nil
}

// resetBuckets sets each bucket's counter of st (its counters as read) to its row's
// units less those in flight (flying, by bucket), where they differ; ended reads the
// orders ended lately with the rows (false: the rows moved since), whose late
// releases must not add their units again. holds is the count of holds read first.
func (s *Service) resetBuckets(ctx context.Context, it *reconItem, fence int64, st domain.ItemState, flying []int64, holds int64,
	rows []domain.StockRow, ended func() ([]domain.Order, bool, error)) ([]Repair, error) {
	a := it.a
	var repairs []Repair
	var drift int64
	var endedOrders []domain.Order
	endedRead := false
	changes := st.Changes // a reset is refused once anything changed since st was read
	for _, r := range rows {
		// Buckets past a lowered count too: their units wait for the rebalancer,
		// which moves what Redis says they hold.
		if r.Bucket >= it.width {
			continue
		}
		flying := flying[r.Bucket]
		want := max(r.Available-flying, 0) // more in flight than MySQL holds: those writes will fail and give back
		have := st.BucketStock[r.Bucket]
		drift += have + flying - r.Available
		if have == want {
			continue
		}
		if !endedRead {
			var ok bool
			var err error
			if endedOrders, ok, err = ended(); err != nil || !ok {
				return repairs, err // moved meanwhile; next pass
			}
			endedRead = true
		}
		var released []domain.Order
		for _, o := range endedOrders {
			if slices.ContainsFunc(o.Units(), func(p domain.Part) bool { return p.Bucket == r.Bucket }) {
				released = append(released, o)
			}
		}
		ok, err := s.ledger.Reset(ctx, a.ID, it.itemID, r.Bucket, have, want, fence, holds, changes, released)
		if err != nil {
			return repairs, err
		}
		if !ok {
			continue // moved meanwhile; next pass
		}
		changes++ // the reset's own
		rep := Repair{ActivityID: a.ID, ItemID: it.itemID, Bucket: r.Bucket, Kind: "stock",
			Detail: fmt.Sprintf("redis %d -> %d (mysql %d, in flight %d)", have, want, r.Available, flying)}
		s.log.Warn("reconciler repaired redis stock", "activity", a.ID, "item", it.itemID, "bucket", r.Bucket, "detail", rep.Detail)
		s.metrics.Repairs.WithLabelValues("stock").Inc()
		repairs = append(repairs, rep)
	}
	s.metrics.StockDrift.WithLabelValues(strconv.FormatInt(it.itemID, 10)).Set(float64(drift))
	return repairs, nil
}
