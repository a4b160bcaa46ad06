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

	t.Run("Get, Set and Del", func(t *testing.T) {
		c := newFn(t)
		k1, k2, k3 := cacheKey("a"), cacheKey("b"), cacheKey("c")
		c.want(t, "a miss", k1, nil)
		must(t, c.Set(ctx, k1, []byte("one"), time.Minute))
		must(t, c.Set(ctx, k2, []byte("two"), time.Minute))
		must(t, c.Set(ctx, k3, []byte{}, time.Minute))
		c.want(t, "written", k1, []byte("one"))
		c.want(t, "an empty value is a value", k3, []byte{})
		must(t, c.Set(ctx, k1, []byte("uno"), time.Minute))
		c.want(t, "overwritten", k1, []byte("uno"))
		must(t, c.Del(ctx, k1, k2, cacheKey("never set")))
		c.want(t, "deleted", k1, nil)
		c.want(t, "deleted too", k2, nil)
		c.want(t, "left", k3, []byte{})
		must(t, c.Del(ctx))
	})

	t.Run("values expire", func(t *testing.T) {
		c := newFn(t)
		short, long, forever := cacheKey("short"), cacheKey("long"), cacheKey("forever")
		must(t, c.Set(ctx, short, []byte("s"), 150*time.Millisecond))
		must(t, c.Set(ctx, long, []byte("l"), time.Minute))
		// Pinned (the doc is silent): no TTL keeps a value for good.
		must(t, c.Set(ctx, forever, []byte("f"), 0))
		c.want(t, "within the TTL", short, []byte("s"))
		c.Sleep(250 * time.Millisecond)
		c.want(t, "past the TTL", short, nil)
		c.want(t, "a longer TTL", long, []byte("l"))
		c.want(t, "no TTL", forever, []byte("f"))
		must(t, c.Set(ctx, long, []byte("l2"), 150*time.Millisecond))
		c.Sleep(250 * time.Millisecond)
		c.want(t, "a new TTL replaces the old", long, nil)
	})

	t.Run("values are copies", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("k")
		v := []byte("value")
		must(t, c.Set(ctx, k, v, time.Minute))
		v[0] = 'X'
		got, _, err := c.Get(ctx, k)
		must(t, err)
		got[1] = 'Y'
		c.want(t, "after changing what was written and read", k, []byte("value"))
	})

	t.Run("Lock is held by one at a time", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("k")
		tok, ok := c.lock(t, k, time.Minute)
		if !ok {
			t.Fatal("first Lock: got false")
		}
		c.want(t, "a lock is not a value", k, nil)
		if _, ok := c.lock(t, k, time.Minute); ok {
			t.Fatal("second Lock: got the lock while it is held")
		}
		if _, ok := c.lock(t, cacheKey("other"), time.Minute); !ok {
			t.Fatal("another key's Lock: got false")
		}
		must(t, c.Unlock(ctx, k, "not the token"))
		if _, ok := c.lock(t, k, time.Minute); ok {
			t.Fatal("Lock after an Unlock with a wrong token: got the lock")
		}
		must(t, c.Unlock(ctx, k, tok))
		tok2, ok := c.lock(t, k, time.Minute)
		if !ok || tok2 == tok {
			t.Fatalf("Lock after Unlock: got %q, %v; want a new token", tok2, ok)
		}
		must(t, c.Unlock(ctx, k, tok)) // the old token frees nothing now
		if _, ok := c.lock(t, k, time.Minute); ok {
			t.Fatal("Lock after an Unlock with an old token: got the lock")
		}
		must(t, c.Unlock(ctx, cacheKey("never locked"), "x"))
	})

	t.Run("a lock expires", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("k")
		if _, ok := c.lock(t, k, 150*time.Millisecond); !ok {
			t.Fatal("Lock: got false")
		}
		c.Sleep(250 * time.Millisecond)
		if _, ok := c.lock(t, k, time.Minute); !ok {
			t.Fatal("Lock after the first expired: got false")
		}
	})

	t.Run("SetLocked writes while the token holds the lock", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("k")
		tok, _ := c.lock(t, k, time.Minute)
		wrote, err := c.SetLocked(ctx, k, tok, []byte("v1"), time.Minute)
		if err != nil || !wrote {
			t.Fatalf("got %v, %v; want written", wrote, err)
		}
		c.want(t, "written", k, []byte("v1"))
		if wrote, err = c.SetLocked(ctx, k, tok, []byte("v2"), time.Minute); err != nil || wrote {
			t.Fatalf("again: got %v, %v; want nothing written (the lock was freed)", wrote, err)
		}
		c.want(t, "not written again", k, []byte("v1"))
		if _, ok := c.lock(t, k, time.Minute); !ok {
			t.Fatal("Lock after SetLocked: got false, want the lock freed")
		}
		k2 := cacheKey("k2")
		tok, _ = c.lock(t, k2, time.Minute)
		wrote, err = c.SetLocked(ctx, k2, tok, []byte("v"), 150*time.Millisecond)
		if err != nil || !wrote {
			t.Fatalf("with a TTL: got %v, %v", wrote, err)
		}
		c.Sleep(250 * time.Millisecond)
		c.want(t, "past its TTL", k2, nil)
	})

	t.Run("SetLocked with a lock lost writes nothing", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("k")
		old, _ := c.lock(t, k, 150*time.Millisecond)
		c.Sleep(250 * time.Millisecond) // the rebuild took too long
		cur, ok := c.lock(t, k, time.Minute)
		if !ok {
			t.Fatal("second Lock: got false")
		}
		if wrote, err := c.SetLocked(ctx, k, old, []byte("stale"), time.Minute); err != nil || wrote {
			t.Fatalf("stale holder: got %v, %v; want nothing written", wrote, err)
		}
		c.want(t, "the stale holder's write", k, nil)
		if wrote, err := c.SetLocked(ctx, k, cur, []byte("fresh"), time.Minute); err != nil || !wrote {
			t.Fatalf("current holder: got %v, %v; want written", wrote, err)
		}
		c.want(t, "the current holder's write", k, []byte("fresh"))
		if wrote, err := c.SetLocked(ctx, cacheKey("unlocked"), "x", []byte("v"), time.Minute); err != nil || wrote {
			t.Fatalf("no lock at all: got %v, %v; want nothing written", wrote, err)
		}
	})

	t.Run("TTL edges", func(t *testing.T) {
		// Pinned (the doc is silent), as go-redis sends TTLs: a lock taken for no
		// time is held for good; a negative lock TTL is refused; SetLocked refuses a
		// TTL under a millisecond (Set takes it as none), keeping the lock.
		c := newFn(t)
		k := cacheKey("k")
		tok, ok := c.lock(t, k, 0)
		if !ok {
			t.Fatal("Lock for no time: got false")
		}
		c.Sleep(50 * time.Millisecond)
		if _, ok := c.lock(t, k, time.Minute); ok {
			t.Fatal("a lock for no time expired")
		}
		if _, _, err := c.Lock(ctx, cacheKey("neg"), -5*time.Millisecond); err == nil {
			t.Fatal("Lock with a negative TTL: got no error")
		}
		if wrote, err := c.SetLocked(ctx, k, tok, []byte("v"), 0); err == nil || wrote {
			t.Fatalf("SetLocked with no TTL: got %v, %v; want an error", wrote, err)
		}
		c.want(t, "not written", k, nil)
		if wrote, err := c.SetLocked(ctx, k, tok, []byte("v"), time.Minute); err != nil || !wrote {
			t.Fatalf("SetLocked after: got %v, %v; want the lock still held", wrote, err)
		}
		c.want(t, "written", k, []byte("v"))
	})

	t.Run("hammer: one lock holder", func(t *testing.T) {
		c := newFn(t)
		k := cacheKey("k")
		codes := hammer(40, func(int) string {
			_, ok, err := c.Lock(ctx, k, time.Minute)
			if err != nil {
				return domain.ErrorCode(err)
			}
			return fmt.Sprint(ok)
		})
		if codes["true"] != 1 || codes["false"] != 39 {
			t.Fatalf("got %v, want one holder", codes)
		}
	})
}
