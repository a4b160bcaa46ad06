package domain

import (
	"errors"
	"time"
)

// ErrNotLoaded means the stock ledger holds no sale state for an item (it was never
// warmed, or Redis lost its data): nothing was deducted, and the item must be warmed
// from the order store before it sells again.
var ErrNotLoaded = errors.New("sale state not loaded in the stock ledger")

// Deduction asks the stock ledger for stock for one request.
type Deduction struct {
	ActivityID, ItemID, UserID int64
	Quantity                   int
	IdempotencyKey             string // "" when the client sent none
	Ticket                     string // the ticket the request gets if admitted
	Buckets                    int    // the item's bucket count
	HomeBucket                 int    // where the user's request tries first
}

// Deducted is the outcome of an admitted (or replayed) request.
type Deducted struct {
	Ticket   string
	Bucket   int    // the first bucket of Parts
	Parts    []Part // where the units were taken, when from more than one bucket
	Replayed bool   // an earlier request with the same idempotency key holds Ticket
}

// SaleState is what the stock ledger needs to know of an item to sell it.
type SaleState struct {
	ActivityID, ItemID int64
	State              State
	Start, End         time.Time
	PerUserLimit       int
	// Version is the activity's version this state was read at: the ledger never
	// replaces the state of a newer version with an older one (0: unversioned,
	// always written).
	Version     int64
	BucketStock []int64 // available units per bucket, the order store's view
	// Buckets is how many buckets sell (0: len(BucketStock)); BucketStock may hold
	// more, the buckets past a lowered count, whose units the rebalancer moves.
	Buckets int
	Buyers  map[int64]int64 // units held per user, from the order store
	Keys    []KeyTicket     // the idempotency keys orders hold, from the order store
	// Released are the tickets of orders ended lately, whose units BucketStock holds
	// already: when the warm writes the stock counters, a release of one of them that
	// lands afterwards gives nothing back a second time.
	Released []string
	// Counted are the tickets of the ledger's pending takes (PendingTakes) whose
	// orders the order store's view holds: their units are out of BucketStock
	// already, and the load takes nothing for them. It takes the others'.
	Counted []string
	// Recent are the tickets of the orders created since RecentSince that the order
	// store's view holds. An order whose ticket the ledger lost (it restarted empty)
	// and whose writer settles it after this load was counted by the load if it is
	// among them or was created before RecentSince; else the settle takes its units
	// (domain.Ticket.Wrote). A zero RecentSince: not known, the load counted them all.
	Recent      []string
	RecentSince time.Time
}

// RecentWindow is how far before a full view it lists the item's recent orders
// (ItemView.Recent): longer than any write transaction lasts (the order store bounds
// them well under it), so an order created before it had committed before the view.
const RecentWindow = 5 * time.Minute

// ReleaseWithin bounds how long after an order's end its release may still reach the
// ledger: a release is one ledger call made right after the end commits, so minutes
// are a wide margin. A load of an item marks the orders ended within it released (its
// snapshot holds their units), and a reconciler's reset those of its bucket.
const ReleaseWithin = 10 * time.Minute

// PendingReleaseTTL is how long a release that found its item not loaded waits for
// the item's next load. Under ReleaseWithin, so that load's snapshot lists every order
// ended before it whose release is still pending.
const PendingReleaseTTL = ReleaseWithin / 2

// ItemView is what the order store holds of an item, read at one moment (View).
type ItemView struct {
	Stock  []StockRow
	Ended  []Order         // orders ended since the time asked: their units are in Stock
	Buyers map[int64]int64 // units held per user (full views)
	Keys   []KeyTicket     // idempotency keys orders hold (full views)
	// Written are the tickets asked of that have an order (not a void mark): its
	// units are out of Stock.
	Written map[string]bool
	// Recent are the tickets of the orders (not void marks) created at or after
	// RecentSince, RecentWindow before the view (full views).
	Recent      []string
	RecentSince time.Time
}

// LiveBuckets is how many buckets sell.
func (s SaleState) LiveBuckets() int {
	if s.Buckets > 0 {
		return s.Buckets
	}
	return len(s.BucketStock)
}

// KeyTicket is a shopper's idempotency key and the ticket of the order that holds it.
type KeyTicket struct {
	UserID      int64
	Key, Ticket string
}

// ItemState is a snapshot of an item's state in the stock ledger.
type ItemState struct {
	Loaded bool
	// The sale as the ledger runs it (when loaded): its state, window and limit.
	State        State
	Start, End   time.Time
	PerUserLimit int

	BucketStock []int64
	InFlight    int64   // units pre-deducted but not yet settled
	InFlightBy  []int64 // the same, by bucket
	Tickets     int     // tickets in flight
	// Holds counts the holds of the item's resets ever taken and let go (HoldResets,
	// LetResets): a Reset passing the count it read is refused once a hold came or
	// went since (that change may have moved units after the read).
	Holds int64
	// Changes counts the changes of the item's counters and tickets in flight since
	// its meta was made (every script that makes one adds one): two reads that find
	// the same count saw the item unchanged between them, whatever came and went.
	Changes int64
}

// Available is the sum of the bucket counters.
func (st ItemState) Available() int64 {
	var n int64
	for _, b := range st.BucketStock {
		n += b
	}
	return n
}

// Flight is a ticket in flight: pre-deducted in the stock ledger, not yet settled.
type Flight struct {
	Ticket     string
	UserID     int64
	Quantity   int
	Parts      []Part // where its units came from
	AdmittedAt time.Time
	IdemKey    string // the shopper's idempotency key, if any
}

// Request is the order request the flight stands for, as far as the ledger knows it
// (enough to void its ticket, or with its amount to send it again).
func (f Flight) Request(activityID, itemID int64) OrderRequest {
	r := OrderRequest{Ticket: f.Ticket, UserID: f.UserID, ActivityID: activityID, ItemID: itemID, Quantity: f.Quantity,
		AdmittedAt: f.AdmittedAt.UnixMilli(), IdemKey: f.IdemKey}
	if len(f.Parts) > 0 {
		r.Bucket = f.Parts[0].Bucket
	}
	if len(f.Parts) > 1 {
		r.Parts = f.Parts
	}
	return r
}

// StockRow is one bucket of an item's stock in the order store.
type StockRow struct {
	Bucket    int
	Available int64
	Version   int64
}

// ItemCounts is what the order store says of an item's sales: live (created or paid)
// orders and their units.
type ItemCounts struct {
	Orders, Units int64
}

// Written is the outcome of writing one admitted request.
type Written struct {
	Order     Order
	Duplicate bool // the ticket had been decided before (a redelivery); nothing changed
	// Replay: another ticket of the same shopper, item and idempotency key wrote
	// Order before (the ledger had lost the key); this ticket wrote nothing and its
	// units go back.
	Replay bool
}

// ActivityChange is what an operator may change of an activity; nil fields stay. The
// strategy is fixed once created.
type ActivityChange struct {
	Name         *string
	Start, End   *time.Time
	PerUserLimit *int
	BucketCount  *int
	Items        []ItemChange
	// RoomOn and RoomFactor change the waiting room (live: the gateways read the
	// activity again within their cache's life).
	RoomOn     *bool
	RoomFactor *float64
}

// ItemChange changes an item; nil fields stay.
type ItemChange struct {
	ItemID     int64
	Name       *string
	PriceCents *int64
	TotalStock *int64
	State      *ItemStatus
	// Start and End set the item's own window; a zero time drops it (the item follows
	// the activity's window again).
	Start, End *time.Time
	// Stock is the change to each bucket's available units that makes TotalStock;
	// the sale rules work it out, the store applies it with the versioned update.
	Stock []StockDelta
	// FromTotal, when set, is the item's total stock Stock was worked out from: the
	// store refuses the whole change (NotCommitted, ErrStockChanged) when the item
	// holds another, so a change sent twice, or two at once, cannot both move it.
	FromTotal *int64
}

// ErrStockChanged refuses an ItemChange whose FromTotal is not the item's total stock
// any more: another change committed since it was worked out. Nothing was written.
var ErrStockChanged = errors.New("the item's total stock changed since the change was worked out")

// StockDelta adds Delta units (negative: takes them) to one bucket.
type StockDelta struct {
	Bucket int
	Delta  int64
}

// ActivityQuery selects activities, newest first: a page at a time, keyed on the id,
// so paging never repeats or skips an activity, whatever is created meanwhile.
type ActivityQuery struct {
	All    bool  // every state; false: published only
	State  State // only this state ("": as All says)
	Before int64 // ids below this one (0: from the newest)
	Limit  int   // at most this many (0: 100)
}

// OrderQuery selects orders a page at a time, keyed on the order id: newest first
// (ids descending) unless Oldest. A page starts past the cursor After, so paging
// never repeats or skips an order that existed when it began, whatever is written
// meanwhile (new orders have higher ids). Void marks are never orders.
type OrderQuery struct {
	UserID     int64         // one shopper's (0: anyone's)
	ActivityID int64         // one activity's (0: any)
	ItemID     int64         // one item's (0: any)
	Statuses   []OrderStatus // only these (empty: every status)
	After      int64         // the cursor: the last id of the previous page (0: from the first)
	Oldest     bool          // ascending ids
	Limit      int           // at most this many (0: 100)
	// WrittenBefore keeps only orders written before it (zero: all). Ids are taken
	// when an order is inserted and its transaction commits later, so a page read
	// while orders are written could hold id n+1 and not n, and its cursor would pass
	// n for good; orders written longer ago than any write takes have all committed.
	WrittenBefore time.Time
}

// notCommitted marks a write that failed before its commit was sent.
type notCommitted struct{ err error }

func (e notCommitted) Error() string { return e.err.Error() }
func (e notCommitted) Unwrap() error { return e.err }

// NotCommitted wraps a write failure known to have left nothing in the order store, so
// the stock it held can be given back at once.
func NotCommitted(err error) error {
	if err == nil {
		return nil
	}
	return notCommitted{err}
}

// IsNotCommitted reports whether err is a write failure known to have left nothing in
// the order store (as opposed to a failed commit, whose outcome is unknown).
func IsNotCommitted(err error) bool {
	var nc notCommitted
	return errors.As(err, &nc)
}
