package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/backend/domain"
)

var (
	//go:embed lua/lease.lua
	leaseLua    string
	leaseScript = goredis.NewScript(leaseLua)
	// Deletes the lease key when ARGV[1] holds it.
	releaseLeaseScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and string.match(cur, '^(.*) %d+$') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// Leases are the fleet's leases in Redis: one key per lease ("holder token", expiring
// with the lease) and one fencing counter for all of them, under one hash tag, so
// tokens of every lease on this Redis grow together (the data the duties write keeps
// the highest token it has seen; see lua/fence.lua).
type Leases struct {
	rdb goredis.UniversalClient
}

var _ domain.Leases = (*Leases)(nil)

// NewLeases returns the leases on rdb.
func NewLeases(rdb goredis.UniversalClient) *Leases { return &Leases{rdb: rdb} }

func leaseKey(name string) string { return "sk:{lease}:" + name }

const fenceCounter = "sk:{lease}:fence"

// Hold takes or renews the lease name for holder.
func (l *Leases) Hold(ctx context.Context, name, holder string, ttl time.Duration) (int64, bool, error) {
	tok, err := leaseScript.Run(ctx, l.rdb, []string{leaseKey(name), fenceCounter}, holder, ttlMS(ttl)).Int64()
	if err != nil {
		return 0, false, fmt.Errorf("hold lease %s: %w", name, err)
	}
	if tok <= 0 {
		return 0, false, nil
	}
	return tok, true, nil
}

// Release gives the lease up if holder has it.
func (l *Leases) Release(ctx context.Context, name, holder string) error {
	if err := releaseLeaseScript.Run(ctx, l.rdb, []string{leaseKey(name)}, holder).Err(); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// Holder reads who holds the lease name and under which token ("" when nobody does).
func (l *Leases) Holder(ctx context.Context, name string) (holder string, token int64, err error) {
	v, err := l.rdb.Get(ctx, leaseKey(name)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("read lease %s: %w", name, err)
	}
	i := strings.LastIndexByte(v, ' ')
	if token, err = strconv.ParseInt(v[i+1:], 10, 64); err != nil || i < 0 {
		return "", 0, fmt.Errorf("lease %s holds %q, not \"<holder> <token>\"", name, v)
	}
	return v[:i], token, nil
}
