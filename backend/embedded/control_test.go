package embedded

import (
	"testing"

	"github.com/seckill/flashsale/backend/control"
	"github.com/seckill/flashsale/backend/control/controltest"
	"github.com/seckill/flashsale/backend/mysql"
)

// The control state on go-mysql-server, the all-in-one mode's stand-in: the same
// contract as on MariaDB.
func TestControlStoreContract(t *testing.T) {
	controltest.TestStore(t, func(t *testing.T) control.Store {
		return mysql.NewStore(mustStartMySQL(t, 4))
	})
}
