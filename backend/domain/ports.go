package domain

import (
	"context"
	"time"
)

// The ports: what the sale rules (backend/sale) and the workers (worker) need of the
// world. Adapters implement them: backend/mysql (Catalog, OrderStore), backend/redis
// (StockLedger, Cache), backend/rocketmq (Publisher), and backend/inmem (all of them,
// in memory, for fast tests of the rules and the embedded quick start's queue).
//
// Refusals are *Error values with a code; any other error is a dependency failing.

// Catalog is where activities and their items live for good.
type Catalog interface {
	// CreateActivity stores a new activity in state draft with its items and their
	// stock, split over the buckets, and fills in the ids and the version.
	CreateActivity(ctx context.Context, a *Activity) error
	// Activity returns an activity with its items; not_found when there is none.
	Activity(ctx context.Context, id int64) (*Activity, error)
	// Item returns one item; not_found when there is none.
	Item(ctx context.Context, id int64) (Item, error)
	// Activities lists activities newest first: the published ones, or all.
	Activities(ctx context.Context, all bool) ([]*Activity, error)
	// SetState moves an activity to a state and bumps its version.
	SetState(ctx context.Context, id int64, st State) error
	// UpdateActivity changes an activity's own fields and bumps its version.
	UpdateActivity(ctx context.Context, id int64, c ActivityChange) error
	// UpdateItem changes an item's name or price (nil: unchanged).
	UpdateItem(ctx context.Context, id int64, name *string, price *int64) error
	// SetBucketCount changes an activity's bucket count and gives every item a stock
	// row for each bucket (new rows hold nothing; rows past the count stay for the
	// orders in flight that name them).
	SetBucketCount(ctx context.Context, activityID int64, n int) error
}

// OrderStore is the last word on orders, buyers' units and stock: every order is
// written with its buyer's units and the versioned update of its stock row in one
// transaction.
type OrderStore interface {
	// WriteOrder writes one admitted request: the order (unique by ticket), the
	// buyer's units (refused past limit with limit_exceeded) and the stock row
	// (refused with sold_out below zero). A request written before is returned with
	// Duplicate set. A failure known to have left nothing is marked NotCommitted;
	// any other non-*Error failure has an unknown outcome.
	WriteOrder(ctx context.Context, r OrderRequest, limit int) (Written, error)
	// WriteBatch writes requests of one item and bucket together where it can; the
	// results are in the order of reqs, each as WriteOrder's.
	WriteBatch(ctx context.Context, reqs []OrderRequest, limit int) ([]Written, []error)
	// OrderByTicket returns the order written for a ticket; not_found when none is.
	OrderByTicket(ctx context.Context, ticket string) (Order, error)
	// Order returns one order of a user; not_found when it is not theirs.
	Order(ctx context.Context, userID, id int64) (Order, error)
	// Orders lists a user's orders, newest first.
	Orders(ctx context.Context, userID int64) ([]Order, error)
	// EndOrder moves a created order to cancelled or expired and gives its units back
	// to the stock row and the buyer, in one transaction; it reports whether this call
	// changed the order (an ended or paid order comes back as it is). userID 0 skips
	// the owner check (expiry).
	EndOrder(ctx context.Context, userID, id int64, to OrderStatus) (Order, bool, error)
	// PayOrder marks a created order paid; conflict when it is cancelled or expired.
	PayOrder(ctx context.Context, userID, id int64) (Order, error)
	// StaleOrders returns up to limit orders still created (unpaid) since before t.
	StaleOrders(ctx context.Context, before time.Time, limit int) ([]Order, error)
	// Counts returns an item's live orders and units.
	Counts(ctx context.Context, itemID int64) (ItemCounts, error)
	// Buyers returns the units each user holds of an item.
	Buyers(ctx context.Context, itemID int64) (map[int64]int64, error)
	// Stock returns an item's stock rows by bucket.
	Stock(ctx context.Context, itemID int64) ([]StockRow, error)
	// AddStock adds delta units (negative: takes them, refused with sold_out past
	// what is available) to one bucket and to the item's total stock.
	AddStock(ctx context.Context, itemID int64, bucket int, delta int64) error
	// MoveStock moves n units from one bucket row to another in one transaction.
	MoveStock(ctx context.Context, itemID int64, from, to int, n int64) error
}

// StockLedger is the hot state of a sale, where shoppers are admitted: per item, its
// window and per-user limit, a stock counter per bucket, the units each buyer holds,
// idempotency records, the tickets in flight (pre-deducted, not yet settled) and the
// tickets' results. Every operation on one item is atomic.
type StockLedger interface {
	// Deduct admits one request: in order, a replay of a seen idempotency key (its
	// ticket, nothing taken), the sale's state and window, the quantity, the buyer's
	// limit, and the stock, taken whole from the home bucket or the next one that
	// holds it. Refusals: sold_out, limit_exceeded, not_started, ended, not_found,
	// bad_request; ErrNotLoaded when the ledger holds nothing of the item.
	Deduct(ctx context.Context, d Deduction) (Deducted, error)
	// Settle ends an in-flight ticket with its result. A failed ticket gives back its
	// stock (unless the reason is sold_out: the order store had fewer units than the
	// ledger counted), its buyer units and its idempotency record. It reports whether
	// this call settled it; a ticket not in flight keeps the result it has, or gets
	// this one if it has none.
	Settle(ctx context.Context, t Ticket, buckets int) (bool, error)
	// Release gives back the stock and buyer units of a committed order that was
	// cancelled or expired, once per order; it reports whether this call did.
	Release(ctx context.Context, o Order) (bool, error)
	// Ticket returns where a user's ticket stands: its result, pending while in
	// flight, not_found otherwise (unknown, expired, or another user's).
	Ticket(ctx context.Context, userID int64, ticket string) (Ticket, error)
	// TicketUser returns the user of an in-flight ticket; not_found when it is not.
	TicketUser(ctx context.Context, ticket string) (int64, error)
	// Warm loads an item's sale state. Live stock counters are kept unless
	// overwrite is set; buyer records are added only where missing.
	Warm(ctx context.Context, s SaleState, overwrite bool) error
	// SetState changes the sale state (published, offline) of a warmed item.
	SetState(ctx context.Context, activityID, itemID int64, st State) error
	// SetBuckets records a new bucket count in an item's sale state.
	SetBuckets(ctx context.Context, activityID, itemID int64, n int) error
	// Adjust adds delta units to a bucket and returns the new count; conflict when it
	// would go below zero.
	Adjust(ctx context.Context, activityID, itemID int64, bucket int, delta int64) (int64, error)
	// Take removes up to n units from a bucket and returns how many it removed.
	Take(ctx context.Context, activityID, itemID int64, bucket int, n int64) (int64, error)
	// Reset sets a bucket counter to want if it still holds was; it reports whether
	// it did.
	Reset(ctx context.Context, activityID, itemID int64, bucket int, was, want int64) (bool, error)
	// State reads an item's counters and in-flight tickets over buckets buckets.
	State(ctx context.Context, activityID, itemID int64, buckets int) (ItemState, error)
	// InFlight lists an item's in-flight tickets with when they were admitted.
	InFlight(ctx context.Context, activityID, itemID int64) (map[string]time.Time, error)
	// Available sums an item's bucket counters; loaded is false when the ledger holds
	// nothing of the item.
	Available(ctx context.Context, activityID, itemID int64, buckets int) (n int64, loaded bool, err error)
}

// Cache is the shared byte cache of the catalog's read path, with rebuild locks so one
// replica at a time rebuilds a key.
type Cache interface {
	// Get returns the cached value of key; ok is false on a miss.
	Get(ctx context.Context, key string) (val []byte, ok bool, err error)
	// Set writes key unconditionally.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Del drops keys.
	Del(ctx context.Context, keys ...string) error
	// Lock takes the rebuild lock of key for ttl and returns a token only this holder
	// knows; ok is false when someone else holds it.
	Lock(ctx context.Context, key string, ttl time.Duration) (token string, ok bool, err error)
	// SetLocked writes key only while token still holds its lock, then frees the
	// lock; it reports whether it wrote.
	SetLocked(ctx context.Context, key, token string, val []byte, ttl time.Duration) (bool, error)
	// Unlock frees the lock of key if token still holds it.
	Unlock(ctx context.Context, key, token string) error
}
