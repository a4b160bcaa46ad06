package sale

import (
	"context"
	"fmt"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// CreateActivity stores a new activity (state draft).
func (s *Service) CreateActivity(ctx context.Context, a *domain.Activity) error {
	if a.BucketCount == 0 {
		a.BucketCount = 1
	}
	if a.PerUserLimit == 0 {
		a.PerUserLimit = 1
	}
	if err := a.Validate(); err != nil {
		return err
	}
	if err := s.activities.CreateActivity(ctx, a); err != nil {
		return s.unavailable(err)
	}
	_, err := s.catalog.Refresh(ctx, a.ID) // drop a cached null object for the new id
	return s.unavailable(err)
}

// AdminActivity reads an activity from MySQL, whatever its state.
func (s *Service) AdminActivity(ctx context.Context, id int64) (*domain.Activity, error) {
	a, err := s.activities.Activity(ctx, id)
	return a, s.unavailable(err)
}

// Activity reads a published activity through the caches.
func (s *Service) Activity(ctx context.Context, id int64) (*domain.Activity, error) {
	a, err := s.catalog.Activity(ctx, id)
	if err != nil {
		return nil, s.unavailable(err)
	}
	if a.State != domain.StatePublished {
		return nil, domain.Errorf(domain.ENotFound, "activity %d not found", id)
	}
	return a, nil
}

// Item reads an item of a published activity.
func (s *Service) Item(ctx context.Context, id int64) (domain.Item, *domain.Activity, error) {
	it, err := s.activities.Item(ctx, id)
	if err != nil {
		return it, nil, s.unavailable(err)
	}
	a, err := s.Activity(ctx, it.ActivityID)
	if err != nil {
		return it, nil, domain.Errorf(domain.ENotFound, "item %d not found", id)
	}
	got, _ := a.Item(id)
	return got, a, nil
}

// Activities lists activities: published ones, or all for operators.
func (s *Service) Activities(ctx context.Context, all bool) ([]*domain.Activity, error) {
	as, err := s.activities.Activities(ctx, all)
	return as, s.unavailable(err)
}

// Remaining is the approximate stock left of an item (Redis's view), -1 if unknown.
func (s *Service) Remaining(ctx context.Context, a *domain.Activity, itemID int64) int64 {
	n, loaded, err := s.ledger.Available(ctx, a.ID, itemID, a.BucketCount)
	if err != nil || !loaded {
		return -1
	}
	return n
}

// Publish puts an activity on sale: Redis gets its stock, buyer records and window,
// and the caches are pre-warmed.
func (s *Service) Publish(ctx context.Context, id int64) (*domain.Activity, error) {
	a, err := s.activities.Activity(ctx, id)
	if err != nil {
		return nil, s.unavailable(err)
	}
	if err := s.activities.SetState(ctx, id, domain.StatePublished); err != nil {
		return nil, s.unavailable(err)
	}
	a.State = domain.StatePublished
	for _, it := range a.Items {
		// Live counters of a sale that was taken offline and back are kept.
		if err := s.warmItem(ctx, a, it.ID, false); err != nil {
			return nil, s.unavailable(fmt.Errorf("publish activity %d: %w", id, err))
		}
	}
	a, err = s.catalog.Refresh(ctx, id)
	return a, s.unavailable(err)
}

// Offline takes an activity off sale; orders in flight still complete.
func (s *Service) Offline(ctx context.Context, id int64) (*domain.Activity, error) {
	a, err := s.activities.Activity(ctx, id)
	if err != nil {
		return nil, s.unavailable(err)
	}
	if err := s.activities.SetState(ctx, id, domain.StateOffline); err != nil {
		return nil, s.unavailable(err)
	}
	for _, it := range a.Items {
		if err := s.ledger.SetState(ctx, a.ID, it.ID, domain.StateOffline); err != nil {
			return nil, s.unavailable(err)
		}
	}
	a, err = s.catalog.Refresh(ctx, id)
	return a, s.unavailable(err)
}

// ActivityChange changes an activity; nil fields stay. The strategy is fixed once
// created; the bucket count changes through SetBuckets.
type ActivityChange struct {
	domain.ActivityChange
	Items []domain.ItemChange
}

// Update applies an operator's change. A stock change keeps the invariants: units are
// added to or taken from what is available, never from what is sold or in flight.
func (s *Service) Update(ctx context.Context, id int64, c ActivityChange) (*domain.Activity, error) {
	a, err := s.activities.Activity(ctx, id)
	if err != nil {
		return nil, s.unavailable(err)
	}
	next := *a
	if c.Name != nil {
		next.Name = *c.Name
	}
	if c.Start != nil {
		next.Start = *c.Start
	}
	if c.End != nil {
		next.End = *c.End
	}
	if c.PerUserLimit != nil {
		next.PerUserLimit = *c.PerUserLimit
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	for _, ic := range c.Items {
		if _, ok := a.Item(ic.ItemID); !ok {
			return nil, domain.Errorf(domain.ENotFound, "item %d is not in activity %d", ic.ItemID, id)
		}
		if (ic.Name != nil && (*ic.Name == "" || len(*ic.Name) > domain.MaxNameLen)) || (ic.PriceCents != nil && *ic.PriceCents < 0) || (ic.TotalStock != nil && *ic.TotalStock < 0) {
			return nil, domain.Errorf(domain.EBadRequest, "item %d: bad name, price or stock", ic.ItemID)
		}
	}
	if err := s.activities.UpdateActivity(ctx, id, c.ActivityChange); err != nil {
		return nil, s.unavailable(err)
	}
	for _, ic := range c.Items {
		if err := s.activities.UpdateItem(ctx, ic.ItemID, ic.Name, ic.PriceCents); err != nil {
			return nil, s.unavailable(err)
		}
		if ic.TotalStock != nil {
			old, _ := a.Item(ic.ItemID)
			if err := s.changeStock(ctx, a, ic.ItemID, *ic.TotalStock-old.TotalStock); err != nil {
				return nil, err
			}
		}
	}
	if a, err = s.activities.Activity(ctx, id); err != nil {
		return nil, s.unavailable(err)
	}
	if a.State == domain.StatePublished {
		for _, it := range a.Items {
			if err := s.warmItem(ctx, a, it.ID, false); err != nil { // new window and limit
				return nil, s.unavailable(err)
			}
		}
	}
	a, err = s.catalog.Refresh(ctx, id)
	return a, s.unavailable(err)
}

// changeStock adds delta units to an item, spread over its buckets. Taking units goes
// Redis first (so no shopper is admitted against units that are going away), then
// MySQL; adding goes MySQL first, then Redis. A failure of the second step is undone.
func (s *Service) changeStock(ctx context.Context, a *domain.Activity, itemID, delta int64) error {
	if delta == 0 {
		return nil
	}
	loaded := a.State == domain.StatePublished
	parts := domain.SplitStock(abs(delta), a.BucketCount)
	sign := int64(1)
	if delta < 0 {
		sign = -1
	}
	for b, n := range parts {
		if n == 0 {
			continue
		}
		d := sign * n
		if d < 0 && loaded {
			if _, err := s.ledger.Adjust(ctx, a.ID, itemID, b, d); err != nil {
				return s.unavailable(err)
			}
		}
		if err := s.orders.AddStock(ctx, itemID, b, d); err != nil {
			if d < 0 && loaded {
				if _, uerr := s.ledger.Adjust(ctx, a.ID, itemID, b, -d); uerr != nil {
					s.log.Error("undo stock change in redis; the reconciler will repair it", "item", itemID, "err", uerr)
				}
			}
			if domain.IsCode(err, domain.ESoldOut) {
				return domain.Errorf(domain.EConflict, "item %d: cannot take %d units, fewer are unsold", itemID, -d)
			}
			return s.unavailable(err)
		}
		if d > 0 && loaded {
			if _, err := s.ledger.Adjust(ctx, a.ID, itemID, b, d); err != nil {
				s.log.Error("add stock in redis; the reconciler will repair it", "item", itemID, "err", err)
			}
		}
	}
	return nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// ItemStats is one item's numbers.
type ItemStats struct {
	ItemID                    int64
	TotalStock                int64
	RedisStock, MySQLStock    int64
	InFlight                  int64
	Orders, UnitsSold         int64
	PendingTickets            int
	RedisLoaded               bool
	OldestPendingAdmittedTime time.Time
}

// Stats reports an activity's stock in Redis and MySQL, orders, pending tickets and
// what the backend refused, by reason.
func (s *Service) Stats(ctx context.Context, id int64) ([]ItemStats, map[string]int64, error) {
	a, err := s.activities.Activity(ctx, id)
	if err != nil {
		return nil, nil, s.unavailable(err)
	}
	var out []ItemStats
	for _, it := range a.Items {
		st, err := s.ledger.State(ctx, a.ID, it.ID, a.BucketCount)
		if err != nil {
			return nil, nil, s.unavailable(err)
		}
		rows, err := s.orders.Stock(ctx, it.ID)
		if err != nil {
			return nil, nil, s.unavailable(err)
		}
		c, err := s.orders.Counts(ctx, it.ID)
		if err != nil {
			return nil, nil, s.unavailable(err)
		}
		is := ItemStats{ItemID: it.ID, TotalStock: it.TotalStock, RedisStock: st.Available(), InFlight: st.InFlight,
			Orders: c.Orders, UnitsSold: c.Units, PendingTickets: st.Tickets, RedisLoaded: st.Loaded}
		for _, r := range rows {
			is.MySQLStock += r.Available
		}
		out = append(out, is)
	}
	shed := map[string]int64{}
	s.shedMu.Lock()
	for reason, c := range s.shed[id] {
		shed[reason] = c.Load()
	}
	s.shedMu.Unlock()
	return out, shed, nil
}
