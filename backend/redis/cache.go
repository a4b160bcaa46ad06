package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/internal/randhex"
)

// Cache is a byte cache in Redis with rebuild locks, for the catalog's read path.
type Cache struct {
	rdb goredis.UniversalClient
}

var _ domain.Cache = (*Cache)(nil)

// NewCache returns a Cache on rdb.
func NewCache(rdb goredis.UniversalClient) *Cache { return &Cache{rdb: rdb} }

// Get returns the cached value of key; ok is false on a miss.
func (c *Cache) Get(ctx context.Context, key string) (val []byte, ok bool, err error) {
	b, err := c.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cache get %s: %w", key, err)
	}
	return b, true, nil
}

// Del drops keys from the cache.
func (c *Cache) Del(ctx context.Context, keys ...string) error {
	for _, k := range keys { // one by one: keys of different slots in a cluster
		if err := c.rdb.Del(ctx, k).Err(); err != nil {
			return fmt.Errorf("cache del %s: %w", k, err)
		}
	}
	return nil
}

// Lock takes the rebuild lock of key for ttl. It returns a token that only this holder
// knows; ok is false when someone else holds the lock.
func (c *Cache) Lock(ctx context.Context, key string, ttl time.Duration) (token string, ok bool, err error) {
	token = randhex.String(16)
	ok, err = c.rdb.SetNX(ctx, lockKey(key), token, ttl).Result()
	if err != nil {
		return "", false, fmt.Errorf("lock %s: %w", key, err)
	}
	return token, ok, nil
}

// fencedSet writes the value only while the writer still holds the rebuild lock (its
// token is the lock's value), then frees the lock. A writer whose lock expired while
// it read the database, and was taken over by another, writes nothing.
var fencedSet = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[1])
return 1`)

var unlock = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// SetLocked writes key while the caller's lock token holds, and frees the lock. It
// reports whether it wrote. The lock key shares key's hash tag.
func (c *Cache) SetLocked(ctx context.Context, key, token string, val []byte, ttl time.Duration) (bool, error) {
	n, err := fencedSet.Run(ctx, c.rdb, []string{lockKey(key), key}, token, val, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("cache set %s: %w", key, err)
	}
	return n == 1, nil
}

// Unlock frees the caller's lock on key if it still holds it.
func (c *Cache) Unlock(ctx context.Context, key, token string) error {
	if err := unlock.Run(ctx, c.rdb, []string{lockKey(key)}, token).Err(); err != nil {
		return fmt.Errorf("unlock %s: %w", key, err)
	}
	return nil
}

// Set writes key unconditionally (used to pre-warm on publish).
func (c *Cache) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := c.rdb.Set(ctx, key, val, ttl).Err(); err != nil {
		return fmt.Errorf("cache set %s: %w", key, err)
	}
	return nil
}

// lockKey puts the lock in the same slot as the key: keys are given as "sk:{...}:..".
func lockKey(key string) string { return key + ":lock" }
