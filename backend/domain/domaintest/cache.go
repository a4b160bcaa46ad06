package domaintest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
)

// Cache is a cache under test with its clock.
type Cache struct {
	domain.Cache
	Clock
}

// cacheKey is a fresh key. It carries a hash tag, as the catalog's keys do: the Redis
// adapter writes a key and its lock in one script, which a Redis Cluster runs only on
// keys of one slot.
func cacheKey(name string) string { return fmt.Sprintf("dt:{%d}:%s", nextID(), name) }

func (c Cache) want(tb testing.TB, what, key string, want []byte) {
	tb.Helper()
	got, ok, err := c.Get(context.Background(), key)
	must(tb, err)
	if ok != (want != nil) || string(got) != string(want) {
		tb.Fatalf("%s: got %q, %v; want %q, %v", what, got, ok, want, want != nil)
	}
}

func (c Cache) lock(tb testing.TB, key string, ttl time.Duration) (string, bool) {
	tb.Helper()
	token, ok, err := c.Lock(context.Background(), key, ttl)
	must(tb, err)
	if ok && token == "" {
		tb.Fatal("Lock: got the lock with an empty token")
	}
	return token, ok
}

// TestCache checks a domain.Cache against its contract. newFn returns the cache to
// test.
func TestCache(t *testing.T, newFn func(t *testing.T) Cache) {
	ctx := context.Background()
	put := func(tb testing.TB, c Cache, key string, v int64, val string, want bool) {
		tb.Helper()
		ok, err := c.Put(ctx, key, v, []byte(val), time.Minute)
		must(tb, err)
		if ok != want {
			tb.Fatalf("put %s v%d: got %v, want %v", key, v, ok, want)
		}
	}

	t.Run("Get, Put and Del", func(t *testing.T) {
		c := newFn(t)
		k1, k2 := cacheKey("a"), cacheKey("b")
		c.want(t, "a miss", k1, nil)
		put(t, c, k1, 1, "one", true)
		put(t, c, k2, 0, "", true)
		c.want(t, "a hit", k1, []byte("one"))
		c.want(t, "an empty value", k2, []byte(""))
		must(t, c.Del(ctx, k1, k2, cacheKey("never")))
		c.want(t, "after Del", k1, nil)
		c.want(t, "after Del", k2, nil)
	})

	t.Run("a write never replaces a newer version", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("v")
		put(t, c, k, 3, "three", true)
		put(t, c, k, 2, "two", false)
		c.want(t, "after an older put", k, []byte("three"))
		put(t, c, k, 3, "three again", true)
		put(t, c, k, 5, "five", true)
		c.want(t, "after a newer put", k, []byte("five"))
		// A rebuild that read an older version while holding the lock writes nothing.
		token, ok := c.lock(t, k, time.Minute)
		if !ok {
			t.Fatal("lock: not taken")
		}
		if wrote, err := c.PutLocked(ctx, k, token, 4, []byte("four"), time.Minute); err != nil || wrote {
			t.Fatalf("an older version under the lock: got %v, %v; want not written", wrote, err)
		}
		c.want(t, "after it", k, []byte("five"))
		if _, ok := c.lock(t, k, time.Minute); !ok {
			t.Fatal("the refused PutLocked did not free the lock")
		}
	})

	t.Run("values expire", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("x")
		if _, err := c.Put(ctx, k, 1, []byte("v"), 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		c.want(t, "within the TTL", k, []byte("v"))
		c.Sleep(400 * time.Millisecond)
		c.want(t, "past the TTL", k, nil)
		put(t, c, k, 0, "older after expiry", true)
	})

	t.Run("values are copies", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("copy")
		val := []byte("abc")
		if _, err := c.Put(ctx, k, 1, val, time.Minute); err != nil {
			t.Fatal(err)
		}
		val[0] = 'X'
		got, _, _ := c.Get(ctx, k)
		got[1] = 'Y'
		c.want(t, "after changing what was put and read", k, []byte("abc"))
	})

	t.Run("Lock is held by one at a time", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("l")
		token, ok := c.lock(t, k, time.Minute)
		if !ok {
			t.Fatal("first lock: not taken")
		}
		if other, ok := c.lock(t, k, time.Minute); ok || other != "" {
			t.Fatalf("second lock: got %q, %v; want refused with no token", other, ok)
		}
		must(t, c.Unlock(ctx, k, "not-the-token"))
		if _, ok := c.lock(t, k, time.Minute); ok {
			t.Fatal("a wrong token freed the lock")
		}
		must(t, c.Unlock(ctx, k, token))
		if _, ok := c.lock(t, k, time.Minute); !ok {
			t.Fatal("after Unlock: not taken")
		}
		put(t, c, k, 1, "value", true) // the lock is not the value
		c.want(t, "the value beside its lock", k, []byte("value"))
	})

	t.Run("a lock expires", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("le")
		if _, ok := c.lock(t, k, 300*time.Millisecond); !ok {
			t.Fatal("lock: not taken")
		}
		c.Sleep(400 * time.Millisecond)
		if _, ok := c.lock(t, k, time.Minute); !ok {
			t.Fatal("after its TTL: not taken")
		}
	})

	t.Run("PutLocked writes while the token holds the lock, and frees it", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("pl")
		token, _ := c.lock(t, k, time.Minute)
		if wrote, err := c.PutLocked(ctx, k, "wrong", 1, []byte("no"), time.Minute); err != nil || wrote {
			t.Fatalf("a wrong token: got %v, %v", wrote, err)
		}
		if wrote, err := c.PutLocked(ctx, k, token, 1, []byte("yes"), time.Minute); err != nil || !wrote {
			t.Fatalf("the token: got %v, %v", wrote, err)
		}
		c.want(t, "written", k, []byte("yes"))
		if _, ok := c.lock(t, k, time.Minute); !ok {
			t.Fatal("PutLocked did not free the lock")
		}
	})

	t.Run("PutLocked with a lock lost writes nothing", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("lost")
		token, _ := c.lock(t, k, 300*time.Millisecond)
		c.Sleep(400 * time.Millisecond)
		other, ok := c.lock(t, k, time.Minute)
		if !ok {
			t.Fatal("the lock after expiry: not taken")
		}
		if wrote, err := c.PutLocked(ctx, k, token, 1, []byte("late"), time.Minute); err != nil || wrote {
			t.Fatalf("the first holder, late: got %v, %v; want not written", wrote, err)
		}
		c.want(t, "after the late write", k, nil)
		if wrote, err := c.PutLocked(ctx, k, other, 1, []byte("new holder"), time.Minute); err != nil || !wrote {
			t.Fatalf("the new holder: got %v, %v", wrote, err)
		}
	})

	t.Run("hammer: one lock holder", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("h")
		codes := hammer(40, func(int) string {
			if _, ok, err := c.Lock(ctx, k, time.Minute); err != nil {
				return err.Error()
			} else if ok {
				return "held"
			}
			return "refused"
		})
		if codes["held"] != 1 || codes["refused"] != 39 {
			t.Fatalf("got %v, want one holder", codes)
		}
	})
}
