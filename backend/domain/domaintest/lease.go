package domaintest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// TestLeases checks a domain.Leases: one holder at a time, renewals keep the token, a
// lease that expires or is given up goes to the next asker under a higher token.
// wait lets the lease's time pass (the real clock, or a test clock moved on).
func TestLeases(t *testing.T, l domain.Leases, wait func(time.Duration)) {
	ctx := context.Background()
	name := fmt.Sprintf("dt-lease-%d", nextID())
	const ttl = 300 * time.Millisecond
	hold := func(holder string) (int64, bool) {
		t.Helper()
		tok, ok, err := l.Hold(ctx, name, holder, ttl)
		if err != nil {
			t.Fatal(err)
		}
		if ok != (tok > 0) {
			t.Fatalf("%s: got token %d with held %v", holder, tok, ok)
		}
		return tok, ok
	}
	a1, ok := hold("a")
	if !ok {
		t.Fatal("a: a free lease was not taken")
	}
	if _, ok := hold("b"); ok {
		t.Fatal("b: took a lease a holds")
	}
	if tok, ok := hold("a"); !ok || tok != a1 {
		t.Fatalf("a renews: got %d, %v; want token %d kept", tok, ok, a1)
	}
	wait(ttl + 100*time.Millisecond)
	b1, ok := hold("b")
	if !ok || b1 <= a1 {
		t.Fatalf("b after a's lease expired: got %d, %v; want a token above %d", b1, ok, a1)
	}
	if _, ok := hold("a"); ok {
		t.Fatal("a: took back a lease b holds")
	}
	must(t, l.Release(ctx, name, "a")) // not a's: nothing happens
	if _, ok := hold("a"); ok {
		t.Fatal("a's release gave up b's lease")
	}
	must(t, l.Release(ctx, name, "b"))
	a2, ok := hold("a")
	if !ok || a2 <= b1 {
		t.Fatalf("a after b gave up: got %d, %v; want a token above %d", a2, ok, b1)
	}
	must(t, l.Release(ctx, name, "a"))
}
