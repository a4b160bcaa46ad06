// Package domaintest checks adapters against the contracts of the ports in
// backend/domain (ports.go): TestCatalog, TestOrderStore, TestStockLedger and TestCache
// run the same behaviour tables against whatever implementation they are given. The
// real adapters (backend/mysql, backend/redis) and the in-memory ones (backend/inmem)
// both run them, so an in-memory adapter that behaves differently from the real one
// fails a test, and a fast test of the sale rules on the in-memory adapters says
// something about production.
//
// Where an adapter's behaviour goes beyond what the port's doc comment says (an edge
// the doc leaves open), the tables pin what the real adapter does, and say so.
//
// It imports only the domain and the standard library.
package domaintest

import (
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// Clock is the time as the adapter under test sees it.
type Clock struct {
	// Now reads the adapter's clock.
	Now func() time.Time
	// Sleep lets d pass on the adapter's clock: the real adapters wait, the in-memory
	// ones move their clock on.
	Sleep func(d time.Duration)
}

// RealClock is the wall clock, for the real adapters.
var RealClock = Clock{Now: time.Now, Sleep: time.Sleep}

// lastID hands out activity and item ids for the ledger and cache tests, starting at a
// random point so runs against a shared Redis never meet each other's keys.
var lastID atomic.Int64

func init() { lastID.Store(1<<41 + rand.Int64N(1<<40)) }

func nextID() int64 { return lastID.Add(1) }

// wantCode fails unless err carries code ("" for no error).
func wantCode(tb testing.TB, what string, err error, code string) {
	tb.Helper()
	if got := domain.ErrorCode(err); got != code {
		tb.Fatalf("%s: got %q (%v), want %q", what, got, err, code)
	}
}

// must fails on err.
func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// transient reports whether err is a failure the contract lets an adapter give at any
// time (not a refusal): the caller may retry.
func transient(err error) bool {
	var de *domain.Error
	return err != nil && !errors.As(err, &de) && !errors.Is(err, domain.ErrNotLoaded)
}
