package redis

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"
)

// fleetKey holds the fleet's gateways' reports: one field a gateway,
// "<unix ms>|<report>".
func (e *Events) fleetKey() string { return "sk:{fleet:" + e.fleet + "}:gateways" }

// Put records a gateway's report, stamped with the time.
func (e *Events) Put(ctx context.Context, id string, report []byte) error {
	v := strconv.FormatInt(time.Now().UnixMilli(), 10) + "|" + string(report)
	if err := e.rdb.HSet(ctx, e.fleetKey(), id, v).Err(); err != nil {
		return fmt.Errorf("report gateway %s: %w", id, err)
	}
	return nil
}

// List returns the reports put within ttl, by id, and drops older ones (their
// gateways are gone).
func (e *Events) List(ctx context.Context, ttl time.Duration) (map[string][]byte, error) {
	all, err := e.rdb.HGetAll(ctx, e.fleetKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("read the fleet's reports: %w", err)
	}
	out := make(map[string][]byte, len(all))
	cutoff := time.Now().Add(-ttl).UnixMilli()
	var stale []string
	for id, v := range all {
		ms, report, ok := strings.Cut(v, "|")
		at, err := strconv.ParseInt(ms, 10, 64)
		if !ok || err != nil || at < cutoff {
			stale = append(stale, id)
			continue
		}
		out[id] = []byte(report)
	}
	if len(stale) > 0 {
		e.rdb.HDel(ctx, e.fleetKey(), stale...) // best effort: the next reader drops them too
	}
	return out, nil
}

// SharedLimiter keeps one fleet's rate limits in Redis so they hold across its
// gateways: GCRA, one script call per check (go-redis/redis_rate).
type SharedLimiter struct {
	lim   *redis_rate.Limiter
	fleet string
}

// NewSharedLimiter returns the SharedLimiter of the fleet named fleet on rdb.
func NewSharedLimiter(rdb goredis.UniversalClient, fleet string) *SharedLimiter {
	return &SharedLimiter{lim: redis_rate.NewLimiter(rdb), fleet: fleet}
}

// Allow takes a token of key's bucket of rps tokens a second, burst at once; when there
// is none it says how long until one is due.
func (s *SharedLimiter) Allow(ctx context.Context, key string, rps float64, burst int) (bool, time.Duration, error) {
	limit := redis_rate.Limit{Rate: int(math.Round(rps)), Burst: max(burst, 1), Period: time.Second}
	if rps != math.Trunc(rps) || rps < 1 { // a fractional rate, counted by the minute
		limit.Rate, limit.Period = max(int(math.Round(rps*60)), 1), time.Minute
	}
	res, err := s.lim.Allow(ctx, "sk:{rl:"+s.fleet+":"+key+"}", limit)
	if err != nil {
		return true, 0, fmt.Errorf("shared rate limit %s: %w", key, err)
	}
	return res.Allowed > 0, res.RetryAfter, nil
}
