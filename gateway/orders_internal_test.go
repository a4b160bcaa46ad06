package gateway

import (
	"sync"
	"testing"
)

// TestHeldWaitsBounded: the backend holds at most maxHeldWaits ticket waits for a
// gateway at once, however many shoppers wait; a wait that finds them all held asks
// without waiting, and a held one given back makes room.
func TestHeldWaitsBounded(t *testing.T) {
	var w waiters
	var wg sync.WaitGroup
	var mu sync.Mutex
	held := 0
	for range 4 * maxHeldWaits {
		wg.Go(func() {
			if w.hold() {
				mu.Lock()
				held++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if held != maxHeldWaits {
		t.Fatalf("%d waits at once: got %d held, want %d", 4*maxHeldWaits, held, maxHeldWaits)
	}
	if w.hold() {
		t.Fatal("one more wait was held past the bound")
	}
	w.unhold()
	if !w.hold() {
		t.Fatal("a wait given back made no room")
	}
}
