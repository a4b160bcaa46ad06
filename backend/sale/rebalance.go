package sale

import (
	"context"
	"errors"
	"fmt"

	"github.com/seckill/flashsale/backend/domain"
)

// Moving units between buckets (DESIGN: bucket strategy).
//
// A move of n units from bucket A to bucket B goes in three steps:
//  1. Redis: take up to n units out of A's counter, atomically (take.lua). Shoppers
//     can no longer get them from A; nobody can get them from B yet.
//  2. MySQL: one transaction moves the units taken from A's row to B's row, both with
//     the versioned update.
//  3. Redis: add the units to B's counter.
//
// Why it is safe: between the steps Redis holds at most what MySQL holds in every
// bucket (units are taken from Redis before MySQL and given to Redis after MySQL), so
// no shopper is ever admitted against a unit that is not in MySQL: no oversell. The
// units taken in step 1 came out of A's counter, which never counts A's in-flight
// orders, so A's row keeps enough for them. If step 2 fails, the units go back to A
// (unless its commit's outcome is unknown: then they stay parked); if step 3 fails, B's counter is short and the reconciler, which compares each bucket
// with its row, gives them back: a unit can be parked for a while, never lost.

// Rebalance evens out the buckets of an item when some have drained while others hold
// stock, and empties buckets past the activity's bucket count. It returns how many
// units it moved.
func (s *Service) Rebalance(ctx context.Context, a *domain.Activity, itemID int64) (int64, error) {
	return s.rebalance(ctx, a, itemID, 0)
}

// rebalance is Rebalance under the background lease's fencing token (0: none).
func (s *Service) rebalance(ctx context.Context, a *domain.Activity, itemID int64, fence int64) (int64, error) {
	rows, err := s.orders.Stock(ctx, itemID)
	if err != nil {
		return 0, err
	}
	n := a.BucketCount
	width := max(n, len(rows))
	st, err := s.ledger.State(ctx, a.ID, itemID, width)
	if err != nil || !st.Loaded {
		return 0, err
	}
	var total int64
	for _, v := range st.BucketStock {
		total += v
	}
	target := domain.SplitStock(total, n)
	// Only move when it matters: a live bucket is empty or under half its share, or a
	// bucket past the count holds units.
	need := false
	for b, v := range st.BucketStock {
		if b >= n && v > 0 || b < n && (v == 0 && total >= int64(n) || v*2 < target[b]) {
			need = true
		}
	}
	if !need {
		return 0, nil
	}
	var moved int64
	for from := range st.BucketStock {
		surplus := st.BucketStock[from]
		if from < n {
			surplus -= target[from]
		}
		for to := 0; to < n && surplus > 0; to++ {
			deficit := target[to] - st.BucketStock[to]
			if to == from || deficit <= 0 {
				continue
			}
			m, err := s.move(ctx, a, itemID, from, to, min(surplus, deficit), fence)
			if err != nil {
				return moved, err
			}
			st.BucketStock[from] -= m
			st.BucketStock[to] += m
			surplus -= m
			moved += m
			if m == 0 {
				break // the bucket drained meanwhile
			}
		}
	}
	if moved > 0 {
		s.log.Info("rebalanced buckets", "activity", a.ID, "item", itemID, "units", moved)
		s.metrics.Repairs.WithLabelValues("rebalance").Add(float64(moved))
	}
	return moved, nil
}

// move moves up to n units from one bucket to another (see the top of this file).
func (s *Service) move(ctx context.Context, a *domain.Activity, itemID int64, from, to int, n int64, fence int64) (int64, error) {
	defer s.holdResets(ctx, a.ID, itemID)()
	epoch := s.ledgerEpoch(ctx, a.ID, itemID)
	got, err := s.ledger.Take(ctx, a.ID, itemID, from, n, fence)
	if err != nil || got == 0 {
		return 0, err
	}
	if err := s.orders.MoveStock(ctx, itemID, from, to, got); err != nil {
		if errors.Is(err, domain.ErrOutcomeUnknown) {
			// The move may have committed: giving the units back to A could put
			// more in A's counter than its row holds. They stay parked; the
			// reconciler gives each bucket what its row says.
			s.log.Warn("moving units between buckets: outcome unknown; the reconciler restores the counters", "item", itemID, "units", got, "err", err)
			return 0, fmt.Errorf("move %d units of item %d from bucket %d to %d: %w", got, itemID, from, to, err)
		}
		if _, uerr := s.ledger.Adjust(ctx, a.ID, itemID, from, got, epoch); uerr != nil {
			s.log.Error("give taken units back to their bucket; the reconciler will", "item", itemID, "bucket", from, "err", uerr)
		}
		return 0, fmt.Errorf("move %d units of item %d from bucket %d to %d: %w", got, itemID, from, to, err)
	}
	if s.reloaded(ctx, a.ID, itemID, epoch) {
		// Loaded anew since the take: the load may have read the rows before the move,
		// the units still in A. Take them out of A again and leave B short (the
		// reconciler raises it); never more in Redis than in MySQL. Nothing moved in
		// Redis: the pass's own count of the buckets no longer holds.
		if _, err := s.ledger.Take(ctx, a.ID, itemID, from, got, fence); err != nil {
			return 0, fmt.Errorf("take moved units out of a reloaded ledger: %w", err)
		}
		return 0, fmt.Errorf("item %d was loaded anew during a move; the next pass starts over", itemID)
	}
	if _, err := s.ledger.Adjust(ctx, a.ID, itemID, to, got, epoch); err != nil {
		s.log.Error("add moved units to their bucket; the reconciler will", "item", itemID, "bucket", to, "err", err)
	}
	return got, nil
}

// SetBuckets changes an activity's bucket count during a sale and spreads the stock
// over the new buckets.
func (s *Service) SetBuckets(ctx context.Context, id int64, n int) (*domain.Activity, error) {
	return s.Update(ctx, id, domain.ActivityChange{BucketCount: &n})
}

// spreadBuckets brings the ledger to an activity's new bucket count: the count in each
// loaded item's state, counters for the new buckets (SETNX keeps live ones), and the
// units moved into them. Failures are logged: the rebalancer and the reconciler finish
// the work.
func (s *Service) spreadBuckets(ctx context.Context, a *domain.Activity) {
	for _, it := range a.Items {
		if err := s.ledger.SetBuckets(ctx, a.ID, it.ID, a.BucketCount); err != nil {
			s.log.Warn("record the bucket count in the ledger", "item", it.ID, "err", err)
			continue
		}
		if a.State != domain.StatePublished {
			continue
		}
		if err := s.warmItem(ctx, a, it.ID, false); err != nil {
			s.log.Warn("warm new buckets", "item", it.ID, "err", err)
			continue
		}
		if _, err := s.Rebalance(ctx, a, it.ID); err != nil {
			s.log.Warn("rebalance after a bucket count change; the rebalancer will", "item", it.ID, "err", err)
		}
	}
}

// RebalanceAll rebalances every bucketed item of the published activities; one
// item's failure holds back no other.
func (s *Service) RebalanceAll(ctx context.Context, fence int64) error {
	var errs []error
	err := s.eachActivity(ctx, domain.ActivityQuery{}, func(a *domain.Activity) {
		if a.Strategy != domain.StrategyBucket {
			return
		}
		for _, it := range a.Items {
			if _, err := s.rebalance(ctx, a, it.ID, fence); err != nil {
				errs = append(errs, fmt.Errorf("rebalance item %d: %w", it.ID, err))
			}
		}
	})
	return errors.Join(append(errs, err)...)
}

// eachActivity calls f with every activity q selects, page by page.
func (s *Service) eachActivity(ctx context.Context, q domain.ActivityQuery, f func(*domain.Activity)) error {
	q.Limit = 200
	for {
		page, err := s.activities.Activities(ctx, q)
		if err != nil {
			return err
		}
		for _, a := range page {
			f(a)
		}
		if len(page) < q.Limit || ctx.Err() != nil {
			return ctx.Err()
		}
		q.Before = page[len(page)-1].ID
	}
}
