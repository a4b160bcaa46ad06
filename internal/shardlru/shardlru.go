// Package shardlru is a size-bounded LRU split into shards by the key's hash,
// each a hashicorp LRU with a lock of its own. A lookup in an LRU moves the entry
// (a write), so one LRU is one lock every request of the gateway's hot path takes
// (a token's check, a rate limit's bucket); sharded, requests for different keys
// rarely wait on one another.
//
// Recency is kept per shard: a full shard evicts its own least recent entry, so
// the cache holds at most its size in all and a flood of keys evicts idle ones,
// as one LRU would, only not in exactly the same order.
package shardlru

import (
	"hash/maphash"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Cache is a sharded LRU of at most Size entries; it is safe for concurrent use.
type Cache[K comparable, V any] struct {
	seed   maphash.Seed
	mask   uint64
	shards []*lru.Cache[K, V]
}

// maxShards is enough shards that a few cores rarely meet on one.
const maxShards = 64

// New returns a cache of at most size entries (at least 1).
func New[K comparable, V any](size int) *Cache[K, V] {
	size = max(size, 1)
	n := 1
	for n < maxShards && n*2*16 <= size { // a shard of fewer than 16 entries is all churn
		n *= 2
	}
	c := &Cache[K, V]{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]*lru.Cache[K, V], n)}
	for i := range c.shards {
		s, err := lru.New[K, V](size / n) // n divides into size at least 16 times: never 0
		if err != nil {
			panic(err) // only for a non-positive size
		}
		c.shards[i] = s
	}
	return c
}

func (c *Cache[K, V]) shard(k K) *lru.Cache[K, V] {
	return c.shards[maphash.Comparable(c.seed, k)&c.mask]
}

// Get returns k's value and marks it recently used.
func (c *Cache[K, V]) Get(k K) (V, bool) { return c.shard(k).Get(k) }

// Add sets k's value, evicting its shard's least recent entry if the shard is full.
func (c *Cache[K, V]) Add(k K, v V) { c.shard(k).Add(k, v) }

// ContainsOrAdd adds k's value unless k is there, and returns the value kept: a
// value two callers race to make for the same key is made once for both.
func (c *Cache[K, V]) ContainsOrAdd(k K, v V) V {
	s := c.shard(k)
	for {
		if old, ok := s.Get(k); ok {
			return old
		}
		if ok, _ := s.ContainsOrAdd(k, v); !ok {
			return v
		}
		// Added by another caller between the Get and here: read it (unless
		// it was evicted already, then try again).
	}
}

// Remove drops k.
func (c *Cache[K, V]) Remove(k K) { c.shard(k).Remove(k) }

// Purge drops every entry.
func (c *Cache[K, V]) Purge() {
	for _, s := range c.shards {
		s.Purge()
	}
}

// Len is how many entries are held.
func (c *Cache[K, V]) Len() int {
	n := 0
	for _, s := range c.shards {
		n += s.Len()
	}
	return n
}
