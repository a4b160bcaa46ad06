package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain/domaintest"
	"github.com/seckill/flashsale/backend/redis"
)

// The Redis stock ledger and cache against the ports' contracts, on one node and on a
// cluster; backend/inmem runs the same tests on its in-memory ledger and cache, so the
// two cannot drift apart.

func TestStockLedgerContract(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			domaintest.TestStockLedger(t, func(t *testing.T, resultTTL time.Duration) domaintest.Ledger {
				st := redis.NewStock(rdb, resultTTL)
				if err := st.Load(context.Background()); err != nil {
					t.Fatal(err)
				}
				return domaintest.Ledger{StockLedger: st, Clock: domaintest.RealClock}
			})
		})
	}
}

func TestCacheContract(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			domaintest.TestCache(t, func(*testing.T) domaintest.Cache {
				return domaintest.Cache{Cache: redis.NewCache(rdb), Clock: domaintest.RealClock}
			})
		})
	}
}

func TestLeasesContract(t *testing.T) {
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) { domaintest.TestLeases(t, redis.NewLeases(rdb), time.Sleep) })
	}
}
