package inmem

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/internal/randhex"
)

// Cache is an in-memory byte cache with versioned values, TTLs and rebuild locks, as
// backend/redis.Cache. TTLs follow the clock given with WithClock. It is safe for
// concurrent use.
type Cache struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[string]cacheEntry
	locks   map[string]cacheEntry // val is the holder's token
}

type cacheEntry struct {
	val     []byte
	version int64
	expires time.Time
}

var _ domain.Cache = (*Cache)(nil)

// NewCache returns an empty Cache.
func NewCache(opts ...Option) *Cache {
	return &Cache{now: buildOptions(opts).now, entries: map[string]cacheEntry{}, locks: map[string]cacheEntry{}}
}

// live returns m's entry for key unless it expired; the caller holds mu.
func (c *Cache) live(m map[string]cacheEntry, key string) (cacheEntry, bool) {
	e, ok := m[key]
	if ok && !c.now().Before(e.expires) {
		delete(m, key)
		return cacheEntry{}, false
	}
	return e, ok
}

// expiry is when a key written now with ttl expires: ttl in whole milliseconds, at
// least one, as the Redis cache sends it.
func (c *Cache) expiry(ttl time.Duration) time.Time {
	return c.now().Add(time.Duration(max(ttl.Milliseconds(), 1)) * time.Millisecond)
}

// Get returns the cached value of key; ok is false on a miss.
func (c *Cache) Get(_ context.Context, key string) ([]byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.live(c.entries, key)
	return bytes.Clone(e.val), ok, nil
}

// put writes unless a newer version is stored; the caller holds mu.
func (c *Cache) put(key string, version int64, val []byte, ttl time.Duration) bool {
	if e, ok := c.live(c.entries, key); ok && e.version > version {
		return false
	}
	c.entries[key] = cacheEntry{val: bytes.Clone(val), version: version, expires: c.expiry(ttl)}
	return true
}

// Put writes val as version of key unless a newer version is stored.
func (c *Cache) Put(_ context.Context, key string, version int64, val []byte, ttl time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.put(key, version, val, ttl), nil
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

// Lock takes key's rebuild lock for ttl unless someone holds it.
func (c *Cache) Lock(_ context.Context, key string, ttl time.Duration) (string, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, held := c.live(c.locks, key); held {
		return "", false, nil
	}
	token := randhex.String(16)
	c.locks[key] = cacheEntry{val: []byte(token), expires: c.expiry(ttl)}
	return token, true, nil
}

// PutLocked is Put while token holds key's lock, and frees the lock.
func (c *Cache) PutLocked(_ context.Context, key, token string, version int64, val []byte, ttl time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.live(c.locks, key); !ok || string(l.val) != token {
		return false, nil
	}
	delete(c.locks, key)
	return c.put(key, version, val, ttl), nil
}

// Unlock frees key's lock if token holds it.
func (c *Cache) Unlock(_ context.Context, key, token string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.live(c.locks, key); ok && string(l.val) == token {
		delete(c.locks, key)
	}
	return nil
}
