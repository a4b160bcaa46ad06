package inmem

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// Store is an in-memory catalog and order store with the semantics of backend/mysql:
// the same ids (counted up from 1, a refused order still uses one up), versions, stock
// rows per bucket, refusals and order states. Every method is one transaction under a
// mutex: a refusal leaves nothing behind. Values handed out are copies. It is safe for
// concurrent use.
type Store struct {
	now func() time.Time

	mu                                sync.Mutex
	lastActivity, lastItem, lastOrder int64
	activities                        map[int64]*domain.Activity // Items unset: see items
	itemsOf                           map[int64][]int64          // activity -> its item ids, ascending
	items                             map[int64]*domain.Item
	stock                             map[int64]map[int]*domain.StockRow // item -> bucket -> row
	orders                            map[int64]*domain.Order
	byTicket                          map[string]int64
	byKey                             map[keyOf]int64  // shopper, item and idempotency key -> order
	replays                           map[string]int64 // ticket -> the order it replayed (ReplayOf)
	purchases                         map[purchaseKey]*purchase
	endedAt                           map[int64]time.Time // order -> when it was ended, or deleted after
}

type purchaseKey struct{ item, user int64 }

// keyOf is the unique key of an order's idempotency key.
type keyOf struct {
	user, item int64
	key        string
}

// purchase is a buyer's row: the units and live orders a user holds of an item.
type purchase struct{ units, orders int64 }

var (
	_ domain.Catalog    = (*Store)(nil)
	_ domain.OrderStore = (*Store)(nil)
)

// NewStore returns an empty Store.
func NewStore(opts ...Option) *Store {
	o := buildOptions(opts)
	return &Store{
		now:        o.now,
		activities: map[int64]*domain.Activity{},
		itemsOf:    map[int64][]int64{},
		items:      map[int64]*domain.Item{},
		stock:      map[int64]map[int]*domain.StockRow{},
		orders:     map[int64]*domain.Order{},
		byTicket:   map[string]int64{},
		replays:    map[string]int64{},
		byKey:      map[keyOf]int64{},
		purchases:  map[purchaseKey]*purchase{},
		endedAt:    map[int64]time.Time{},
	}
}

// dbTime is t as a DATETIME(3) column keeps it: UTC, truncated to the millisecond.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// txn collects the undo steps of a transaction, so a refusal part way rolls back what
// the earlier steps changed, as the MySQL transaction does.
type txn struct{ undo []func() }

func (t *txn) onRollback(f func()) { t.undo = append(t.undo, f) }

func (t *txn) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		t.undo[i]()
	}
}

// CreateActivity stores a new activity in state draft with its items and stock rows,
// and fills in the ids and the version.
func (s *Store) CreateActivity(_ context.Context, a *domain.Activity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a.State, a.Version = domain.StateDraft, 1
	if a.Room.Factor == 0 {
		a.Room.Factor = domain.DefaultRoomFactor // as MySQL's column default
	}
	s.lastActivity++
	a.ID = s.lastActivity
	row := *a
	row.Start, row.End, row.Items = dbTime(a.Start), dbTime(a.End), nil
	s.activities[a.ID] = &row
	for i := range a.Items {
		s.insertItem(a.ID, a.BucketCount, &a.Items[i])
	}
	return nil
}

// insertItem stores an item with its stock rows and fills in its ids, state and
// window as stored; the caller holds mu.
func (s *Store) insertItem(activityID int64, buckets int, it *domain.Item) {
	it.ActivityID = activityID
	s.lastItem++
	it.ID = s.lastItem
	if it.State == "" {
		it.State = domain.ItemOnline
	}
	it.Start, it.End = optTime(it.Start), optTime(it.End)
	cp := *it
	s.items[it.ID] = &cp
	s.itemsOf[activityID] = append(s.itemsOf[activityID], it.ID)
	rows := map[int]*domain.StockRow{}
	for b, n := range domain.SplitStock(it.TotalStock, buckets) {
		rows[b] = &domain.StockRow{Bucket: b, Available: n}
	}
	s.stock[it.ID] = rows
}

// optTime is a NULLable DATETIME(3) column's time: the zero time stays zero.
func optTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return dbTime(t)
}

// AddItem adds an item with its stock rows to an activity and bumps its version.
func (s *Store) AddItem(_ context.Context, activityID int64, it *domain.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.activities[activityID]
	if !ok {
		return domain.Errorf(domain.ENotFound, "activity %d not found", activityID)
	}
	if n := len(s.itemsOf[activityID]); n >= domain.MaxItems {
		return domain.Errorf(domain.EBadRequest, "activity %d has %d items already, the most it may have", activityID, n)
	}
	s.insertItem(activityID, a.BucketCount, it)
	a.Version++
	return nil
}

// activity returns a copy of an activity with its items; the caller holds mu.
func (s *Store) activity(id int64) *domain.Activity {
	row, ok := s.activities[id]
	if !ok {
		return nil
	}
	a := *row
	for _, iid := range s.itemsOf[id] {
		a.Items = append(a.Items, *s.items[iid])
	}
	return &a
}

// Activity returns an activity with its items; not_found when there is none.
func (s *Store) Activity(_ context.Context, id int64) (*domain.Activity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.activity(id); a != nil {
		return a, nil
	}
	return nil, domain.Errorf(domain.ENotFound, "activity %d not found", id)
}

// Item returns one item; not_found when there is none.
func (s *Store) Item(_ context.Context, id int64) (domain.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.items[id]; ok {
		return *it, nil
	}
	return domain.Item{}, domain.Errorf(domain.ENotFound, "item %d not found", id)
}

// Activities lists the activities q selects, newest first.
func (s *Store) Activities(_ context.Context, q domain.ActivityQuery) ([]*domain.Activity, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*domain.Activity
	for id, a := range s.activities {
		want := q.All || a.State == domain.StatePublished
		if q.State != "" {
			want = a.State == q.State
		}
		if want && (q.Before <= 0 || id < q.Before) {
			out = append(out, s.activity(id))
		}
	}
	slices.SortFunc(out, func(a, b *domain.Activity) int { return cmp.Compare(b.ID, a.ID) })
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// SetState moves an activity to a new state and bumps its version.
func (s *Store) SetState(_ context.Context, id int64, st domain.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.activities[id]
	if !ok {
		return domain.Errorf(domain.ENotFound, "activity %d not found", id)
	}
	a.State = st
	a.Version++
	return nil
}

// UpdateActivity applies a change in one transaction: all of it, or nothing when a
// part is refused.
func (s *Store) UpdateActivity(_ context.Context, id int64, c domain.ActivityChange) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.activities[id]
	if !ok {
		return domain.Errorf(domain.ENotFound, "activity %d not found", id)
	}
	var tx txn
	was := *a
	tx.onRollback(func() { *a = was })
	if c.Name != nil {
		a.Name = *c.Name
	}
	if c.Start != nil {
		a.Start = dbTime(*c.Start)
	}
	if c.End != nil {
		a.End = dbTime(*c.End)
	}
	if c.PerUserLimit != nil {
		a.PerUserLimit = *c.PerUserLimit
	}
	if c.RoomOn != nil {
		a.Room.On = *c.RoomOn
	}
	if c.RoomFactor != nil {
		a.Room.Factor = *c.RoomFactor
	}
	if c.BucketCount != nil {
		a.BucketCount = *c.BucketCount
		for _, iid := range s.itemsOf[id] {
			for b := 0; b < *c.BucketCount; b++ {
				if _, ok := s.stock[iid][b]; !ok {
					s.stock[iid][b] = &domain.StockRow{Bucket: b}
					tx.onRollback(func() { delete(s.stock[iid], b) })
				}
			}
		}
	}
	a.Version++
	for _, ic := range c.Items {
		if err := s.updateItem(&tx, id, ic); err != nil {
			tx.rollback()
			return err
		}
	}
	return nil
}

// updateItem applies an item's change within tx; the caller holds mu.
func (s *Store) updateItem(tx *txn, activityID int64, ic domain.ItemChange) error {
	it, ok := s.items[ic.ItemID]
	if !ok || it.ActivityID != activityID {
		return domain.Errorf(domain.ENotFound, "item %d is not in activity %d", ic.ItemID, activityID)
	}
	if ic.FromTotal != nil && it.TotalStock != *ic.FromTotal {
		return domain.NotCommitted(fmt.Errorf("item %d holds %d units, not %d: %w", ic.ItemID, it.TotalStock, *ic.FromTotal, domain.ErrStockChanged))
	}
	was := *it
	tx.onRollback(func() { *it = was })
	if ic.Name != nil {
		it.Name = *ic.Name
	}
	if ic.PriceCents != nil {
		it.PriceCents = *ic.PriceCents
	}
	if ic.State != nil {
		it.State = *ic.State
		if it.State == "" {
			it.State = domain.ItemOnline
		}
	}
	if ic.Start != nil {
		it.Start = optTime(*ic.Start)
	}
	if ic.End != nil {
		it.End = optTime(*ic.End)
	}
	for _, d := range ic.Stock {
		if err := s.moveStock(tx, ic.ItemID, d.Bucket, d.Delta); err != nil {
			if domain.IsCode(err, domain.ESoldOut) {
				return domain.Errorf(domain.EConflict, "item %d: cannot take %d units from bucket %d, fewer are unsold", ic.ItemID, -d.Delta, d.Bucket)
			}
			return err
		}
		it.TotalStock += d.Delta
	}
	return nil
}

// Stock returns the stock rows of an item, by bucket.
func (s *Store) Stock(_ context.Context, itemID int64) ([]domain.StockRow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stockRows(itemID), nil
}

func (s *Store) stockRows(itemID int64) []domain.StockRow {
	var out []domain.StockRow
	for _, r := range s.stock[itemID] {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b domain.StockRow) int { return cmp.Compare(a.Bucket, b.Bucket) })
	return out
}

// View reads an item's stock rows, its orders ended (cancelled, expired, or deleted
// after either) at or after endedSince and, with full, its buyers and the idempotency
// keys its orders hold, under one lock.
func (s *Store) View(_ context.Context, itemID int64, endedSince time.Time, full bool, tickets ...string) (domain.ItemView, error) {
	endedSince = endedSince.Truncate(time.Microsecond) // what the driver sends
	s.mu.Lock()
	defer s.mu.Unlock()
	v := domain.ItemView{Stock: s.stockRows(itemID), Written: map[string]bool{}}
	for _, t := range tickets {
		if id, ok := s.byTicket[t]; ok && s.orders[id].Status != domain.OrderVoid {
			v.Written[t] = true
		}
	}
	for id, at := range s.endedAt {
		if o := s.orders[id]; o != nil && o.ItemID == itemID && !at.Before(endedSince) {
			v.Ended = append(v.Ended, copyOrder(*o))
		}
	}
	if !full {
		return v, nil
	}
	v.Buyers = map[int64]int64{}
	for k, p := range s.purchases {
		if k.item == itemID && p.units > 0 {
			v.Buyers[k.user] = p.units
		}
	}
	v.RecentSince = dbTime(s.now().Add(-domain.RecentWindow))
	for _, o := range s.orders {
		if o.ItemID == itemID && o.IdemKey != "" && o.Status != domain.OrderVoid {
			v.Keys = append(v.Keys, domain.KeyTicket{UserID: o.UserID, Key: o.IdemKey, Ticket: o.Ticket})
		}
		if o.ItemID == itemID && o.Status != domain.OrderVoid && !o.CreatedAt.Before(v.RecentSince) {
			v.Recent = append(v.Recent, o.Ticket)
		}
	}
	return v, nil
}

// Counts returns the live orders and units of an item, from its buyers' rows.
func (s *Store) Counts(_ context.Context, itemID int64) (domain.ItemCounts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c domain.ItemCounts
	for k, p := range s.purchases {
		if k.item == itemID {
			c.Orders += p.orders
			c.Units += p.units
		}
	}
	return c, nil
}

// moveStock adds delta (negative to take) to one stock row and bumps its version;
// taking more than is available is sold_out. The caller holds mu.
func (s *Store) moveStock(tx *txn, itemID int64, bucket int, delta int64) error {
	if delta == 0 {
		return nil
	}
	r, ok := s.stock[itemID][bucket]
	if !ok {
		return domain.Errorf(domain.ENotFound, "item %d has no stock bucket %d", itemID, bucket)
	}
	if r.Available+delta < 0 {
		return domain.Errorf(domain.ESoldOut, "item %d bucket %d has %d units, not %d", itemID, bucket, r.Available, -delta)
	}
	was := *r
	r.Available += delta
	r.Version++
	tx.onRollback(func() { *r = was })
	return nil
}

// AddStock changes an item's total stock by delta, applied to one bucket's available
// units; it refuses to take more than is available.
func (s *Store) AddStock(_ context.Context, itemID int64, bucket int, delta int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var tx txn
	if err := s.moveStock(&tx, itemID, bucket, delta); err != nil {
		tx.rollback()
		return err
	}
	if it, ok := s.items[itemID]; ok {
		it.TotalStock += delta
	}
	return nil
}

// MoveStock moves n units from one bucket row of an item to another in one
// transaction, the lower bucket first as the MySQL store locks them.
func (s *Store) MoveStock(_ context.Context, itemID int64, from, to int, n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, second := from, to
	d1, d2 := -n, n
	if to < from {
		first, second, d1, d2 = to, from, n, -n
	}
	var tx txn
	if err := s.moveStock(&tx, itemID, first, d1); err != nil {
		tx.rollback()
		return err
	}
	if err := s.moveStock(&tx, itemID, second, d2); err != nil {
		tx.rollback()
		return err
	}
	return nil
}

// WriteOrder writes one admitted request as the MySQL store does: the order (unique
// by ticket, and by shopper, item and idempotency key), the buyer's units (checked
// against limit when it is positive) and each stock row it takes from, all or nothing.
func (s *Store) WriteOrder(_ context.Context, r domain.OrderRequest, limit int) (domain.Written, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeOrder(r, limit)
}

// writeOrder is WriteOrder with mu held.
func (s *Store) writeOrder(r domain.OrderRequest, limit int) (domain.Written, error) {
	if r.Quantity <= 0 || r.Quantity > domain.MaxQuantity {
		return domain.Written{}, domain.Errorf(domain.EBadRequest, "order %s: quantity %d", r.Ticket, r.Quantity)
	}
	if id, ok := s.byTicket[r.Ticket]; ok {
		if o := s.orders[id]; o.Status == domain.OrderVoid {
			return domain.Written{}, domain.Errorf(domain.EVoided, "ticket %s was decided as not written", r.Ticket)
		}
		return domain.Written{Order: *s.orders[id], Duplicate: true}, nil
	}
	k := keyOf{r.UserID, r.ItemID, r.IdemKey}
	if id, ok := s.byKey[k]; ok && r.IdemKey != "" {
		s.replays[r.Ticket] = id
		return domain.Written{Order: *s.orders[id], Replay: true}, nil
	}
	s.lastOrder++ // an auto-increment value is used up even when the insert rolls back
	o := domain.Order{ID: s.lastOrder, Ticket: r.Ticket, UserID: r.UserID, ActivityID: r.ActivityID, ItemID: r.ItemID, Bucket: r.Bucket,
		Parts: slices.Clone(r.Parts), Quantity: r.Quantity, AmountCents: r.AmountCents, Status: domain.OrderCreated, IdemKey: r.IdemKey,
		CreatedAt: dbTime(s.now())}
	if len(o.Parts) < 2 {
		o.Parts = nil
	}
	var tx txn
	s.orders[o.ID], s.byTicket[o.Ticket] = &o, o.ID
	tx.onRollback(func() { delete(s.orders, o.ID); delete(s.byTicket, o.Ticket) })
	if r.IdemKey != "" {
		s.byKey[k] = o.ID
		tx.onRollback(func() { delete(s.byKey, k) })
	}
	if err := s.addPurchase(&tx, r.ItemID, r.UserID, r.Quantity, limit); err != nil {
		tx.rollback()
		return domain.Written{}, err
	}
	if err := s.moveParts(&tx, r.ItemID, r.Units(), -1); err != nil {
		tx.rollback()
		return domain.Written{}, err
	}
	return domain.Written{Order: copyOrder(o)}, nil
}

// moveParts moves each part's units (sign -1 takes, +1 gives back), lowest bucket
// first; the caller holds mu.
func (s *Store) moveParts(tx *txn, itemID int64, parts []domain.Part, sign int64) error {
	sorted := slices.SortedFunc(slices.Values(parts), func(a, b domain.Part) int { return a.Bucket - b.Bucket })
	for _, p := range sorted {
		if err := s.moveStock(tx, itemID, p.Bucket, sign*int64(p.Quantity)); err != nil {
			return err
		}
	}
	return nil
}

// copyOrder is o with a parts slice of its own.
func copyOrder(o domain.Order) domain.Order {
	o.Parts = slices.Clone(o.Parts)
	return o
}

// VoidTicket keeps a void mark for a ticket unless it has a row.
func (s *Store) VoidTicket(_ context.Context, r domain.OrderRequest) (domain.Order, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.byTicket[r.Ticket]; ok {
		return copyOrder(*s.orders[id]), false, nil
	}
	if id, ok := s.replays[r.Ticket]; ok { // decided: it replayed another's order
		return copyOrder(*s.orders[id]), false, nil
	}
	s.lastOrder++
	o := domain.Order{ID: s.lastOrder, Ticket: r.Ticket, UserID: r.UserID, ActivityID: r.ActivityID, ItemID: r.ItemID, Bucket: r.Bucket,
		Parts: slices.Clone(r.Parts), Quantity: r.Quantity, Status: domain.OrderVoid, CreatedAt: dbTime(s.now())}
	if len(o.Parts) < 2 {
		o.Parts = nil
	}
	s.orders[o.ID], s.byTicket[o.Ticket] = &o, o.ID
	return copyOrder(o), true, nil
}

// OrdersByTickets returns the rows of the tickets that have one.
func (s *Store) OrdersByTickets(_ context.Context, tickets []string) (map[string]domain.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]domain.Order{}
	for _, t := range tickets {
		if id, ok := s.byTicket[t]; ok {
			out[t] = copyOrder(*s.orders[id])
		}
	}
	return out, nil
}

// addPurchase adds an order of units to what a user holds of an item and refuses past
// limit (when limit is positive).
func (s *Store) addPurchase(tx *txn, itemID, userID int64, units, limit int) error {
	k := purchaseKey{itemID, userID}
	p, ok := s.purchases[k]
	if !ok {
		p = &purchase{}
		s.purchases[k] = p
		tx.onRollback(func() { delete(s.purchases, k) })
	} else {
		was := *p
		tx.onRollback(func() { *p = was })
	}
	p.units += int64(units)
	p.orders++
	if limit > 0 && p.units > int64(limit) {
		return domain.Errorf(domain.ELimitExceeded, "user %d would hold %d units of item %d, limit %d", userID, p.units, itemID, limit)
	}
	return nil
}

// WriteBatch writes requests of one item and bucket; the results are in the order of
// reqs, each as WriteOrder's, and a ticket that comes twice is written once (the later
// copy gets the first one's result, with Duplicate set). The MySQL store writes the
// batch in one transaction when every order can commit and order by order otherwise;
// both come to what writing them one by one does, which is what this does.
func (s *Store) WriteBatch(_ context.Context, reqs []domain.OrderRequest, limit int) ([]domain.Written, []error) {
	out := make([]domain.Written, len(reqs))
	errs := make([]error, len(reqs))
	for _, r := range reqs {
		if r.ItemID != reqs[0].ItemID || r.Bucket != reqs[0].Bucket {
			panic("inmem: WriteBatch needs one item and bucket") // a caller's bug
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := map[string]int{}
	for i, r := range reqs {
		if j, ok := first[r.Ticket]; ok {
			// The first's outcome, as a redelivery of it: its order (a duplicate), or
			// the key's order it replayed (a replay again, whose units go back).
			w := out[j]
			w.Duplicate = !w.Replay
			out[i], errs[i] = w, errs[j]
			continue
		}
		first[r.Ticket] = i
		out[i], errs[i] = s.writeOrder(r, limit)
	}
	return out, errs
}

// OrderByTicket returns the order written for a ticket.
func (s *Store) OrderByTicket(_ context.Context, ticket string) (domain.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.byTicket[ticket]; ok {
		return copyOrder(*s.orders[id]), nil
	}
	return domain.Order{}, domain.Errorf(domain.ENotFound, "no order for ticket %s", ticket)
}

// ReplayOf returns the order a ticket replayed.
func (s *Store) ReplayOf(_ context.Context, ticket string) (domain.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.replays[ticket]; ok {
		return copyOrder(*s.orders[id]), nil
	}
	return domain.Order{}, domain.Errorf(domain.ENotFound, "ticket %s replayed no order", ticket)
}

// order returns order id if user holds it (any user's when anyUser is set); the
// caller holds mu.
func (s *Store) order(userID, id int64) (*domain.Order, error) {
	o, ok := s.orders[id]
	if !ok || o.Status == domain.OrderVoid || o.UserID != userID {
		return nil, domain.Errorf(domain.ENotFound, "order %d not found", id)
	}
	return o, nil
}

// Order returns one order of a user; not_found when it is not theirs.
func (s *Store) Order(_ context.Context, userID, id int64) (domain.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.order(userID, id)
	if err != nil {
		return domain.Order{}, err
	}
	return copyOrder(*o), nil
}

// Orders lists a page of the orders q selects, keyed on the id.
func (s *Store) Orders(_ context.Context, q domain.OrderQuery) ([]domain.Order, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.Order
	for _, o := range s.orders {
		switch {
		case o.Status == domain.OrderVoid,
			q.UserID != 0 && o.UserID != q.UserID,
			q.ActivityID != 0 && o.ActivityID != q.ActivityID,
			q.ItemID != 0 && o.ItemID != q.ItemID,
			len(q.Statuses) > 0 && !slices.Contains(q.Statuses, o.Status),
			!q.WrittenBefore.IsZero() && !o.CreatedAt.Before(q.WrittenBefore),
			q.After > 0 && !q.Oldest && o.ID >= q.After,
			q.After > 0 && q.Oldest && o.ID <= q.After:
			continue
		}
		out = append(out, copyOrder(*o))
	}
	slices.SortFunc(out, func(a, b domain.Order) int {
		if q.Oldest {
			return cmp.Compare(a.ID, b.ID)
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// EndOrder moves a created order to to and gives its units back to the stock row and
// the buyer, all or nothing; it reports whether this call changed the order. An order
// no longer created comes back as it is. Only the owner's order is ended.
func (s *Store) EndOrder(_ context.Context, userID, id int64, to domain.OrderStatus) (domain.Order, bool, error) {
	if to != domain.OrderCancelled && to != domain.OrderExpired {
		return domain.Order{}, false, domain.Errorf(domain.EBadRequest, "an order ends cancelled or expired, not %s", to)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.order(userID, id)
	if err != nil {
		return domain.Order{}, false, err
	}
	if o.Status != domain.OrderCreated {
		return copyOrder(*o), false, nil
	}
	var tx txn
	if err := s.moveParts(&tx, o.ItemID, o.Units(), +1); err != nil {
		tx.rollback()
		return copyOrder(*o), false, err
	}
	o.Status = to
	s.endedAt[o.ID] = s.now()
	if p, ok := s.purchases[purchaseKey{o.ItemID, o.UserID}]; ok {
		p.units -= int64(o.Quantity)
		p.orders--
	}
	return copyOrder(*o), true, nil
}

// PayOrder marks a created order paid; paying a paid order again is not an error, a
// cancelled, expired or deleted one is a conflict.
func (s *Store) PayOrder(_ context.Context, userID, id int64) (domain.Order, error) {
	return s.moveOrder(userID, id, domain.ActPay)
}

// DeleteOrder moves a cancelled or expired order to deleted; deleting it again is not
// an error, an unpaid or paid one is a conflict.
func (s *Store) DeleteOrder(_ context.Context, userID, id int64) (domain.Order, error) {
	return s.moveOrder(userID, id, domain.ActDelete)
}

// moveOrder applies act (domain.Transition) to a user's order.
func (s *Store) moveOrder(userID, id int64, act string) (domain.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.order(userID, id)
	if err != nil {
		return domain.Order{}, err
	}
	to, _, err := domain.Transition(id, o.Status, act)
	if err != nil {
		return copyOrder(*o), err
	}
	if to != o.Status && to == domain.OrderDeleted {
		s.endedAt[o.ID] = s.now() // as MySQL's updated_at: a deleted order was ended
	}
	o.Status = to
	return copyOrder(*o), nil
}

// StaleOrders returns up to limit orders still created that were created before t,
// oldest first.
func (s *Store) StaleOrders(_ context.Context, before time.Time, limit int) ([]domain.Order, error) {
	if limit <= 0 {
		return nil, nil
	}
	before = before.Truncate(time.Microsecond) // what the driver sends
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.Order
	for _, o := range s.orders {
		if o.Status == domain.OrderCreated && o.CreatedAt.Before(before) {
			out = append(out, copyOrder(*o))
		}
	}
	slices.SortFunc(out, func(a, b domain.Order) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
