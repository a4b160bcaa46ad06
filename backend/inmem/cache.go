package inmem

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/internal/randhex"
)

// keepTTL is go-redis's KeepTTL: a Set with it keeps the key's expiry.
const keepTTL = -1

// Cache is an in-memory byte cache with TTLs and fenced rebuild locks, as
// backend/redis.Cache: a key's lock is the key "<key>:lock" in the same key space,
// holding its holder's token. TTLs follow the clock given with WithClock. It is safe
// for concurrent use.
type Cache struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	val     []byte
	expires time.Time // zero: never
}

var _ domain.Cache = (*Cache)(nil)

// NewCache returns an empty Cache.
func NewCache(opts ...Option) *Cache {
	return &Cache{now: buildOptions(opts).now, entries: map[string]cacheEntry{}}
}

// get returns a live entry; the caller holds mu.
func (c *Cache) get(key string) (cacheEntry, bool) {
	e, ok := c.entries[key]
	if ok && !e.expires.IsZero() && !c.now().Before(e.expires) {
		delete(c.entries, key)
		return cacheEntry{}, false
	}
	return e, ok
}

// expiry is when a key written now with ttl expires, as go-redis sends ttl (PX in
// whole milliseconds, at least one; EX in seconds, which is the same here); zero for
// no expiry. It refuses what Redis refuses: a negative PX.
func (c *Cache) expiry(ttl time.Duration) (time.Time, error) {
	if ttl == 0 {
		return time.Time{}, nil
	}
	ms := ttl.Milliseconds()
	if ttl > 0 && ms == 0 {
		ms = 1
	}
	if ms <= 0 {
		return time.Time{}, fmt.Errorf("invalid expire time in 'set' command")
	}
	return c.now().Add(time.Duration(ms) * time.Millisecond), nil
}

// Get returns the cached value of key; ok is false on a miss.
func (c *Cache) Get(_ context.Context, key string) (val []byte, ok bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.get(key)
	if !ok {
		return nil, false, nil
	}
	return bytes.Clone(e.val), true, nil
}

// Set writes key unconditionally; a ttl of zero or below keeps it for good (go-redis's
// KeepTTL, -1, keeps the expiry the key had).
func (c *Cache) Set(_ context.Context, key string, val []byte, ttl time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := cacheEntry{val: bytes.Clone(val)}
	switch {
	case ttl > 0:
		e.expires, _ = c.expiry(ttl)
	case ttl == keepTTL:
		old, _ := c.get(key)
		e.expires = old.expires
	}
	c.entries[key] = e
	return nil
}

// Del drops keys.
func (c *Cache) Del(_ context.Context, keys ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		delete(c.entries, k)
	}
	return nil
}

func lockKey(key string) string { return key + ":lock" }

// Lock takes the rebuild lock of key for ttl (for good when ttl is zero). It returns a
// fresh token either way; ok is false when someone else holds the lock.
func (c *Cache) Lock(_ context.Context, key string, ttl time.Duration) (token string, ok bool, err error) {
	token = randhex.String(16)
	c.mu.Lock()
	defer c.mu.Unlock()
	var exp time.Time
	if ttl != keepTTL {
		if exp, err = c.expiry(ttl); err != nil {
			return "", false, fmt.Errorf("lock %s: %w", key, err)
		}
	}
	if _, held := c.get(lockKey(key)); held {
		return token, false, nil
	}
	c.entries[lockKey(key)] = cacheEntry{val: []byte(token), expires: exp}
	return token, true, nil
}

// holds reports whether token holds key's lock; the caller holds mu.
func (c *Cache) holds(key, token string) bool {
	e, ok := c.get(lockKey(key))
	return ok && string(e.val) == token
}

// SetLocked writes key while token holds its lock, then frees the lock; it reports
// whether it wrote. A ttl under a millisecond is refused, as PX 0 is.
func (c *Cache) SetLocked(_ context.Context, key, token string, val []byte, ttl time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.holds(key, token) {
		return false, nil
	}
	if ttl.Milliseconds() <= 0 {
		return false, fmt.Errorf("cache set %s: invalid expire time in 'set' command", key)
	}
	exp, _ := c.expiry(ttl)
	c.entries[key] = cacheEntry{val: bytes.Clone(val), expires: exp}
	delete(c.entries, lockKey(key))
	return true, nil
}

// Unlock frees the lock of key if token still holds it.
func (c *Cache) Unlock(_ context.Context, key, token string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holds(key, token) {
		delete(c.entries, lockKey(key))
	}
	return nil
}
