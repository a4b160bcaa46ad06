package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// PluginCounters keeps the Wasm plugins' counters (seckill.counter_incr) in
// Redis, so every gateway instance sees the same counts. Each increment is one
// round trip: a Lua script that runs INCRBY and sets the time to live only
// when the key has none (PEXPIRE ... NX semantics, written with PTTL so it
// also runs on Redis < 7).
type PluginCounters struct {
	rdb    goredis.Scripter
	prefix string
}

// pluginIncrScript: KEYS[1] the counter, ARGV[1] delta, ARGV[2] ttl in ms.
var pluginIncrScript = goredis.NewScript(`
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
`)

// NewPluginCounters returns counters stored in rdb (a *goredis.Client,
// *goredis.ClusterClient or *goredis.Ring) under keys prefix+key. An empty
// prefix means "sk:wasm:".
func NewPluginCounters(rdb goredis.Scripter, prefix string) *PluginCounters {
	if prefix == "" {
		prefix = "sk:wasm:"
	}
	return &PluginCounters{rdb: rdb, prefix: prefix}
}

// Incr implements wasm.Counters. The script is called by SHA, with a fallback
// to EVAL when Redis answers NOSCRIPT.
func (c *PluginCounters) Incr(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, errors.New("counters: ttl must be positive")
	}
	ms := ttl.Milliseconds()
	if ms == 0 {
		ms = 1
	}
	v, err := pluginIncrScript.Run(ctx, c.rdb, []string{c.prefix + key}, delta, ms).Int64()
	if err != nil {
		return 0, fmt.Errorf("incr counter %q: %w", key, err)
	}
	return v, nil
}
