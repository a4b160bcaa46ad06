package redis

import (
	"context"
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

// once runs scripts so that no client resends them: a cluster client resends a
// command whose connection ended after it was written (to the same node, then
// another) whatever MaxRetries says, and a script that adds or takes units by a delta
// would run twice. Redirections (MOVED, ASK) are still followed: Redis ran nothing.
// A lost answer is an error the caller sees, as with a single node.
type once struct{ rdb goredis.UniversalClient }

var _ goredis.Scripter = once{}

// noRetry is a command the client must not send again once it was written.
type noRetry struct{ *goredis.Cmd }

func (noRetry) NoRetry() bool { return true }

func (o once) run(ctx context.Context, name, script string, keys []string, args []any) *goredis.Cmd {
	all := make([]any, 0, 3+len(keys)+len(args))
	all = append(all, name, script, len(keys))
	for _, k := range keys {
		all = append(all, k)
	}
	all = append(all, args...)
	cmd := goredis.NewCmd(ctx, all...)
	if len(keys) > 0 {
		cmd.SetFirstKeyPos(3) // the cluster routes by the first key
	}
	_ = o.rdb.Process(ctx, noRetry{cmd})
	return cmd
}

func (o once) Eval(ctx context.Context, script string, keys []string, args ...any) *goredis.Cmd {
	return o.run(ctx, "eval", script, keys, args)
}

func (o once) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *goredis.Cmd {
	return o.run(ctx, "evalsha", sha1, keys, args)
}

func (o once) EvalRO(ctx context.Context, script string, keys []string, args ...any) *goredis.Cmd {
	return o.run(ctx, "eval_ro", script, keys, args)
}

func (o once) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *goredis.Cmd {
	return o.run(ctx, "evalsha_ro", sha1, keys, args)
}

func (o once) ScriptExists(ctx context.Context, hashes ...string) *goredis.BoolSliceCmd {
	return o.rdb.ScriptExists(ctx, hashes...)
}

func (o once) ScriptLoad(ctx context.Context, script string) *goredis.StringCmd {
	return o.rdb.ScriptLoad(ctx, script)
}
