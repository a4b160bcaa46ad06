package mysql_test

import (
	"testing"

	"github.com/seckill/flashsale/backend/domain/domaintest"
	"github.com/seckill/flashsale/backend/testenv"
)

// The MySQL store against the ports' contracts; backend/inmem runs the same tests on
// its in-memory store, so the two cannot drift apart.

func stores(t *testing.T) domaintest.Stores {
	db := testenv.MySQL(t)
	return domaintest.Stores{Catalog: db.Store, Orders: db.Store}
}

func TestCatalogContract(t *testing.T)    { domaintest.TestCatalog(t, stores) }
func TestOrderStoreContract(t *testing.T) { domaintest.TestOrderStore(t, stores) }
