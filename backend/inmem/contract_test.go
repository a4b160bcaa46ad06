package inmem_test

import (
	"github.com/seckill/flashsale/backend/domain"
	"github.com/seckill/flashsale/backend/inmem"
)

// The queue plugs into the backend as its publisher and delivers to the worker, a
// domain.Handler, as a subscriber.
var (
	_ domain.Publisher                                    = (*inmem.Queue)(nil)
	_ func(domain.Handler) (stop func() error, err error) = (*inmem.Queue)(nil).Subscribe
)
