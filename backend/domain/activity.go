package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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
	// MaxPriceCents and MaxStock keep an order's amount (price x quantity) and the
	// ledger's counters (Lua numbers are doubles) exact.
	MaxPriceCents = 1_000_000_000_000 // ten billion in the currency's units
	MaxStock      = 1_000_000_000
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
	State      ItemStatus // "" reads as online
	// Start and End are the item's own window, inside its activity's; a zero time is
	// the activity's (so the item follows a change of the activity's window).
	Start, End time.Time
}

// ItemStatus is an item's own state within its activity. An online item sells while its
// activity is published; an offline one sells nothing, whatever the activity's state,
// and comes back online with the units it had.
type ItemStatus string

const (
	ItemOnline  ItemStatus = "online"
	ItemOffline ItemStatus = "offline"
)

// Valid reports whether s names an item state ("" is online).
func (s ItemStatus) Valid() bool { return s == "" || s == ItemOnline || s == ItemOffline }

// Online reports whether the item is online.
func (it Item) Online() bool { return it.State != ItemOffline }

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

// ItemWindow is the window in which an item of the activity sells: its own where it has
// one, always within the activity's.
func (a *Activity) ItemWindow(it Item) (start, end time.Time) {
	start, end = a.Start, a.End
	if !it.Start.IsZero() && it.Start.After(start) {
		start = it.Start
	}
	if !it.End.IsZero() && it.End.Before(end) {
		end = it.End
	}
	return start, end
}

// SaleState is what the stock ledger enforces for an item: published while the
// activity is published and the item online, else the activity's state, or offline for
// an item taken offline on its own.
func (a *Activity) SaleState(it Item) State {
	if a.State == StatePublished && !it.Online() {
		return StateOffline
	}
	return a.State
}

// OnSale returns the activity's item when it is on sale (the activity published, the
// item in it and online); not_found otherwise. The window is not checked here.
func (a *Activity) OnSale(itemID int64) (Item, error) {
	it, ok := a.Item(itemID)
	switch {
	case !ok || a.State != StatePublished:
		return Item{}, Errorf(ENotFound, "item %d is not on sale in activity %d", itemID, a.ID)
	case !it.Online():
		return Item{}, Errorf(ENotFound, "item %d of activity %d is offline", itemID, a.ID)
	}
	return it, nil
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
	case !printable(a.Name):
		return Errorf(EBadRequest, "name must be valid UTF-8 without control or invisible format characters")
	case !plausible(a.Start) || !plausible(a.End):
		return Errorf(EBadRequest, "start and end must be times from %d to %d", minYear, maxYear-1)
	case !a.End.After(a.Start):
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
		if err := a.ValidateItem(it); err != nil {
			return err
		}
	}
	return nil
}

// ValidateItem checks an item as an operator describes it for this activity: name,
// price, stock, state, and its own window inside the activity's.
func (a *Activity) ValidateItem(it Item) error {
	what := fmt.Sprintf("item %q", it.Name)
	if it.ID != 0 {
		what = fmt.Sprintf("item %d", it.ID)
	}
	switch {
	case strings.TrimSpace(it.Name) == "" || len(it.Name) > MaxNameLen:
		return Errorf(EBadRequest, "%s: name must be 1 to %d characters", what, MaxNameLen)
	case !printable(it.Name):
		return Errorf(EBadRequest, "%s: name must be valid UTF-8 without control or invisible format characters", what)
	case it.PriceCents < 0 || it.PriceCents > MaxPriceCents:
		return Errorf(EBadRequest, "%s: price_cents must be 0 to %d", what, int64(MaxPriceCents))
	case it.TotalStock < 0 || it.TotalStock > MaxStock:
		return Errorf(EBadRequest, "%s: stock must be 0 to %d", what, int64(MaxStock))
	case !it.State.Valid():
		return Errorf(EBadRequest, "%s: state must be online or offline, not %q", what, it.State)
	}
	start, end := it.Start, it.End
	if start.IsZero() {
		start = a.Start
	}
	if end.IsZero() {
		end = a.End
	}
	switch {
	case start.Before(a.Start) || end.After(a.End):
		return Errorf(EBadRequest, "%s: its window %s to %s must lie within the activity's, %s to %s", what,
			start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), a.Start.UTC().Format(time.RFC3339), a.End.UTC().Format(time.RFC3339))
	case !end.After(start):
		return Errorf(EBadRequest, "%s: its end must be after its start", what)
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

// printable reports whether a name is valid UTF-8 without control characters (a NUL,
// a newline, an escape sequence) or invisible format characters (a right-to-left
// override, a zero-width space; the zero-width joiner of emoji stays), which
// storefronts and CSV exports would pass on.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || (unicode.Is(unicode.Cf, r) && r != '\u200d')
	})
}

// The years a sale's window may fall in: a year-1 or year-9999 time is a mistake (or
// an attack on the arithmetic of windows), not a sale.
const (
	minYear = 2000
	maxYear = 2200
)

func plausible(t time.Time) bool { y := t.UTC().Year(); return y >= minYear && y < maxYear }
