package sale

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// ReconcileConfig tunes the reconciler.
type ReconcileConfig struct {
	// Quiet is how long an item's Redis state must stay unchanged before it is compared
	// with MySQL: the comparison is only exact while nothing moves.
	Quiet time.Duration
	// StaleTicket is how long a ticket may stay in flight before the reconciler ends it
	// from MySQL's record (created if its order exists, failed otherwise).
	StaleTicket time.Duration
}

// Repair is one change the reconciler made.
type Repair struct {
	ActivityID, ItemID int64
	Bucket             int
	Kind               string // "stock" or "stale_ticket"
	Detail             string
}

// Reconcile makes one pass over the published activities: it settles tickets left in
// flight past cfg.StaleTicket, and where an item is quiet it checks, per bucket, that
// Redis stock plus the units in flight equals MySQL's available stock, and repairs
// Redis from MySQL where they differ. Every repair is logged, counted and returned.
func (s *Service) Reconcile(ctx context.Context, cfg ReconcileConfig) ([]Repair, error) {
	if cfg.Quiet <= 0 {
		cfg.Quiet = 500 * time.Millisecond
	}
	if cfg.StaleTicket <= 0 {
		cfg.StaleTicket = 15 * time.Minute
	}
	as, err := s.activities.Activities(ctx, false)
	if err != nil {
		return nil, err
	}
	var repairs []Repair
	for _, a := range as {
		for _, it := range a.Items {
			rs, err := s.reconcileItem(ctx, a, it.ID, cfg)
			if err != nil {
				return repairs, fmt.Errorf("reconcile item %d: %w", it.ID, err)
			}
			repairs = append(repairs, rs...)
		}
	}
	return repairs, nil
}

func (s *Service) reconcileItem(ctx context.Context, a *domain.Activity, itemID int64, cfg ReconcileConfig) ([]Repair, error) {
	var repairs []Repair
	flying, err := s.ledger.InFlight(ctx, a.ID, itemID)
	if err != nil {
		return nil, err
	}
	for ticket, admitted := range flying {
		if time.Since(admitted) < cfg.StaleTicket {
			continue
		}
		r, err := s.settleStale(ctx, a, ticket)
		if err != nil {
			return repairs, err
		}
		if r != nil {
			repairs = append(repairs, *r)
		}
	}
	before, err := s.ledger.State(ctx, a.ID, itemID, a.BucketCount)
	if err != nil || !before.Loaded {
		return repairs, err // not loaded: the next order restores it from MySQL
	}
	rows, err := s.orders.Stock(ctx, itemID)
	if err != nil {
		return repairs, err
	}
	select {
	case <-ctx.Done():
		return repairs, ctx.Err()
	case <-time.After(cfg.Quiet):
	}
	after, err := s.ledger.State(ctx, a.ID, itemID, a.BucketCount)
	if err != nil {
		return repairs, err
	}
	if !slices.Equal(before.BucketStock, after.BucketStock) || !slices.Equal(before.InFlightBy, after.InFlightBy) {
		return repairs, nil // not quiet; try again on the next pass
	}
	rows2, err := s.orders.Stock(ctx, itemID)
	if err != nil {
		return repairs, err
	}
	if !slices.Equal(rows, rows2) {
		return repairs, nil
	}
	var drift int64
	for _, r := range rows {
		if r.Bucket >= a.BucketCount {
			continue
		}
		want := r.Available - after.InFlightBy[r.Bucket]
		if want < 0 {
			want = 0 // more in flight than MySQL holds: those writes will fail and give back
		}
		have := after.BucketStock[r.Bucket]
		drift += have + after.InFlightBy[r.Bucket] - r.Available
		if have == want {
			continue
		}
		ok, err := s.ledger.Reset(ctx, a.ID, itemID, r.Bucket, have, want)
		if err != nil {
			return repairs, err
		}
		if !ok {
			continue // moved meanwhile; next pass
		}
		rep := Repair{ActivityID: a.ID, ItemID: itemID, Bucket: r.Bucket, Kind: "stock",
			Detail: fmt.Sprintf("redis %d -> %d (mysql %d, in flight %d)", have, want, r.Available, after.InFlightBy[r.Bucket])}
		s.log.Warn("reconciler repaired redis stock", "activity", a.ID, "item", itemID, "bucket", r.Bucket, "detail", rep.Detail)
		s.metrics.Repairs.WithLabelValues("stock").Inc()
		repairs = append(repairs, rep)
	}
	s.metrics.StockDrift.WithLabelValues(strconv.FormatInt(itemID, 10)).Set(float64(drift))
	return repairs, nil
}

// settleStale ends a ticket that stayed in flight too long, from MySQL's record.
func (s *Service) settleStale(ctx context.Context, a *domain.Activity, ticket string) (*Repair, error) {
	t := domain.Ticket{ID: ticket, Status: domain.TicketFailed, Reason: "stale"}
	o, err := s.orders.OrderByTicket(ctx, ticket)
	switch {
	case err == nil:
		t.Status, t.OrderID, t.UserID, t.Reason = domain.TicketCreated, o.ID, o.UserID, ""
	case !domain.IsCode(err, domain.ENotFound):
		return nil, err
	}
	if t.UserID == 0 {
		u, err := s.ledger.TicketUser(ctx, ticket)
		if err != nil {
			return nil, err
		}
		t.UserID = u
	}
	ok, err := s.ledger.Settle(ctx, t, a.BucketCount)
	if err != nil || !ok {
		return nil, err
	}
	s.metrics.StaleSettle.WithLabelValues(string(t.Status)).Inc()
	s.log.Warn("reconciler settled a stale ticket", "ticket", ticket, "status", t.Status)
	return &Repair{ActivityID: a.ID, Kind: "stale_ticket", Detail: ticket + " -> " + string(t.Status)}, nil
}

// Run runs the background duties until ctx ends: the reconciler every interval and the
// expiry of unpaid orders (when unpaidTimeout > 0).
func (s *Service) Run(ctx context.Context, interval time.Duration, rc ReconcileConfig, unpaidTimeout time.Duration) {
	if interval <= 0 {
		interval = 10 * time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := s.Reconcile(ctx, rc); err != nil && ctx.Err() == nil {
			s.log.Warn("reconcile pass failed", "err", err)
		}
		if err := s.RebalanceAll(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("rebalance pass failed", "err", err)
		}
		if unpaidTimeout > 0 {
			if n, err := s.ExpireUnpaid(ctx, unpaidTimeout); err != nil && ctx.Err() == nil {
				s.log.Warn("expire unpaid orders", "err", err)
			} else if n > 0 {
				s.log.Info("expired unpaid orders", "count", n)
			}
		}
	}
}
