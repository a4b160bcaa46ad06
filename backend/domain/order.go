package domain

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// OrderStatus is an order's state.
type OrderStatus string

const (
	OrderCreated   OrderStatus = "created" // written, awaiting payment
	OrderPaid      OrderStatus = "paid"
	OrderCancelled OrderStatus = "cancelled"
	OrderExpired   OrderStatus = "expired" // left unpaid past the timeout
	// OrderDeleted is a cancelled or expired order its shopper deleted: gone from the
	// shopper's list, kept for operators. Nothing of the sale changes (its units went
	// back when it ended).
	OrderDeleted OrderStatus = "deleted"
	// OrderVoid is not an order: it marks a ticket decided as not written (its units
	// went back), so a late write of the same ticket (a send that looked failed, a
	// redelivered or replayed message) meets the unique ticket and writes nothing.
	// Shoppers never see it.
	OrderVoid OrderStatus = "void"
)

// ShopperStatuses are the states a shopper's list shows: every one but deleted.
var ShopperStatuses = []OrderStatus{OrderCreated, OrderPaid, OrderCancelled, OrderExpired}

// Valid reports whether s is a state an order can be in.
func (s OrderStatus) Valid() bool {
	switch s {
	case OrderCreated, OrderPaid, OrderCancelled, OrderExpired, OrderDeleted:
		return true
	}
	return false
}

// Live reports whether an order in this state holds its units (created or paid).
func (s OrderStatus) Live() bool { return s == OrderCreated || s == OrderPaid }

// Order actions a shopper or the expiry takes on an order.
const (
	ActPay    = "pay"
	ActCancel = "cancel" // also expiry
	ActDelete = "delete"
)

// Transition says what act does to an order in state from: to is the state it ends
// in, changed whether it moves. Repeating an act on an order it already moved is not
// an error (to is then from, changed false), so a retry is safe. An act the state
// does not allow is refused with conflict, whose message says the order's state and
// what it would take:
//
//	created   -> paid (pay), cancelled or expired (cancel, expiry)
//	paid      -> nothing: cancel and delete are refused
//	cancelled, expired -> deleted (delete); pay is refused, cancel leaves them
//	deleted   -> nothing: pay is refused, cancel and delete leave it
func Transition(id int64, from OrderStatus, act string) (to OrderStatus, changed bool, err error) {
	refuse := func(why string) (OrderStatus, bool, error) {
		return from, false, Errorf(EConflict, "order %d is %s: %s", id, from, why)
	}
	switch act {
	case ActPay:
		switch from {
		case OrderCreated:
			return OrderPaid, true, nil
		case OrderPaid:
			return from, false, nil
		}
		return refuse("only an unpaid order can be paid")
	case ActCancel:
		switch from {
		case OrderCreated:
			return OrderCancelled, true, nil
		case OrderPaid:
			return refuse("a paid order cannot be cancelled")
		}
		return from, false, nil // ended before: its units went back then
	case ActDelete:
		switch from {
		case OrderCancelled, OrderExpired:
			return OrderDeleted, true, nil
		case OrderDeleted:
			return from, false, nil
		case OrderCreated:
			return refuse("cancel it first; only a cancelled or expired order can be deleted")
		}
		return refuse("only a cancelled or expired order can be deleted")
	}
	return from, false, Errorf(EBadRequest, "unknown order action %q", act)
}

// Order is a committed purchase.
type Order struct {
	ID          int64
	Ticket      string // unique: the idempotency key of the write
	UserID      int64
	ActivityID  int64
	ItemID      int64
	Bucket      int    // the first bucket its units came from
	Parts       []Part // where its units came from, when more than one bucket
	Quantity    int
	AmountCents int64
	Status      OrderStatus
	IdemKey     string // the shopper's idempotency key ("" when none)
	CreatedAt   time.Time
}

// Units is where the order's units came from: its parts, or all from Bucket.
func (o *Order) Units() []Part { return units(o.Parts, o.Bucket, o.Quantity) }

// IDString is the order id as the API shows it.
func (o *Order) IDString() string { return strconv.FormatInt(o.ID, 10) }

// TicketStatus is where an admitted request stands.
type TicketStatus string

const (
	TicketPending TicketStatus = "pending"
	TicketCreated TicketStatus = "created"
	TicketFailed  TicketStatus = "failed"
)

// ReasonReplayed is the reason of a ticket settled created with the order another
// ticket of the same idempotency key wrote (the ledger had lost the key): its own
// units go back, and the shopper sees the first order.
const ReasonReplayed = "replayed"

// Ticket is the result record of an admitted request.
type Ticket struct {
	ID      string
	UserID  int64
	Status  TicketStatus
	OrderID int64
	Reason  string
	// Wrote is set on a created ticket whose order the settling caller wrote (or found
	// written): when the ledger holds the item but neither the ticket in flight nor a
	// result of it, and the request was admitted (Wrote.AdmittedAt) before the item's
	// last load, it lost the ticket with its state and loaded the item from the order
	// store since. Unless that load's view held the order (SaleState.Recent, or created
	// before SaleState.RecentSince), the load counted its units as unsold: the settle
	// takes them (and the buyer's units and key), so the ledger does not sell them twice.
	Wrote *OrderRequest
	// WrittenAt is the order's CreatedAt (zero: not known; nothing is taken).
	WrittenAt time.Time
}

// Replayed reports whether o, the row VoidTicket or ReplayOf gave for ticket, is another
// ticket's order of the same idempotency key that ticket replayed (OrderStore.ReplayOf):
// the ticket ends created with reason replayed, and gives back what it held.
func (o Order) Replayed(ticket string) bool { return o.Ticket != "" && o.Ticket != ticket }

// OrderRequest is an admitted request: stock is pre-deducted in Redis and what remains
// is to write it to MySQL. It is what travels through the queue.
type OrderRequest struct {
	Ticket      string            `json:"ticket"`
	UserID      int64             `json:"user_id"`
	ActivityID  int64             `json:"activity_id"`
	ItemID      int64             `json:"item_id"`
	Bucket      int               `json:"bucket"`          // the first bucket of Parts
	Parts       []Part            `json:"parts,omitempty"` // set when the units came from more than one bucket
	Quantity    int               `json:"quantity"`
	AmountCents int64             `json:"amount_cents"`
	IdemKey     string            `json:"idem_key,omitempty"` // the shopper's idempotency key
	AdmittedAt  int64             `json:"admitted_ms"`
	Trace       map[string]string `json:"trace,omitempty"`
}

// Units is where the request's units came from: its parts, or all from Bucket.
func (r *OrderRequest) Units() []Part { return units(r.Parts, r.Bucket, r.Quantity) }

// Validate checks a request decoded from the queue.
func (r *OrderRequest) Validate() error {
	if r.Ticket == "" || r.UserID <= 0 || r.ActivityID <= 0 || r.ItemID <= 0 || r.Quantity <= 0 || r.Bucket < 0 || len(r.IdemKey) > MaxIdemKey {
		return Errorf(EBadRequest, "malformed order request %+v", *r)
	}
	if len(r.Parts) > 0 {
		sum := 0
		for _, p := range r.Parts {
			if p.Bucket < 0 || p.Bucket >= MaxBuckets || p.Quantity <= 0 {
				return Errorf(EBadRequest, "malformed order request %+v", *r)
			}
			sum += p.Quantity
		}
		if sum != r.Quantity || r.Parts[0].Bucket != r.Bucket {
			return Errorf(EBadRequest, "malformed order request %+v: parts do not add up", *r)
		}
	}
	return nil
}

// MaxIdemKey is the longest idempotency key, in bytes.
const MaxIdemKey = 128

// Part is the units of an order taken from one bucket.
type Part struct {
	Bucket   int `json:"b"`
	Quantity int `json:"q"`
}

func units(parts []Part, bucket, qty int) []Part {
	if len(parts) > 0 {
		return parts
	}
	return []Part{{Bucket: bucket, Quantity: qty}}
}

// FormatParts writes parts as "bucket:quantity,...", as the ledger and the order store
// keep them.
func FormatParts(parts []Part) string {
	b := make([]byte, 0, 8*len(parts))
	for i, p := range parts {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(p.Bucket), 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(p.Quantity), 10)
	}
	return string(b)
}

// ParseParts reads FormatParts's form.
func ParseParts(s string) ([]Part, error) {
	var out []Part
	for _, f := range strings.Split(s, ",") {
		b, q, ok := strings.Cut(f, ":")
		bn, err1 := strconv.Atoi(b)
		qn, err2 := strconv.Atoi(q)
		if !ok || err1 != nil || err2 != nil || bn < 0 || qn <= 0 {
			return nil, fmt.Errorf("malformed parts %q", s)
		}
		out = append(out, Part{Bucket: bn, Quantity: qn})
	}
	return out, nil
}
