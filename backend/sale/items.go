package sale

import (
	"context"
	"slices"

	"github.com/seckill/flashsale/backend/domain"
)

// An item's own life within its activity: added after the activity was created,
// taken offline and back online, given a window of its own, while the sale runs.
//
// The order store holds the item's state and window; the ledger holds what it
// enforces (domain.Activity.SaleState and ItemWindow), so a change reaches every
// gateway and backend the moment the ledger has it: the ledger admits every order,
// atomically per item. Each write to the ledger carries the activity's version, and
// the ledger keeps the newest, so a warm that read the order store before a change
// (a backend restoring an item Redis lost) cannot undo it. Orders admitted before an
// item went offline finish as any other (the worker writes them whatever the item's
// state); its units stay counted (a cancel or an expiry gives them back to the
// counters, which the item keeps while offline), and back online it sells what is
// left. Gateways and backends drop their copies of the activity on the announcement.

// saleState is what the ledger enforces for an item of a, at a's version: the
// counters and records are left for the caller to fill in.
func saleState(a *domain.Activity, itemID int64) (domain.SaleState, error) {
	it, ok := a.Item(itemID)
	if !ok {
		return domain.SaleState{}, domain.Errorf(domain.ENotFound, "item %d is not in activity %d", itemID, a.ID)
	}
	start, end := a.ItemWindow(it)
	return domain.SaleState{ActivityID: a.ID, ItemID: itemID, State: a.SaleState(it), Start: start, End: end,
		PerUserLimit: a.PerUserLimit, Version: a.Version, BucketStock: make([]int64, a.BucketCount)}, nil
}

// applySale brings the ledger to an item's sale state as a (read after the change)
// says: a loaded item gets the new state at once; an item not loaded is warmed whole
// when its activity is published (so it sells, and a warm of an older version racing
// this one cannot win), and left alone otherwise (the next publish warms it).
func (s *Service) applySale(ctx context.Context, a *domain.Activity, itemID int64) error {
	st, err := saleState(a, itemID)
	if err != nil {
		return err
	}
	loaded, err := s.ledger.SetSale(ctx, st)
	if err != nil || loaded || a.State != domain.StatePublished {
		return err
	}
	return s.warmItem(ctx, a, itemID, false)
}

// AddItem adds an item with its stock to an activity in any state. In a published
// activity it goes on sale at once (unless added offline or with a window that has
// not begun): the order store holds its stock before the ledger does.
func (s *Service) AddItem(ctx context.Context, activityID int64, it domain.Item) (*domain.Activity, error) {
	a, err := s.activities.Activity(ctx, activityID)
	if err != nil {
		return nil, s.unavailable(err)
	}
	it.ID, it.ActivityID = 0, activityID
	if err := a.ValidateItem(it); err != nil {
		return nil, err
	}
	if err := s.activities.AddItem(ctx, activityID, &it); err != nil {
		return nil, s.unavailable(err)
	}
	// The item exists from here on, whatever follows: the answer is the activity with
	// it, never an error that would invite a second item. The ledger loads an item it
	// lacks from MySQL at its first order, and the caches follow within their life.
	before := a
	if a, err = s.activities.Activity(ctx, activityID); err != nil {
		s.log.Warn("added an item; reading its activity back failed", "activity", activityID, "item", it.ID, "err", err)
		with := *before
		with.Items = append(slices.Clone(before.Items), it)
		return &with, nil
	}
	if a.State != domain.StateDraft {
		if err := s.applySale(ctx, a, it.ID); err != nil {
			s.log.Warn("added an item; the ledger takes it at its first order", "activity", activityID, "item", it.ID, "err", err)
		}
	}
	if got, err := s.refresh(ctx, activityID); err != nil {
		s.log.Warn("added an item; its activity's caches were not refreshed", "activity", activityID, "item", it.ID, "err", err)
	} else {
		a = got
	}
	return a, nil
}

// SetItemState takes an item offline or puts it back online, while its activity stays
// as it is. Offline, the item admits nothing from the moment this returns, on every
// gateway; back online it sells the units it has left.
func (s *Service) SetItemState(ctx context.Context, activityID, itemID int64, st domain.ItemStatus) (*domain.Activity, error) {
	if st != domain.ItemOnline && st != domain.ItemOffline {
		return nil, domain.Errorf(domain.EBadRequest, "an item's state is online or offline, not %q", st)
	}
	return s.Update(ctx, activityID, domain.ActivityChange{Items: []domain.ItemChange{{ItemID: itemID, State: &st}}})
}
