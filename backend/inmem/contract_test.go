package inmem_test

import (
	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/inmem"
	"github.com/seckill/flashsale/worker"
)

// The queue plugs into the backend as its publisher and into the worker as its
// subscriber.
var (
	_ domain.Publisher  = (*inmem.Queue)(nil)
	_ worker.Subscriber = (*inmem.Queue)(nil).Subscribe
)
