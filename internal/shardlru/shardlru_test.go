package shardlru

import (
	"strconv"
	"sync"
	"testing"
)

// TestBounded: however many keys come, at most size are held, and the most
// recent ones are found.
func TestBounded(t *testing.T) {
	for _, size := range []int{1, 15, 100, 10_000} {
		c := New[string, int](size)
		for i := range 5 * size {
			c.Add(strconv.Itoa(i), i)
		}
		if n := c.Len(); n > size || n == 0 {
			t.Errorf("size %d: holds %d after %d keys", size, n, 5*size)
		}
		if v, ok := c.Get(strconv.Itoa(5*size - 1)); !ok || v != 5*size-1 {
			t.Errorf("size %d: the last key added is %d, %v", size, v, ok)
		}
		c.Purge()
		if c.Len() != 0 {
			t.Errorf("size %d: %d left after Purge", size, c.Len())
		}
	}
}

// TestContainsOrAddOneWinner: callers racing to add a key all get the one value kept.
func TestContainsOrAddOneWinner(t *testing.T) {
	c := New[string, *int](1000)
	var wg sync.WaitGroup
	got := make([]*int, 16)
	for i := range got {
		wg.Go(func() { got[i] = c.ContainsOrAdd("k", new(int)) })
	}
	wg.Wait()
	for _, p := range got {
		if p != got[0] {
			t.Fatal("two callers got different values for one key")
		}
	}
	if v, _ := c.Get("k"); v != got[0] {
		t.Fatal("the value kept is not the one returned")
	}
	c.Remove("k")
	if _, ok := c.Get("k"); ok {
		t.Fatal("removed key still found")
	}
}
