package domain

import (
	"context"
	"time"
)

// The waiting room's line (docs/WAITING_ROOM.md): per item, the places of the shoppers
// waiting, in arrival order, and the admissions in flight to the backend. It lives
// beside the item's stock in the ledger's store, so one atomic step reads the stock
// left, bounds the admissions in flight by k x that stock, and gives places. The
// gateways share it: the bound and the order hold across the fleet.

// Line is the waiting room's shared state (backend/redis.Line implements it).
type Line interface {
	// Enter is one shopper's arrival or poll: it admits the shopper when their place
	// is within the capacity left (a shopper of an empty line is admitted at once),
	// and otherwise gives or keeps their place.
	Enter(ctx context.Context, e LineEntry) (LineDecision, error)
	// Leave ends an admission once the backend answered: its slot in flight frees up.
	// back puts the shopper at their place again (seq), for an answer that took nothing
	// and may be retried (the backend was unavailable).
	Leave(ctx context.Context, activityID, itemID, userID, seq int64, back bool) error
	// Stats reads an item's line.
	Stats(ctx context.Context, activityID, itemID int64, buckets int, factor float64) (LineStats, error)
}

// LineEntry is one shopper at an item's line.
type LineEntry struct {
	ActivityID, ItemID, UserID int64
	Buckets                    int     // the item's bucket count: its counters are the stock left
	Factor                     float64 // k: admissions in flight per unit left
	// Seq and Issued come from the shopper's queue token (0 and zero: none): a
	// shopper the line does not hold (the store lost it) gets that place back while
	// the token is fresh, unless the place was used for an admission.
	Seq    int64
	Issued time.Time
	// PlaceTTL: a place not asked about for this long lapses; Lease: an admission not
	// left within this long is dropped (its gateway died).
	PlaceTTL time.Duration
	Lease    time.Duration
	// Quantity is the units the shopper orders (0: not known): a shopper it would take
	// past the per-user limit is answered LineLimit.
	Quantity int
}

// LineOutcome is what Enter decided.
type LineOutcome int

const (
	// LineAdmitted: go on to the backend, then Leave.
	LineAdmitted LineOutcome = iota
	// LineQueued: the shopper has a place (Position) and should ask again.
	LineQueued
	// LineSoldOut: no unit is left; a shopper in line keeps the place for PlaceTTL
	// should units come back.
	LineSoldOut
	// LineBusy: an admission of the same shopper for the item is in flight.
	LineBusy
	// LineOpen: the store holds no sale state for the item (not loaded, or not on
	// sale): go on without a bound or a Leave; the backend restores or refuses it.
	LineOpen
	// LineLimit: the shopper holds so many units that the order would pass the
	// per-user limit; no place is given, and one held is given up.
	LineLimit
)

func (o LineOutcome) String() string {
	switch o {
	case LineAdmitted:
		return "admitted"
	case LineQueued:
		return "queued"
	case LineSoldOut:
		return "sold_out"
	case LineBusy:
		return "busy"
	case LineOpen:
		return "open"
	case LineLimit:
		return "limit_exceeded"
	}
	return "unknown"
}

// LineDecision is Enter's answer and the line as it saw it.
type LineDecision struct {
	Outcome  LineOutcome
	Seq      int64 // the shopper's place: its arrival number (0: none)
	Position int64 // queued: 1 is the head
	Length   int64 // places in line after the call
	InFlight int64 // admissions in flight after the call
	// Capacity is ceil(k x Remaining), the most admissions in flight.
	Capacity  int64
	Remaining int64
	Waited    time.Duration // admitted: time since the shopper took the place (0: at once)
	Rate      float64       // admissions a second, a decaying average
	Now       time.Time     // the store's clock
}

// LineStats are an item's line as operators see it.
type LineStats struct {
	Loaded    bool  // the store holds the item's sale state
	Length    int64 // places in line
	InFlight  int64 // admissions in flight
	Capacity  int64 // ceil(k x Remaining)
	Remaining int64
	// Places given, shoppers admitted (at once or from the line), admitted from the
	// line, queued shoppers told sold out, places that lapsed: since the sale began.
	Places, Admitted, AdmittedFromLine, SoldOutTold, Lapsed int64
	Rate                                                    float64       // admissions a second, a decaying average
	AvgWait                                                 time.Duration // of those admitted from the line
	HeadWait                                                time.Duration // how long the head of the line has waited
}
