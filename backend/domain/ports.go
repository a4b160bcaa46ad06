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
	// stock, split over the buckets, and fills in the ids, the version and each
	// item's state (online unless offline) and window (times as the store keeps them).
	CreateActivity(ctx context.Context, a *Activity) error
	// AddItem adds an item with its stock, split over the activity's buckets, to an
	// activity in any state, fills in its ids, state and window as CreateActivity
	// does, and bumps the activity's version; not_found when there is no activity,
	// bad_request when it holds MaxItems items already.
	AddItem(ctx context.Context, activityID int64, it *Item) error
	// Activity returns an activity with its items; not_found when there is none.
	Activity(ctx context.Context, id int64) (*Activity, error)
	// Item returns one item; not_found when there is none.
	Item(ctx context.Context, id int64) (Item, error)
	// Activities lists the activities q selects, newest first, with their items.
	Activities(ctx context.Context, q ActivityQuery) ([]*Activity, error)
	// SetState moves an activity to a state and bumps its version.
	SetState(ctx context.Context, id int64, st State) error
	// UpdateActivity applies a change in one transaction and bumps the activity's
	// version: its own fields, its bucket count (giving every item a stock row for
	// each bucket; new rows hold nothing, rows past the count stay for the orders in
	// flight that name them), its items' names and prices, and each item's stock by
	// the buckets' deltas (conflict when a bucket has fewer units than a delta takes)
	// and total, its items' states and windows. When any part is refused, nothing
	// changes.
	UpdateActivity(ctx context.Context, id int64, c ActivityChange) error
}

// OrderStore is the last word on orders, buyers' units and stock: every order is
// written with its buyer's units and the versioned update of its stock row in one
// transaction.
type OrderStore interface {
	// WriteOrder writes one admitted request: the order (unique by ticket, and by
	// shopper, item and idempotency key), the buyer's units (refused past limit with
	// limit_exceeded) and each stock row it takes from (refused with sold_out below
	// zero). A ticket written before is returned with Duplicate set, one voided
	// before is refused with voided; the order another ticket of the same key wrote
	// is returned with Replay set. A failure known to have left nothing is marked
	// NotCommitted; any other non-*Error failure has an unknown outcome.
	WriteOrder(ctx context.Context, r OrderRequest, limit int) (Written, error)
	// WriteBatch writes requests of one item and bucket together where it can; the
	// results are in the order of reqs, each as WriteOrder's.
	WriteBatch(ctx context.Context, reqs []OrderRequest, limit int) ([]Written, []error)
	// OrderByTicket returns a ticket's row: its order, or its void mark; not_found
	// when it has none.
	OrderByTicket(ctx context.Context, ticket string) (Order, error)
	// ReplayOf returns the order a ticket replayed: a ticket whose write met another
	// ticket's order of the same idempotency key (Written.Replay) keeps that order;
	// not_found for any other ticket.
	ReplayOf(ctx context.Context, ticket string) (Order, error)
	// OrdersByTickets returns the rows of the tickets that have one, by ticket.
	OrdersByTickets(ctx context.Context, tickets []string) (map[string]Order, error)
	// VoidTicket decides a ticket as not written unless it was written before: it
	// keeps a void mark for the ticket, so a late write of it writes nothing
	// (refused with voided). It returns the ticket's row and whether this call voided
	// it (false: the row was there, a void mark or an order).
	VoidTicket(ctx context.Context, r OrderRequest) (Order, bool, error)
	// Order returns one order of a user; not_found when it is not theirs. Void marks
	// are never orders: Order, Orders and EndOrder do not see them.
	Order(ctx context.Context, userID, id int64) (Order, error)
	// Orders lists a page of the orders q selects, in q's order.
	Orders(ctx context.Context, q OrderQuery) ([]Order, error)
	// EndOrder moves a created order to cancelled or expired and gives its units back
	// to the stock row and the buyer, in one transaction; it reports whether this call
	// changed the order (an ended or paid order comes back as it is). Only the owner
	// ends an order: another user's, or user 0's, is not_found (expiry names the
	// order's own user).
	EndOrder(ctx context.Context, userID, id int64, to OrderStatus) (Order, bool, error)
	// PayOrder marks a created order paid; conflict when it is cancelled, expired or
	// deleted (Transition).
	PayOrder(ctx context.Context, userID, id int64) (Order, error)
	// DeleteOrder moves a user's cancelled or expired order to deleted; a deleted one
	// comes back as it is, others are refused with conflict (Transition).
	DeleteOrder(ctx context.Context, userID, id int64) (Order, error)
	// StaleOrders returns up to limit orders still created (unpaid) since before t.
	StaleOrders(ctx context.Context, before time.Time, limit int) ([]Order, error)
	// Counts returns an item's live orders and units.
	Counts(ctx context.Context, itemID int64) (ItemCounts, error)
	// View reads an item's stock rows and its orders ended (cancelled or expired, and
	// deleted since) at or after endedSince, and with full the units each user holds
	// and the idempotency keys its orders hold (ended ones too; void marks hold none),
	// all in one consistent snapshot: an order's end, which changes the order, its
	// buyer's units and the stock rows in one transaction, is in all of them or none.
	// Of tickets, it says which have an order that took its units (Written: any order
	// but a void mark), in the same snapshot.
	View(ctx context.Context, itemID int64, endedSince time.Time, full bool, tickets ...string) (ItemView, error)
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
// tickets' results. Every operation on one item is atomic. An item is loaded once
// Warm has written its sale state; operations that give units back or change counters
// do nothing on an item that is not loaded (the ledger lost it: the next Warm reads
// the order store, which is the truth).
type StockLedger interface {
	// Deduct admits one request: in order, a replay of a seen idempotency key (its
	// ticket, nothing taken), the sale's state and window, the quantity, the buyer's
	// limit, and the stock: from the home bucket when it holds the whole quantity,
	// else from the next bucket that does, else from several buckets in turn (Parts).
	// Refusals: sold_out (no unit left at all), insufficient_stock (fewer left than
	// asked), limit_exceeded, not_started, ended, not_found, bad_request, conflict
	// when the ticket has a result already (Settle ended it before this call ran: a
	// caller whose call failed in doubt ended it, and the call landed later), nothing
	// taken; ErrNotLoaded when the ledger holds nothing of the item.
	Deduct(ctx context.Context, d Deduction) (Deducted, error)
	// DeductBatch admits requests of one item (one activity, item and bucket count)
	// in one atomic step, in their order, each as Deduct would and each seeing what
	// the ones before it took: errs[i] is request i's refusal or ErrNotLoaded. err is
	// the call's own failure, after which any of them may or may not have been taken.
	DeductBatch(ctx context.Context, ds []Deduction) (out []Deducted, errs []error, err error)
	// Settle ends an in-flight ticket with its result. A failed ticket gives back its
	// stock (unless the reason is sold_out: the order store had fewer units than the
	// ledger counted), its buyer units and its idempotency record; a created ticket
	// with reason ReasonReplayed gives back its stock and buyer units and keeps the
	// key. It reports whether this call settled it; a ticket not in flight keeps the
	// result it has, or gets this one if it has none (and, when it had none and the
	// ticket says what its caller Wrote, the ledger takes those units: see Ticket).
	// buckets is the item's bucket count; a ticket that took from a bucket past it is
	// settled all the same.
	Settle(ctx context.Context, t Ticket, buckets int) (bool, error)
	// PendingTakes are the tickets of written orders whose settle found the item not
	// loaded (Ticket.Wrote): the next load takes their units unless its view of the
	// order store holds the orders (SaleState.Counted).
	PendingTakes(ctx context.Context, activityID, itemID int64) ([]string, error)
	// SettleBatch settles tickets of one item in one atomic step, each as Settle
	// would; done[i] is Settle's answer for tickets[i].
	SettleBatch(ctx context.Context, tickets []Ticket, buckets int) (done []bool, err error)
	// Release gives back the stock and buyer units of a committed order that was
	// cancelled or expired, once per order; it reports whether this call did. On an
	// item not loaded it reports false and leaves the release pending for
	// PendingReleaseTTL: the next Warm that writes every counter gives it back unless
	// its Released holds the order (the order store it read had the units back).
	Release(ctx context.Context, o Order) (bool, error)
	// Ticket returns where a user's ticket stands: its result, pending while in
	// flight, not_found otherwise (unknown, expired, or another user's).
	Ticket(ctx context.Context, userID int64, ticket string) (Ticket, error)
	// KeyTicket returns the ticket an admission of the user's idempotency key took
	// for the item, if the ledger holds one (a retry is answered with its outcome).
	KeyTicket(ctx context.Context, activityID, itemID, userID int64, key string) (ticket string, ok bool, err error)
	// Tickets reads tickets of one item (q[i].ID, owned by q[i].UserID) in one step:
	// out[i] is what Ticket says of q[i], with an empty Status where it says
	// not_found.
	Tickets(ctx context.Context, q []Ticket) (out []Ticket, err error)
	// Warm loads an item's sale state. Live stock counters are kept unless
	// overwrite is set; buyer records and idempotency records (s.Keys: a request
	// with one of them replays its order's ticket) are added only where missing. The
	// state, window, limit and bucket count are kept when the ledger holds them at a
	// newer version than s.Version.
	Warm(ctx context.Context, s SaleState, overwrite bool) error
	// SetState changes the sale state (published, offline) of a loaded item.
	SetState(ctx context.Context, activityID, itemID int64, st State) error
	// SetSale writes the sale state of a loaded item (state, window, per-user limit,
	// bucket count, version from s; its counters and records stay) unless the ledger
	// holds a newer version; loaded is false, and nothing is written, when the item is
	// not loaded.
	SetSale(ctx context.Context, s SaleState) (loaded bool, err error)
	// SetBuckets records a new bucket count in a loaded item's sale state.
	SetBuckets(ctx context.Context, activityID, itemID int64, n int) error
	// Epoch names the item's load in the ledger: a Warm that writes every counter
	// (the item loaded anew, as after a restart) starts a new one. "" when the item is
	// not loaded, or was loaded before epochs were kept.
	Epoch(ctx context.Context, activityID, itemID int64) (string, error)
	// Adjust adds delta units to a bucket and returns the new count; conflict when it
	// would go below zero, ErrNotLoaded when the item is not loaded or its epoch is no
	// longer epoch: a delta that follows a change committed in the order store is
	// refused once the ledger was loaded anew meanwhile, whose load may have read
	// the change already (the reconciler raises a counter left short).
	Adjust(ctx context.Context, activityID, itemID int64, bucket int, delta int64, epoch string) (int64, error)
	// Take removes up to n units from a bucket and returns how many it removed.
	// A background duty passes its lease's fencing token (0: none, an operator's
	// call): a token lower than one the item has seen is refused with ErrFenced.
	Take(ctx context.Context, activityID, itemID int64, bucket int, n int64, fence int64) (int64, error)
	// Reset sets a bucket counter to want if it still holds was; it reports whether
	// it did. fence as for Take. When it does, the orders of ended (ended lately,
	// their units counted in want) are released: each not released before is marked
	// so, and its buyer's units go back, as its release would have done; a release
	// of one landing afterwards does nothing.
	// holds is ItemState.Holds as read with was: a hold taken since refuses it.
	Reset(ctx context.Context, activityID, itemID int64, bucket int, was, want int64, fence int64, holds int64, changes int64, ended []Order) (bool, error)
	// HoldResets makes Reset refuse the item's counters until LetResets lets this hold
	// go or ttl passes (each hold lapses on its own): a change that takes units out of
	// the ledger before its MySQL commit holds them, so the reconciler does not give
	// them back meanwhile.
	HoldResets(ctx context.Context, activityID, itemID int64, ttl time.Duration) (hold string, err error)
	LetResets(ctx context.Context, activityID, itemID int64, hold string) error
	// State reads an item's counters and in-flight tickets over buckets buckets.
	State(ctx context.Context, activityID, itemID int64, buckets int) (ItemState, error)
	// Mark records that what was done to an in-flight ticket (the reconciler's
	// republish); first is false when it was recorded before. Marks outlive their
	// tickets by a day at most.
	Mark(ctx context.Context, activityID, itemID int64, ticket, what string) (first bool, err error)
	// InFlight lists an item's in-flight tickets.
	InFlight(ctx context.Context, activityID, itemID int64) ([]Flight, error)
	// Available sums an item's bucket counters; loaded is false when the ledger holds
	// nothing of the item.
	Available(ctx context.Context, activityID, itemID int64, buckets int) (n int64, loaded bool, err error)
}

// Cache is the shared byte cache of the catalog's read path. Every value carries the
// version of what it holds, and a write never replaces a newer version with an older
// one (a slow rebuild must not undo an operator's change). Rebuild locks let one
// replica at a time rebuild a key. Keys of one value and its lock share a Redis
// Cluster slot: they carry a hash tag, "sk:{...}".
type Cache interface {
	// Get returns the cached value of key; ok is false on a miss.
	Get(ctx context.Context, key string) (val []byte, ok bool, err error)
	// Put writes val as version of key for ttl unless the cache holds a newer
	// version; it reports whether it wrote.
	Put(ctx context.Context, key string, version int64, val []byte, ttl time.Duration) (bool, error)
	// Del drops keys.
	Del(ctx context.Context, keys ...string) error
	// Lock takes the rebuild lock of key for ttl and returns a token only this holder
	// knows; ok is false (and token empty) when someone else holds it.
	Lock(ctx context.Context, key string, ttl time.Duration) (token string, ok bool, err error)
	// PutLocked is Put while token still holds key's lock, and frees the lock; it
	// reports whether it wrote.
	PutLocked(ctx context.Context, key, token string, version int64, val []byte, ttl time.Duration) (bool, error)
	// Unlock frees the lock of key if token still holds it.
	Unlock(ctx context.Context, key, token string) error
}

// Leases give the fleet's one-at-a-time duties (the reconciler, the rebalancer, the
// expiry of unpaid orders) to one process at a time.
type Leases interface {
	// Hold takes the lease name for holder, or renews it when holder has it, for ttl.
	// token is the lease's fencing token, which grows with every new holder and stays
	// the same across renewals; held is false (token 0) while another holds it.
	Hold(ctx context.Context, name, holder string, ttl time.Duration) (token int64, held bool, err error)
	// Release gives the lease up at once if holder has it.
	Release(ctx context.Context, name, holder string) error
}
