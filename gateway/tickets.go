package gateway

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/gateway/api"
)

// endedTickets keeps the results of tickets that ended (created, failed: any
// status but pending, and an ended ticket never changes), so a shopper's
// repeated polls of an ended ticket are answered at the edge, not by the
// backend. An entry is keyed by the ticket and its owner: the backend answered
// this user, so only this user is answered from it; anyone else's poll of the
// ticket goes to the backend, which refuses it as before. A pending result is
// never kept. Entries live ticketTTL, well within the backend's own keeping
// of results in Redis (backend.ticket_ttl, 24 h by default); the backend
// answers from MySQL after that. Tickets come from
// clients, but only those the backend answered for their owner are kept, in
// an LRU as the catalog's (edge.go).
type endedTickets struct {
	lru *lru.Cache[ticketKey, fresh[api.Ticket]]
}

type ticketKey struct {
	user   int64
	ticket string
}

// Sizes of the ended tickets' cache: how many, and for how long.
const (
	ticketEntries = 100_000
	ticketTTL     = time.Minute
)

func newEndedTickets(size int) *endedTickets {
	c, err := lru.New[ticketKey, fresh[api.Ticket]](size)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &endedTickets{lru: c}
}

// get returns the result of user's ticket if it ended and is kept.
func (e *endedTickets) get(user int64, ticket string) (api.Ticket, bool) {
	f, ok := e.lru.Get(ticketKey{user, ticket})
	if !ok || !time.Now().Before(f.expires) {
		return api.Ticket{}, false
	}
	return f.v, true
}

// put keeps user's ticket's result if it ended.
func (e *endedTickets) put(user int64, ticket string, t api.Ticket) {
	if t.Status == string(domain.TicketPending) {
		return
	}
	e.lru.Add(ticketKey{user, ticket}, fresh[api.Ticket]{v: t, expires: time.Now().Add(ticketTTL)})
}
