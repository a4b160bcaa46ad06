package embedded

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain/domaintest"
	"github.com/seckill/flashsale/backend/redis"
)

// The Redis adapter on miniredis, the all-in-one mode's stand-in, against the ports'
// contracts: the same scripts must behave as on a real Redis.

// mustStartRedis starts miniredis and returns a client on it; both go away when the
// test ends.
func mustStartRedis(tb testing.TB) goredis.UniversalClient {
	tb.Helper()
	addr, password, stop, err := StartRedis()
	if err != nil {
		tb.Fatalf("start redis: %v", err)
	}
	tb.Cleanup(stop)
	rdb, err := redis.Open(context.Background(), []string{addr}, password, false)
	if err != nil {
		tb.Fatalf("open redis: %v", err)
	}
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestStockLedgerContract(t *testing.T) {
	rdb := mustStartRedis(t)
	domaintest.TestStockLedger(t, func(t *testing.T, resultTTL time.Duration) domaintest.Ledger {
		st := redis.NewStock(rdb, resultTTL)
		if err := st.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		return domaintest.Ledger{StockLedger: st, Clock: domaintest.RealClock}
	})
}

func TestCacheContract(t *testing.T) {
	rdb := mustStartRedis(t)
	domaintest.TestCache(t, func(*testing.T) domaintest.Cache {
		return domaintest.Cache{Cache: redis.NewCache(rdb), Clock: domaintest.RealClock}
	})
}

func TestLeasesContract(t *testing.T) {
	domaintest.TestLeases(t, redis.NewLeases(mustStartRedis(t)), time.Sleep)
}
