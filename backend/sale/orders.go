package sale

import (
	"context"
	"slices"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// Lists a page at a time, and the shopper's delete. A page is read one row longer
// than asked: the extra row says whether there is a next page, without a trailing
// empty one; the cursor of the next page is the last id of this one (keyset on the
// id, see domain.OrderQuery).

// ShopperOrders lists a page of a shopper's orders, newest first: those q selects by
// state (every state but deleted when none, never deleted ones) and activity. next
// is the cursor of the next page, 0 when this one is the last.
func (s *Service) ShopperOrders(ctx context.Context, userID int64, q domain.OrderQuery) (page []domain.Order, next int64, err error) {
	if err := owner(userID); err != nil {
		return nil, 0, err
	}
	if slices.Contains(q.Statuses, domain.OrderDeleted) {
		return nil, 0, domain.Errorf(domain.EBadRequest, "deleted orders are not listed; the operators keep them")
	}
	if len(q.Statuses) == 0 {
		q.Statuses = domain.ShopperStatuses
	}
	q.UserID, q.ItemID = userID, 0
	return s.orderPage(ctx, q, domain.ShopperOrdersPage)
}

// ActivityOrders lists a page of an activity's orders for its operators, in every
// state (deleted ones too) unless q names some, of one item when q says so; not_found
// for an unknown activity or an item not in it. Orders written in the last
// Config.OrdersSettle are not listed yet: a walk through the pages during a sale (an
// export) then never skips an order whose transaction was still committing.
func (s *Service) ActivityOrders(ctx context.Context, activityID int64, q domain.OrderQuery) (page []domain.Order, next int64, err error) {
	a, err := s.activities.Activity(ctx, activityID)
	if err != nil {
		return nil, 0, s.unavailable(err)
	}
	if _, ok := a.Item(q.ItemID); q.ItemID != 0 && !ok {
		return nil, 0, domain.Errorf(domain.ENotFound, "item %d is not in activity %d", q.ItemID, activityID)
	}
	q.ActivityID = activityID
	if s.cfg.OrdersSettle > 0 {
		q.WrittenBefore = time.Now().Add(-s.cfg.OrdersSettle)
	}
	return s.orderPage(ctx, q, domain.ActivityOrdersPage)
}

func (s *Service) orderPage(ctx context.Context, q domain.OrderQuery, bounds domain.Page) ([]domain.Order, int64, error) {
	limit, err := bounds.Limit(q.Limit)
	if err != nil {
		return nil, 0, err
	}
	if q.After < 0 {
		return nil, 0, domain.Errorf(domain.EBadRequest, "the cursor must be a positive id")
	}
	for _, st := range q.Statuses {
		if !st.Valid() {
			return nil, 0, domain.Errorf(domain.EBadRequest, "unknown order state %q", st)
		}
	}
	q.Limit = limit + 1
	os, err := s.orders.Orders(ctx, q)
	if err != nil {
		return nil, 0, s.unavailable(err)
	}
	if len(os) <= limit {
		return os, 0, nil
	}
	os = os[:limit]
	return os, os[limit-1].ID, nil
}

// Activities lists a page of the activities q selects, newest first; next is the
// cursor (q.Before) of the next page, 0 when this one is the last.
func (s *Service) Activities(ctx context.Context, q domain.ActivityQuery) (page []*domain.Activity, next int64, err error) {
	limit, err := domain.ActivitiesPage.Limit(q.Limit)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case q.Before < 0:
		return nil, 0, domain.Errorf(domain.EBadRequest, "the cursor must be a positive id")
	case q.State != "" && q.State != domain.StateDraft && q.State != domain.StatePublished && q.State != domain.StateOffline:
		return nil, 0, domain.Errorf(domain.EBadRequest, "state must be draft, published or offline, not %q", q.State)
	case q.State != "" && q.State != domain.StatePublished && !q.All:
		return nil, 0, domain.Errorf(domain.EBadRequest, "only published activities are listed here")
	}
	q.Limit = limit + 1
	as, err := s.activities.Activities(ctx, q)
	if err != nil {
		return nil, 0, s.unavailable(err)
	}
	if len(as) <= limit {
		return as, 0, nil
	}
	as = as[:limit]
	return as, as[limit-1].ID, nil
}

// Delete deletes one of a shopper's cancelled or expired orders: gone from the
// shopper's list, kept for operators. Deleting it again is not an error; an unpaid or
// paid order is refused with conflict.
func (s *Service) Delete(ctx context.Context, userID, id int64) (domain.Order, error) {
	if err := owner(userID); err != nil {
		return domain.Order{}, err
	}
	o, err := s.orders.DeleteOrder(ctx, userID, id)
	return o, s.unavailable(err)
}
