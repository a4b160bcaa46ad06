package mysql_test

import (
	"testing"

	"github.com/seckill/flashsale/backend/control"
	"github.com/seckill/flashsale/backend/control/controltest"
	"github.com/seckill/flashsale/backend/testenv"
)

func TestControlStoreContract(t *testing.T) {
	controltest.TestStore(t, func(t *testing.T) control.Store { return testenv.MySQL(t).Store })
}
