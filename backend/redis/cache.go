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

// Cache is a byte cache in Redis with versioned values and rebuild locks, for the
// catalog's read path. A value is a hash {v: version, d: data} with a TTL.
type Cache struct {
	rdb goredis.UniversalClient
}

var _ domain.Cache = (*Cache)(nil)

// NewCache returns a Cache on rdb.
func NewCache(rdb goredis.UniversalClient) *Cache { return &Cache{rdb: rdb} }

// Get returns the cached value of key; ok is false on a miss.
func (c *Cache) Get(ctx context.Context, key string) (val []byte, ok bool, err error) {
	b, err := c.rdb.HGet(ctx, key, "d").Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cache get %s: %w", key, err)
	}
	return b, true, nil
}

// putScript writes a value unless a newer version is stored, and, when a lock key is
// given, only while the caller's token holds it (then frees it).
// KEYS[1] the value, KEYS[2] its lock or absent; ARGV[1] version, ARGV[2] data,
// ARGV[3] TTL ms, ARGV[4] lock token. Returns 1 when written.
var putScript = goredis.NewScript(`
if KEYS[2] then
  if redis.call('GET', KEYS[2]) ~= ARGV[4] then return 0 end
  redis.call('DEL', KEYS[2])
end
local cur = redis.call('HGET', KEYS[1], 'v')
if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)

var unlock = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// ttlMS is ttl in whole milliseconds, at least one.
func ttlMS(ttl time.Duration) int64 { return max(ttl.Milliseconds(), 1) }

// Put writes val as version of key unless a newer version is stored.
func (c *Cache) Put(ctx context.Context, key string, version int64, val []byte, ttl time.Duration) (bool, error) {
	n, err := putScript.Run(ctx, c.rdb, []string{key}, version, val, ttlMS(ttl), "").Int()
	if err != nil {
		return false, fmt.Errorf("cache put %s: %w", key, err)
	}
	return n == 1, nil
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
	ok, err = c.rdb.SetNX(ctx, lockKey(key), token, time.Duration(ttlMS(ttl))*time.Millisecond).Result()
	if err != nil {
		return "", false, fmt.Errorf("lock %s: %w", key, err)
	}
	if !ok {
		return "", false, nil
	}
	return token, true, nil
}

// PutLocked writes key while the caller's lock token holds, unless a newer version is
// stored, and frees the lock. It reports whether it wrote.
func (c *Cache) PutLocked(ctx context.Context, key, token string, version int64, val []byte, ttl time.Duration) (bool, error) {
	n, err := putScript.Run(ctx, c.rdb, []string{key, lockKey(key)}, version, val, ttlMS(ttl), token).Int()
	if err != nil {
		return false, fmt.Errorf("cache put %s: %w", key, err)
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

// lockKey puts the lock in the same slot as the key: keys are given as "sk:{...}:..".
func lockKey(key string) string { return key + ":lock" }
