package embedded

import (
	"testing"

	"github.com/seckill/flashsale/backend/domain/domaintest"
	"github.com/seckill/flashsale/backend/mysql"
)

// The MySQL store on the embedded go-mysql-server against the ports' contracts, as
// backend/mysql runs them on MariaDB: the quick start's catalog and orders behave as
// production's.

func stores(t *testing.T) domaintest.Stores {
	s := mysql.NewStore(mustStartMySQL(t, 8))
	return domaintest.Stores{Catalog: s, Orders: s}
}

func TestCatalogContract(t *testing.T)    { domaintest.TestCatalog(t, stores) }
func TestOrderStoreContract(t *testing.T) { domaintest.TestOrderStore(t, stores) }
