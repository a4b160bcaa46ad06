package inmem_test

import (
	"testing"

	"github.com/seckill/flashsale/backend/control"
	"github.com/seckill/flashsale/backend/control/controltest"
	"github.com/seckill/flashsale/backend/inmem"
)

func TestControlStoreContract(t *testing.T) {
	controltest.TestStore(t, func(*testing.T) control.Store { return inmem.NewControlStore() })
}
