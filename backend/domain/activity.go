package domain

import (
	"strings"
	"time"
)

// Strategy is how an activity turns admitted requests into orders.
type Strategy string

const (
	// StrategySync writes the order in the request: Redis pre-deduction, then one MySQL
	// transaction, and the answer carries the order.
	StrategySync Strategy = "sync"
	// StrategyAsync pre-deducts in Redis, hands the order to the queue and answers with
	// a ticket; workers write MySQL.
	StrategyAsync Strategy = "async"
	// StrategyBucket is async with the item's stock split into buckets.
	StrategyBucket Strategy = "bucket"
)

// Valid reports whether s names a known strategy.
func (s Strategy) Valid() bool {
	return s == StrategySync || s == StrategyAsync || s == StrategyBucket
}

// Queued reports whether orders of this strategy travel through the queue.
func (s Strategy) Queued() bool { return s == StrategyAsync || s == StrategyBucket }

// State is an activity's life-cycle state.
type State string

const (
	StateDraft     State = "draft"
	StatePublished State = "published"
	StateOffline   State = "offline"
)

// Limits on what an operator may configure.
const (
	MaxBuckets      = 64
	MaxItems        = 100
	MaxPerUserLimit = 1000
	MaxQuantity     = 1000
	MaxNameLen      = 200
)

// Activity is a sale: a window, a strategy and its items.
type Activity struct {
	ID           int64
	Name         string
	Start, End   time.Time
	State        State
	Strategy     Strategy
	PerUserLimit int // units of one item one user may hold
	BucketCount  int // 1 unless the strategy is bucket
	Version      int64
	Items        []Item
	Room         Room // the waiting room: admission that follows the stock
}

// Room is an activity's waiting room. While it is on, the gateways forward at most
// about Factor x the remaining stock of orders in flight per item, fleet-wide, and
// give every other shopper a place in a line (docs/WAITING_ROOM.md).
type Room struct {
	On     bool
	Factor float64 // k: orders in flight per unit left; 0 at creation means DefaultRoomFactor
}

// Bounds of the waiting room's k.
const (
	DefaultRoomFactor = 1.5
	MinRoomFactor     = 0.1
	MaxRoomFactor     = 100
)

// Item is one product on sale in an activity.
type Item struct {
	ID         int64
	ActivityID int64
	Name       string
	PriceCents int64
	TotalStock int64
}

// Window reports whether t is inside the activity's window: EInternal never, but
// ENotStarted or EEnded outside it.
func (a *Activity) Window(t time.Time) error {
	if t.Before(a.Start) {
		return Errorf(ENotStarted, "activity %d starts at %s", a.ID, a.Start.UTC().Format(time.RFC3339))
	}
	if !t.Before(a.End) {
		return Errorf(EEnded, "activity %d ended at %s", a.ID, a.End.UTC().Format(time.RFC3339))
	}
	return nil
}

// Item returns the activity's item with the given id.
func (a *Activity) Item(id int64) (Item, bool) {
	for _, it := range a.Items {
		if it.ID == id {
			return it, true
		}
	}
	return Item{}, false
}

// Validate checks an activity as an operator describes it.
func (a *Activity) Validate() error {
	switch {
	case strings.TrimSpace(a.Name) == "" || len(a.Name) > MaxNameLen:
		return Errorf(EBadRequest, "name must be 1 to %d characters", MaxNameLen)
	case a.Start.IsZero() || a.End.IsZero() || !a.End.After(a.Start):
		return Errorf(EBadRequest, "end must be after start")
	case !a.Strategy.Valid():
		return Errorf(EBadRequest, "strategy must be sync, async or bucket, not %q", a.Strategy)
	case a.PerUserLimit < 1 || a.PerUserLimit > MaxPerUserLimit:
		return Errorf(EBadRequest, "per_user_limit must be 1 to %d", MaxPerUserLimit)
	case a.BucketCount < 1 || a.BucketCount > MaxBuckets:
		return Errorf(EBadRequest, "bucket_count must be 1 to %d", MaxBuckets)
	case a.Strategy != StrategyBucket && a.BucketCount != 1:
		return Errorf(EBadRequest, "bucket_count applies to the bucket strategy only")
	case !(a.Room.Factor >= MinRoomFactor && a.Room.Factor <= MaxRoomFactor):
		return Errorf(EBadRequest, "waiting_room.k must be %g to %g", float64(MinRoomFactor), float64(MaxRoomFactor))
	case len(a.Items) == 0 || len(a.Items) > MaxItems:
		return Errorf(EBadRequest, "an activity has 1 to %d items", MaxItems)
	}
	for _, it := range a.Items {
		if strings.TrimSpace(it.Name) == "" || len(it.Name) > MaxNameLen {
			return Errorf(EBadRequest, "item name must be 1 to %d characters", MaxNameLen)
		}
		if it.PriceCents < 0 {
			return Errorf(EBadRequest, "item %q: price must not be negative", it.Name)
		}
		if it.TotalStock < 0 {
			return Errorf(EBadRequest, "item %q: stock must not be negative", it.Name)
		}
	}
	return nil
}

// SplitStock divides n units over buckets as evenly as possible; the first n%buckets
// buckets get one unit more.
func SplitStock(n int64, buckets int) []int64 {
	out := make([]int64, buckets)
	for i := range out {
		out[i] = n / int64(buckets)
		if int64(i) < n%int64(buckets) {
			out[i]++
		}
	}
	return out
}
