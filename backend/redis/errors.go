package redis

import (
	"errors"
	"fmt"
	"net"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
)

// notSent wraps err with domain.ErrNotSent when the command never left this process:
// no connection could be dialled, none came free from the pool in time, or the
// client was closed. Any other failure may have reached Redis and is returned as is.
// It holds only for a client that sends each command once: one that resends returns
// its last attempt's error, which says nothing of the first.
func notSent(err error) error {
	if err == nil {
		return nil
	}
	var op *net.OpError
	if errors.Is(err, goredis.ErrPoolTimeout) || errors.Is(err, goredis.ErrClosed) ||
		(errors.As(err, &op) && op.Op == "dial") {
		return fmt.Errorf("%w: %w", domain.ErrNotSent, err)
	}
	return err
}
