package tally

import (
	"sync"
	"testing"
)

func TestCounts(t *testing.T) {
	var c Counts
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Add(int64(g%2+1), "sold_out", 1)
			}
		}()
	}
	wg.Wait()
	d := c.Drain()
	if d[1]["sold_out"] != 400 || d[2]["sold_out"] != 400 {
		t.Fatalf("got %v, want 400 of each", d)
	}
	if again := c.Drain(); len(again) != 0 {
		t.Fatalf("a second drain: got %v, want nothing", again)
	}
	c.Undrain(d)
	if d2 := c.Drain(); d2[1]["sold_out"] != 400 {
		t.Fatalf("after undrain: got %v", d2)
	}
	for a := range int64(maxActivities + 50) {
		c.Add(a+1, "x", 1)
	}
	d = c.Drain()
	if len(d) > maxActivities+1 || d[0]["x"] != 50 {
		t.Fatalf("bounded: got %d activities, %d counted as 0; want at most %d and 50", len(d), d[0]["x"], maxActivities+1)
	}
}
