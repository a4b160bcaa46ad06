package api

// PlaceOrderRequest is the body of POST /api/v1/orders.
type PlaceOrderRequest struct {
	ActivityID int64 `json:"activity_id"`
	ItemID     int64 `json:"item_id"`
	Quantity   int   `json:"quantity"`
}

// PlaceOrderResponse answers an order taken: 201 with Status "created" and
// the OrderID (sync), or 202 with Status "pending" and a Ticket to poll
// (async and bucket).
type PlaceOrderResponse struct {
	OrderID string `json:"order_id,omitempty"`
	Status  string `json:"status"`
	Ticket  string `json:"ticket"`
}

// Ticket is the answer of GET /api/v1/orders/tickets/{ticket}: Status is
// "pending", "created" (with OrderID) or "failed" (with Reason).
type Ticket struct {
	OrderID string `json:"order_id,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Status  string `json:"status"`
}

// Order is an order as its shopper sees it. CreatedAt is an RFC 3339 time.
// Status is created, paid, cancelled, expired or deleted. UserID is set in the
// operators' answers only.
type Order struct {
	ID          string `json:"id"`
	UserID      int64  `json:"user_id,omitempty"`
	Ticket      string `json:"ticket"`
	ActivityID  int64  `json:"activity_id"`
	ItemID      int64  `json:"item_id"`
	Quantity    int32  `json:"quantity"`
	AmountCents int64  `json:"amount_cents"`
	Status      string `json:"status"`
	CreatedAt   string `json:"created_at"`
}

// OrderList is the answer of GET /api/v1/orders (the caller's orders) and GET
// /admin/v1/activities/{id}/orders: a page. Next is the cursor of the next page
// (the after parameter), empty on the last.
type OrderList struct {
	Orders []Order `json:"orders"`
	Next   string  `json:"next,omitempty"`
}
