package redis

import (
	"context"
	"fmt"
	"time"

	redis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/gateway/wasm"
)

var _ wasm.Counters = (*RedisCounters)(nil)

// RedisCounters keeps the counters in Redis, shared by all gateway
// instances. Each increment is one round trip: a Lua script that runs INCRBY
// and sets the time to live only when the key has none (PEXPIRE ... NX
// semantics, written with PTTL so it also runs on Redis < 7).
type RedisCounters struct {
	rdb    redis.Scripter
	prefix string
}

// incrScript: KEYS[1] the counter, ARGV[1] delta, ARGV[2] ttl in ms.
var incrScript = redis.NewScript(`
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
`)

// NewRedisCounters returns counters stored in rdb (a *redis.Client,
// *redis.ClusterClient or *redis.Ring) under keys prefix+key. An empty
// prefix means "sk:wasm:".
func NewRedisCounters(rdb redis.Scripter, prefix string) *RedisCounters {
	if prefix == "" {
		prefix = "sk:wasm:"
	}
	return &RedisCounters{rdb: rdb, prefix: prefix}
}

// Incr implements Counters. The script is called by SHA, with a fallback to
// EVAL when Redis answers NOSCRIPT.
func (c *RedisCounters) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("counters: ttl must be positive")
	}
	ms := ttl.Milliseconds()
	if ms == 0 {
		ms = 1
	}
	v, err := incrScript.Run(ctx, c.rdb, []string{c.prefix + key}, delta, ms).Int64()
	if err != nil {
		return 0, fmt.Errorf("incr counter %q: %w", key, err)
	}
	return v, nil
}
