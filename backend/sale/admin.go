package sale

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	if a.Room.Factor == 0 {
		a.Room.Factor = domain.DefaultRoomFactor
	}
	if err := a.Validate(); err != nil {
		return err
	}
	if err := s.activities.CreateActivity(ctx, a); err != nil {
		return s.unavailable(err)
	}
	// Drop a cached null object for the new id. The activity exists whatever this
	// does, so a failure is no failure of the call (an error would invite a second
	// activity): a draft sells nothing, and publishing refreshes the caches again.
	if _, err := s.refresh(ctx, a.ID); err != nil {
		s.log.Warn("created an activity; its caches were not refreshed", "activity", a.ID, "err", err)
	}
	return nil
}

// made answers a failure after an operator's change committed: the change is made,
// and the ledger or the caches follow it within a reconciler pass (or their life);
// doing it again is safe and tries again. Never "nothing was taken".
func (s *Service) made(err error) error {
	if err == nil {
		return nil
	}
	s.log.Error("an operator's change is made; the sale has not followed it yet", "err", err)
	return domain.Errorf(domain.EUnavailable, "the change is made; the sale follows it within a reconciler pass (%v)", err)
}

// refresh reloads an activity into the caches after an operator's change and tells
// the fleet, whose backends and gateways drop their copies of it.
func (s *Service) refresh(ctx context.Context, id int64) (*domain.Activity, error) {
	a, err := s.catalog.Refresh(ctx, id)
	if err != nil || s.changes == nil {
		return a, err
	}
	var version int64
	if a != nil {
		version = a.Version
	}
	if aerr := s.changes.AnnounceActivity(ctx, id, version); aerr != nil {
		// The change is made; the others see it when their copies expire.
		s.log.Warn("announce an activity's change", "activity", id, "err", aerr)
	}
	return a, nil
}

// FollowChanges drops this process's copies of the activities other processes
// change, until ctx ends. Without Changes it does nothing.
func (s *Service) FollowChanges(ctx context.Context) error {
	if s.changes == nil {
		return nil
	}
	stop, err := s.changes.WatchActivities(ctx, s.catalog.Forget)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		stop()
	}()
	return nil
}

// AdminActivity reads an activity from MySQL, whatever its state.
func (s *Service) AdminActivity(ctx context.Context, id int64) (*domain.Activity, error) {
	a, err := s.activities.Activity(ctx, id)
	return a, s.unavailable(err)
}

// Activity reads a published activity through the caches. A refusal is checked
// against the shared copy first (see Catalog.Recheck).
func (s *Service) Activity(ctx context.Context, id int64) (*domain.Activity, error) {
	a, err := s.catalog.Activity(ctx, id)
	if err == nil && a.State == domain.StatePublished {
		return a, nil
	}
	if err == nil || domain.IsCode(err, domain.ENotFound) {
		a, err = s.catalog.Recheck(ctx, id)
	}
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
	activityID, known := s.itemOf.Get(id)
	if !known {
		it, err := s.activities.Item(ctx, id)
		if err != nil {
			return it, nil, s.unavailable(err)
		}
		activityID = it.ActivityID
		s.itemOf.Add(id, activityID)
	}
	a, err := s.Activity(ctx, activityID)
	switch {
	case domain.IsCode(err, domain.ENotFound):
		return domain.Item{}, nil, domain.Errorf(domain.ENotFound, "item %d not found", id)
	case err != nil:
		// Not "not found": the gateway would keep that answer for its null TTL.
		return domain.Item{}, nil, s.unavailable(err)
	}
	got, ok := a.Item(id)
	if !ok {
		return domain.Item{}, nil, domain.Errorf(domain.ENotFound, "item %d not found", id)
	}
	return got, a, nil
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
	// Read again: the ledger takes the state at the version it is now.
	if a, err = s.activities.Activity(ctx, id); err != nil {
		return nil, s.made(err)
	}
	for _, it := range a.Items {
		// Live counters of a sale that was taken offline and back are kept.
		if err := s.warmItem(ctx, a, it.ID, false); err != nil {
			return nil, s.made(fmt.Errorf("publish activity %d: %w", id, err))
		}
	}
	a, err = s.refresh(ctx, id)
	return a, s.made(err)
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
	// Read again: the ledger takes the state at the version it is now, so a change
	// that read the activity before (an update, a restore) cannot put it back on sale.
	if a, err = s.activities.Activity(ctx, id); err != nil {
		return nil, s.made(err)
	}
	for _, it := range a.Items {
		// Only a loaded item has a state to change; one never published stays unloaded.
		if err := s.applySale(ctx, a, it.ID); err != nil {
			return nil, s.made(fmt.Errorf("take activity %d offline: %w", id, err))
		}
	}
	a, err = s.refresh(ctx, id)
	return a, s.made(err)
}

// Update applies an operator's change, all of it or nothing: every field is checked
// first, then MySQL takes the whole change in one transaction. A stock change keeps the
// invariants: units are added to or taken from what is available, never from what is
// sold or in flight. Units taken come out of the ledger first (so no shopper is
// admitted against units going away) and go back if MySQL refuses; units added go to
// the ledger after MySQL. The ledger is adjusted whenever it holds the item, published
// or offline, so a change made offline holds when the sale is published again.
//
// Stock totals are absolute: the units moved are worked out from the total read, and
// MySQL refuses them if another change committed meanwhile (ItemChange.FromTotal); the
// change is then worked out again from the new total. So a change sent again after a
// 504 (the first still waiting on a lock) moves nothing more; before, each added or
// took its difference, and 100 -> 150 sent twice left 200.
func (s *Service) Update(ctx context.Context, id int64, c domain.ActivityChange) (*domain.Activity, error) {
	for attempt := 1; ; attempt++ {
		a, err := s.update(ctx, id, c)
		if !errors.Is(err, domain.ErrStockChanged) {
			return a, err
		}
		if attempt == 3 {
			return nil, domain.Errorf(domain.EConflict, "the item's stock kept changing under this change (other changes at once); read the activity and try again")
		}
	}
}

func (s *Service) update(ctx context.Context, id int64, c domain.ActivityChange) (*domain.Activity, error) {
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
	if c.BucketCount != nil {
		if a.Strategy != domain.StrategyBucket {
			return nil, domain.Errorf(domain.EBadRequest, "bucket_count applies to the bucket strategy only")
		}
		next.BucketCount = *c.BucketCount
	}
	if c.RoomOn != nil {
		next.Room.On = *c.RoomOn
	}
	if c.RoomFactor != nil {
		next.Room.Factor = *c.RoomFactor
	}
	next.Items = slices.Clone(a.Items)
	seen := map[int64]bool{}
	for _, ic := range c.Items {
		if ic.ItemID <= 0 {
			return nil, domain.Errorf(domain.EBadRequest, "each item change needs the item's id")
		}
		k := slices.IndexFunc(next.Items, func(it domain.Item) bool { return it.ID == ic.ItemID })
		if k < 0 {
			return nil, domain.Errorf(domain.ENotFound, "item %d is not in activity %d", ic.ItemID, id)
		}
		if seen[ic.ItemID] {
			return nil, domain.Errorf(domain.EBadRequest, "item %d is changed twice", ic.ItemID)
		}
		seen[ic.ItemID] = true
		applyItemChange(&next.Items[k], ic)
	}
	// The change as a whole: an item's window stays within the activity's.
	if err := next.Validate(); err != nil {
		return nil, err
	}
	change := c
	change.Items = slices.Clone(c.Items)
	// Each changed item's resets held and its epoch read, before anything moves: the
	// reconciler must not give back units taken before the commit, and a delta to the
	// ledger after the commit applies only to the load it was read from.
	epochs := map[int64]string{}
	for _, ic := range change.Items {
		if ic.TotalStock != nil {
			defer s.holdResets(ctx, a.ID, ic.ItemID)()
			epochs[ic.ItemID] = s.ledgerEpoch(ctx, a.ID, ic.ItemID)
		}
	}
	var taken []stockMove // units out of the ledger, to give back if MySQL refuses
	undo := func() {
		for _, m := range taken {
			if _, err := s.ledger.Adjust(context.WithoutCancel(ctx), a.ID, m.item, m.bucket, m.n, epochs[m.item]); err != nil && !errors.Is(err, domain.ErrNotLoaded) {
				s.log.Error("give taken units back to the ledger; the reconciler will", "item", m.item, "bucket", m.bucket, "err", err)
			}
		}
	}
	for k, ic := range change.Items {
		if ic.TotalStock == nil {
			continue
		}
		old, _ := a.Item(ic.ItemID)
		deltas, moves, err := s.stockDeltas(ctx, a, ic.ItemID, *ic.TotalStock-old.TotalStock)
		taken = append(taken, moves...)
		if err != nil {
			undo()
			return nil, err
		}
		change.Items[k].Stock = deltas
		from := old.TotalStock
		change.Items[k].FromTotal = &from
	}
	if err := s.activities.UpdateActivity(ctx, id, change); err != nil {
		// A commit whose outcome is unknown may have taken the units in MySQL too:
		// they stay out of the ledger (short, never over) until the reconciler
		// reads the rows.
		if !errors.Is(err, domain.ErrOutcomeUnknown) {
			undo()
		}
		if errors.Is(err, domain.ErrStockChanged) {
			return nil, err // worked out again by Update
		}
		return nil, s.unavailable(err)
	}
	for _, ic := range change.Items {
		reloaded := len(ic.Stock) > 0 && s.reloaded(ctx, a.ID, ic.ItemID, epochs[ic.ItemID])
		for _, d := range ic.Stock {
			switch {
			case d.Delta > 0:
				if _, err := s.ledger.Adjust(ctx, a.ID, ic.ItemID, d.Bucket, d.Delta, epochs[ic.ItemID]); err != nil && !errors.Is(err, domain.ErrNotLoaded) {
					s.log.Error("add stock to the ledger; the reconciler will", "item", ic.ItemID, "err", err)
				}
			case d.Delta < 0 && reloaded:
				// Loaded anew since the units were taken: the load may have read MySQL
				// before this commit, units and all. Take them again (short at worst,
				// which the reconciler raises; never over).
				if _, err := s.ledger.Take(ctx, a.ID, ic.ItemID, d.Bucket, -d.Delta, 0); err != nil {
					s.log.Error("take lowered stock out of a reloaded ledger; the reconciler will", "item", ic.ItemID, "err", err)
				}
			}
		}
	}
	// The change is committed: what follows brings Redis and the caches to it, and a
	// failure here is the reconciler's to finish, not the operator's to undo. The
	// answer says so: the fields are absolute, so a retry changes nothing more.
	if a, err = s.activities.Activity(ctx, id); err != nil {
		return nil, domain.Errorf(domain.EUnavailable, "the change is made; reading it back failed: %v", err)
	}
	if c.BucketCount != nil {
		s.spreadBuckets(ctx, a)
	}
	var warmErr error
	if a.State != domain.StateDraft {
		for _, it := range a.Items {
			// New window, limit, item states: in the ledger before the answer.
			if err := s.applySale(ctx, a, it.ID); err != nil {
				s.log.Error("bring the ledger to an activity's change; the reconciler will", "activity", id, "item", it.ID, "err", err)
				warmErr = err
			}
		}
	}
	got, err := s.refresh(ctx, id)
	if err != nil || warmErr != nil {
		return nil, domain.Errorf(domain.EUnavailable, "the change is made; the sale follows it within a reconciler pass (%v)", errors.Join(warmErr, err))
	}
	return got, nil
}

// applyItemChange applies ic's fields to it (its stock is the new total).
func applyItemChange(it *domain.Item, ic domain.ItemChange) {
	if ic.Name != nil {
		it.Name = *ic.Name
	}
	if ic.PriceCents != nil {
		it.PriceCents = *ic.PriceCents
	}
	if ic.TotalStock != nil {
		it.TotalStock = *ic.TotalStock
	}
	if ic.State != nil {
		it.State = *ic.State
	}
	if ic.Start != nil {
		it.Start = *ic.Start
	}
	if ic.End != nil {
		it.End = *ic.End
	}
}

// ledgerEpoch is the item's epoch in the ledger, or one no load has when it cannot be
// read: a delta under it is refused, and the reconciler raises the counter left short.
func (s *Service) ledgerEpoch(ctx context.Context, activityID, itemID int64) string {
	e, err := s.ledger.Epoch(ctx, activityID, itemID)
	if err != nil {
		return "unknown"
	}
	return e
}

// holdResets holds the reconciler's resets of an item while a change takes units out
// of the ledger before its MySQL commit (between the two the counter is short of the
// row by design, and a reset would give the units back, to be over once MySQL
// commits). It returns the call that lets them go again.
//
// A hold lapses after Config.ResetsHold unless renewed, and the change renews it
// every third of that while it runs (a commit may wait on row locks for minutes), for
// up to maxResetsHeld: a backend that dies mid-change blocks the item's repairs for
// ResetsHold at most, not for the longest a change could take (three minutes before,
// with the units it took unsellable the while).
func (s *Service) holdResets(ctx context.Context, activityID, itemID int64) (let func()) {
	ttl := s.cfg.ResetsHold
	bg := context.WithoutCancel(ctx)
	hold, err := s.ledger.HoldResets(ctx, activityID, itemID, ttl)
	if err != nil {
		s.log.Warn("hold the reconciler's resets during a change; a repair meanwhile is undone by its next pass", "item", itemID, "err", err)
	}
	holds := []string{hold} // every hold that may have been taken: all are let go
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for until := time.Now().Add(maxResetsHeld); time.Now().Before(until); {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			// A new hold before the old ones go: never a moment without one. A
			// renewal that failed may have been taken or not; the holds before it
			// stay until one succeeds (or they lapse).
			next, err := s.ledger.HoldResets(bg, activityID, itemID, ttl)
			if err != nil {
				s.log.Warn("renew the hold of the reconciler's resets during a change", "item", itemID, "err", err)
				holds = append(holds, next)
				continue
			}
			for _, h := range holds {
				if lerr := s.ledger.LetResets(bg, activityID, itemID, h); lerr != nil {
					s.log.Warn("let a renewed hold of resets go; it lapses", "item", itemID, "lapses_in", ttl, "err", lerr)
				}
			}
			holds = append(holds[:0], next)
		}
		s.log.Warn("a change has held an item's resets for long; its hold now lapses", "item", itemID, "held_for", maxResetsHeld)
	}()
	return func() { // let go even after an error: the hold may have been taken
		close(stop)
		<-done
		for _, h := range holds {
			if err := s.ledger.LetResets(bg, activityID, itemID, h); err != nil {
				s.log.Warn("let the reconciler's resets go; they resume when the hold lapses", "item", itemID, "lapses_in", ttl, "err", err)
			}
		}
	}
}

// maxResetsHeld bounds how long a change renews its hold of an item's resets: past a
// commit that waits for row locks three times (InnoDB's lock wait is 50 s, and a
// transaction is tried thrice). A backend stuck, not dead, holds them this long.
const maxResetsHeld = 3 * time.Minute

// reloaded reports whether the item was loaded anew in the ledger since its epoch
// read epoch. An item loaded then and not loaded now lost its data, and a restore may
// be on its way (MySQL read, its script not yet run): it waits up to a second for one
// to land, so a caller taking units out again finds them.
func (s *Service) reloaded(ctx context.Context, activityID, itemID int64, epoch string) bool {
	now := s.ledgerEpoch(ctx, activityID, itemID)
	for i := 0; now == "" && epoch != "" && i < 40; i++ {
		select {
		case <-ctx.Done():
			return true
		case <-time.After(25 * time.Millisecond):
		}
		now = s.ledgerEpoch(ctx, activityID, itemID)
	}
	return now != epoch
}

// stockMove is n units of an item's bucket taken out of the ledger.
type stockMove struct {
	item   int64
	bucket int
	n      int64
}

// stockDeltas splits an item's stock change over its buckets. Units added spread
// evenly. Units taken come from what is unsold: while the ledger holds the item, out
// of its counters (taken now, returned in moves), bucket by bucket; otherwise out of
// MySQL's rows, which the update's versioned writes check. conflict when fewer units
// are unsold than asked.
func (s *Service) stockDeltas(ctx context.Context, a *domain.Activity, itemID, delta int64) ([]domain.StockDelta, []stockMove, error) {
	var out []domain.StockDelta
	if delta >= 0 {
		for b, n := range domain.SplitStock(delta, a.BucketCount) {
			if n > 0 {
				out = append(out, domain.StockDelta{Bucket: b, Delta: n})
			}
		}
		return out, nil, nil
	}
	need := -delta
	st, err := s.ledger.State(ctx, a.ID, itemID, a.BucketCount)
	if err != nil {
		return nil, nil, s.unavailable(err)
	}
	var moves []stockMove
	took := make([]int64, a.BucketCount)
	if st.Loaded {
		// Each bucket its even share first, then whatever is left from any bucket.
		for pass, share := range [][]int64{domain.SplitStock(need, a.BucketCount), nil} {
			for b := 0; b < a.BucketCount && need > 0; b++ {
				want := need
				if pass == 0 {
					want = min(share[b], need)
				}
				got, err := s.ledger.Take(ctx, a.ID, itemID, b, want, 0)
				if err != nil {
					return nil, moves, s.unavailable(err)
				}
				if got > 0 {
					moves = append(moves, stockMove{item: itemID, bucket: b, n: got})
					took[b] += got
					need -= got
				}
			}
		}
	} else {
		rows, err := s.orders.Stock(ctx, itemID)
		if err != nil {
			return nil, nil, s.unavailable(err)
		}
		for _, r := range rows {
			if t := min(need, r.Available); t > 0 && r.Bucket < len(took) {
				took[r.Bucket] += t
				need -= t
			}
		}
	}
	for b, n := range took {
		if n > 0 {
			out = append(out, domain.StockDelta{Bucket: b, Delta: -n})
		}
	}
	if need > 0 {
		return nil, moves, domain.Errorf(domain.EConflict, "item %d: cannot take %d units, only %d are unsold", itemID, -delta, -delta-need)
	}
	return out, moves, nil
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

// ActivityStats are an activity's numbers.
type ActivityStats struct {
	Items       []ItemStats
	BackendShed map[string]int64 // the backends' refusals by reason
	GatewayShed map[string]int64 // the gateways' sheds by "layer/reason" (with fleet tallies only)
}

// Stats reports an activity's stock in Redis and MySQL, orders, pending tickets and
// what the fleet refused, by reason: the sums of every backend and gateway when the
// tallies are shared, this process's own otherwise.
func (s *Service) Stats(ctx context.Context, id int64) (ActivityStats, error) {
	a, err := s.activities.Activity(ctx, id)
	if err != nil {
		return ActivityStats{}, s.unavailable(err)
	}
	var out []ItemStats
	for _, it := range a.Items {
		st, err := s.ledger.State(ctx, a.ID, it.ID, a.BucketCount)
		if err != nil {
			return ActivityStats{}, s.unavailable(err)
		}
		rows, err := s.orders.Stock(ctx, it.ID)
		if err != nil {
			return ActivityStats{}, s.unavailable(err)
		}
		c, err := s.orders.Counts(ctx, it.ID)
		if err != nil {
			return ActivityStats{}, s.unavailable(err)
		}
		is := ItemStats{ItemID: it.ID, TotalStock: it.TotalStock, RedisStock: st.Available(), InFlight: st.InFlight,
			Orders: c.Orders, UnitsSold: c.Units, PendingTickets: st.Tickets, RedisLoaded: st.Loaded}
		for _, r := range rows {
			is.MySQLStock += r.Available
		}
		out = append(out, is)
	}
	if s.tallies != nil {
		s.flushTallies(ctx) // this backend's latest counts too
		be, err1 := s.tallies.Read(ctx, id, "be:")
		gw, err2 := s.tallies.Read(ctx, id, "gw:")
		if err := errors.Join(err1, err2); err != nil {
			return ActivityStats{}, s.unavailable(err)
		}
		return ActivityStats{Items: out, BackendShed: be, GatewayShed: gw}, nil
	}
	shed := map[string]int64{}
	s.shedMu.Lock()
	for reason, c := range s.shed[id] {
		shed[reason] = c.Load()
	}
	s.shedMu.Unlock()
	return ActivityStats{Items: out, BackendShed: shed}, nil
}
