package inmem_test

import (
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/domain/domaintest"
	"github.com/seckill/flashsale/backend/inmem"
)

// The queue plugs into the backend as its publisher and delivers to the worker, a
// domain.Handler, as a subscriber.
var (
	_ domain.Publisher                                    = (*inmem.Queue)(nil)
	_ func(domain.Handler) (stop func() error, err error) = (*inmem.Queue)(nil).Subscribe
)

// The in-memory adapters pass the same contract tests as the real ones
// (backend/mysql/contract_test.go, backend/redis/contract_test.go).

// clock is a test clock as the contract tests see it.
func clock() (domaintest.Clock, inmem.Option) {
	c := inmem.NewClock(time.Now())
	return domaintest.Clock{Now: c.Now, Sleep: c.Advance}, inmem.WithClock(c.Now)
}

func stores(*testing.T) domaintest.Stores {
	s := inmem.NewStore()
	return domaintest.Stores{Catalog: s, Orders: s}
}

func TestCatalogContract(t *testing.T)    { domaintest.TestCatalog(t, stores) }
func TestOrderStoreContract(t *testing.T) { domaintest.TestOrderStore(t, stores) }

func TestStockLedgerContract(t *testing.T) {
	domaintest.TestStockLedger(t, func(_ *testing.T, resultTTL time.Duration) domaintest.Ledger {
		c, opt := clock()
		return domaintest.Ledger{StockLedger: inmem.NewLedger(resultTTL, opt), Clock: c}
	})
}

func TestCacheContract(t *testing.T) {
	domaintest.TestCache(t, func(*testing.T) domaintest.Cache {
		c, opt := clock()
		return domaintest.Cache{Cache: inmem.NewCache(opt), Clock: c}
	})
}

func TestLeasesContract(t *testing.T) {
	c, opt := clock()
	domaintest.TestLeases(t, inmem.NewLeases(opt), c.Sleep)
}
