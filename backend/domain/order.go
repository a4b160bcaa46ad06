package domain

import (
	"strconv"
	"time"
)

// OrderStatus is an order's state.
type OrderStatus string

const (
	OrderCreated   OrderStatus = "created" // written, awaiting payment
	OrderPaid      OrderStatus = "paid"
	OrderCancelled OrderStatus = "cancelled"
	OrderExpired   OrderStatus = "expired" // left unpaid past the timeout
)

// Order is a committed purchase.
type Order struct {
	ID          int64
	Ticket      string // unique: the idempotency key of the write
	UserID      int64
	ActivityID  int64
	ItemID      int64
	Bucket      int
	Quantity    int
	AmountCents int64
	Status      OrderStatus
	CreatedAt   time.Time
}

// IDString is the order id as the API shows it.
func (o *Order) IDString() string { return strconv.FormatInt(o.ID, 10) }

// TicketStatus is where an admitted request stands.
type TicketStatus string

const (
	TicketPending TicketStatus = "pending"
	TicketCreated TicketStatus = "created"
	TicketFailed  TicketStatus = "failed"
)

// Ticket is the result record of an admitted request.
type Ticket struct {
	ID      string
	UserID  int64
	Status  TicketStatus
	OrderID int64
	Reason  string
}

// OrderRequest is an admitted request: stock is pre-deducted in Redis and what remains
// is to write it to MySQL. It is what travels through the queue.
type OrderRequest struct {
	Ticket      string            `json:"ticket"`
	UserID      int64             `json:"user_id"`
	ActivityID  int64             `json:"activity_id"`
	ItemID      int64             `json:"item_id"`
	Bucket      int               `json:"bucket"`
	Quantity    int               `json:"quantity"`
	AmountCents int64             `json:"amount_cents"`
	AdmittedAt  int64             `json:"admitted_ms"`
	Trace       map[string]string `json:"trace,omitempty"`
}

// Validate checks a request decoded from the queue.
func (r *OrderRequest) Validate() error {
	if r.Ticket == "" || r.UserID <= 0 || r.ActivityID <= 0 || r.ItemID <= 0 || r.Quantity <= 0 || r.Bucket < 0 {
		return Errorf(EBadRequest, "malformed order request %+v", *r)
	}
	return nil
}
