// Package api is the gateway's HTTP API as Go: the JSON bodies of every
// request and answer (defined here once; the gateway's handlers encode and
// decode these types), and Client, a typed client over net/http for
// operators' tools, the bench and storefronts written in Go.
//
// The package imports only the standard library, so a client pulls in
// nothing of hertz, kitex or the backend. docs/API.md describes the routes.
package api

import (
	"fmt"
	"time"
)

// Error is every answer other than 2xx: the body {"error": code, "message":
// text} with its HTTP status. Code is a short stable word (sold_out,
// rate_limited, not_found, ...); Message is for people.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Message string `json:"message"`
	// RetryAfter is the wait a 429 or 503 asks for (its Retry-After header);
	// zero when it names none.
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("status %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("status %d %s: %s", e.Status, e.Code, e.Message)
}
