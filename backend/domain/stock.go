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
	Bucket   int
	Replayed bool // an earlier request with the same idempotency key holds Ticket
}

// SaleState is what the stock ledger needs to know of an item to sell it.
type SaleState struct {
	ActivityID, ItemID int64
	State              State
	Start, End         time.Time
	PerUserLimit       int
	BucketStock        []int64         // available units per bucket, the order store's view
	Buyers             map[int64]int64 // units held per user, from the order store
}

// ItemState is a snapshot of an item's state in the stock ledger.
type ItemState struct {
	Loaded      bool
	BucketStock []int64
	InFlight    int64   // units pre-deducted but not yet settled
	InFlightBy  []int64 // the same, by bucket
	Tickets     int     // tickets in flight
}

// Available is the sum of the bucket counters.
func (st ItemState) Available() int64 {
	var n int64
	for _, b := range st.BucketStock {
		n += b
	}
	return n
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
	Duplicate bool // the order had been written before (a redelivery); nothing changed
}

// ActivityChange is what an operator may change of an activity's own fields; nil
// fields stay. The strategy is fixed once created; the bucket count changes on its own.
type ActivityChange struct {
	Name         *string
	Start, End   *time.Time
	PerUserLimit *int
}

// ItemChange changes an item; nil fields stay.
type ItemChange struct {
	ItemID     int64
	Name       *string
	PriceCents *int64
	TotalStock *int64
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
