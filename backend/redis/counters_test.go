package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/testenv"
	"github.com/seckill/flashsale/gateway/wasm"
	"github.com/seckill/flashsale/gateway/wasm/hertzhost"
	"github.com/seckill/flashsale/gateway/wasm/wasmtest"
)

// counterPrefix is a key prefix of the test's own, and a cleanup that deletes
// the given keys under it (one by one: on a cluster they live in other slots).
// PluginCounters are the plugins' shared counters (the wasm core declares the port;
// the adapter does not import it, so the backend does not link wazero).
var _ wasm.Counters = (*redis.PluginCounters)(nil)

func counterPrefix(tb testing.TB, rdb goredis.UniversalClient, keys ...string) string {
	tb.Helper()
	prefix := "sk:wasm:test:" + testenv.ID() + ":"
	tb.Cleanup(func() {
		for _, k := range keys {
			if err := rdb.Del(context.Background(), prefix+k).Err(); err != nil {
				tb.Errorf("cleanup %s: %v", prefix+k, err)
			}
		}
	})
	return prefix
}

func TestPluginCounters(t *testing.T) {
	for name, rdb := range map[string]goredis.UniversalClient{"single": testenv.Redis(t), "cluster": testenv.RedisCluster(t)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			prefix := counterPrefix(t, rdb, "k", "short")
			c := redis.NewPluginCounters(rdb, prefix)

			for i, want := range []int64{1, 2, 3} {
				got, err := c.Incr(ctx, "k", 1, time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("incr %d: got %d, want %d", i, got, want)
				}
			}
			ttl, err := rdb.PTTL(ctx, prefix+"k").Result()
			if err != nil {
				t.Fatal(err)
			}
			if ttl <= 50*time.Second || ttl > time.Minute {
				t.Errorf("got ttl %v, want about 1m (set once)", ttl)
			}
			// The ttl is set by the first increment only.
			if _, err := c.Incr(ctx, "k", 1, time.Hour); err != nil {
				t.Fatal(err)
			}
			if ttl, _ := rdb.PTTL(ctx, prefix+"k").Result(); ttl > time.Minute {
				t.Errorf("got ttl %v after a later increment, want it unchanged (<= 1m)", ttl)
			}
			// Expiry starts a new window.
			if v, _ := c.Incr(ctx, "short", 1, 50*time.Millisecond); v != 1 {
				t.Fatalf("got %d, want 1", v)
			}
			time.Sleep(120 * time.Millisecond)
			if v, err := c.Incr(ctx, "short", 1, 50*time.Millisecond); err != nil || v != 1 {
				t.Errorf("after expiry: got %d, %v, want 1", v, err)
			}
			// Script cache flushed: Run falls back to EVAL.
			if err := rdb.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if v, err := c.Incr(ctx, "k", 1, time.Minute); err != nil || v != 5 {
				t.Errorf("after SCRIPT FLUSH: got %d, %v, want 5", v, err)
			}
			if _, err := c.Incr(ctx, "k", 1, 0); err == nil {
				t.Errorf("ttl 0: got no error, want one")
			}
		})
	}
}

// TestPluginCounters_SharedAcrossManagers: two managers (two gateway
// instances) with the attemptlimit plugin share one limit through Redis.
func TestPluginCounters_SharedAcrossManagers(t *testing.T) {
	rdb := testenv.Redis(t)
	wasmBytes := wasmtest.ReadModule(t, "../../plugins/examples/attemptlimit/attemptlimit.wasm")
	prefix := "sk:wasm:test:" + testenv.ID() + ":"
	var ms []*wasm.Manager
	for range 2 {
		m := wasmtest.NewManager(t, wasm.Options{Counters: redis.NewPluginCounters(rdb, prefix)})
		if _, err := m.Put(context.Background(), "attemptlimit", wasm.Spec{Wasm: wasmBytes,
			Config: []byte(`{"max":4,"window_ms":60000}`), FailPolicy: wasm.FailClosed}); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	admitted := 0
	for i := range 10 {
		c := app.NewContext(0)
		c.Request.Header.SetMethod("POST")
		c.Request.Header.Set("X-Seckill-User", "7")
		v := ms[i%2].Handle(hertzhost.NewContext(context.Background(), c), hertzhost.Host{}, func(context.Context) error { return nil })
		if v.Admitted {
			admitted++
		}
	}
	if admitted != 4 {
		t.Errorf("got %d admitted across two gateways, want 4", admitted)
	}
	keys, err := rdb.Keys(context.Background(), prefix+"*").Result()
	if err == nil && len(keys) > 0 {
		err = rdb.Del(context.Background(), keys...).Err()
	}
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
}
