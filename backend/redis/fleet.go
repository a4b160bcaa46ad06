package redis

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/seckill/flashsale/internal/coalesce"
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
// gateways: GCRA (lua/gcra.lua). The checks that arrive together share one round
// trip: on one Redis node one script call checks them all (lua/gcra_many.lua); on a
// cluster, whose keys of different users lie in different slots, a pipeline of a
// script call each. It is safe for concurrent use.
type SharedLimiter struct {
	rdb    goredis.UniversalClient
	fleet  string
	checks *coalesce.Batcher[struct{}, check, checked]
}

type check struct {
	key   string
	rps   float64
	burst int
}

type checked struct {
	ok    bool
	retry time.Duration
	err   error
}

var (
	//go:embed lua/gcra.lua
	gcraLua    string
	gcraScript = goredis.NewScript(gcraLua)
	//go:embed lua/gcra_many.lua
	gcraManyLua    string
	gcraManyScript = goredis.NewScript(gcraManyLua)
)

// NewSharedLimiter returns the SharedLimiter of the fleet named fleet on rdb.
func NewSharedLimiter(rdb goredis.UniversalClient, fleet string) *SharedLimiter {
	s := &SharedLimiter{rdb: rdb, fleet: fleet}
	// A lone check goes at once; those that arrive while one is out wait for it, or
	// limitWait at most, and go together.
	s.checks = coalesce.New(coalesce.Config{Size: limitBatch, Overlap: true, Wait: limitWait}, s.run)
	return s
}

const (
	limitBatch = 128
	limitWait  = 500 * time.Microsecond
)

// Allow takes a token of key's bucket of rps tokens a second, burst at once; when there
// is none it says how long until one is due. A rate of 0 or less is no limit. When
// Redis fails it allows, with the error.
func (s *SharedLimiter) Allow(ctx context.Context, key string, rps float64, burst int) (bool, time.Duration, error) {
	if !(rps > 0) {
		return true, 0, nil
	}
	r := s.checks.Do(ctx, struct{}{}, check{key: "sk:{rl:" + s.fleet + ":" + key + "}", rps: rps, burst: max(burst, 1)})
	if r.err != nil {
		return true, 0, fmt.Errorf("shared rate limit %s: %w", key, r.err)
	}
	return r.ok, r.retry, nil
}

// run checks a batch in one round trip. A batch's failure is each check's.
func (s *SharedLimiter) run(ctx context.Context, _ struct{}, cs []check) []checked {
	// One script call only on a plain client: every key on one node. A cluster's
	// keys lie in different slots, and a ring (or a proxy) would send the call to
	// the first key's shard alone.
	if _, node := s.rdb.(*goredis.Client); node && len(cs) > 1 {
		return s.runOne(ctx, cs)
	}
	return s.runPipelined(ctx, cs)
}

// runOne checks a batch in one script call.
func (s *SharedLimiter) runOne(ctx context.Context, cs []check) []checked {
	out := make([]checked, len(cs))
	keys := make([]string, len(cs))
	args := make([]any, 0, 2*len(cs))
	for i, c := range cs {
		keys[i] = c.key
		args = append(args, c.rps, c.burst)
	}
	v, err := gcraManyScript.Run(ctx, s.rdb, keys, args...).Int64Slice() // EVALSHA, EVAL once on NOSCRIPT
	if err == nil && len(v) != 2*len(cs) {
		err = fmt.Errorf("unexpected answer of %d values to %d checks", len(v), len(cs))
	}
	for i := range out {
		if err != nil {
			out[i] = checked{ok: true, err: err}
			continue
		}
		out[i] = checked{ok: v[2*i] == 1, retry: time.Duration(v[2*i+1]) * time.Microsecond}
	}
	return out
}

// runPipelined checks a batch in one pipeline, one script call a key (a cluster's
// pipeline splits by node; each key is in its own slot).
func (s *SharedLimiter) runPipelined(ctx context.Context, cs []check) []checked {
	out := make([]checked, len(cs))
	todo := make([]int, len(cs))
	for i := range todo {
		todo[i] = i
	}
	for attempt := 0; len(todo) > 0; attempt++ {
		pipe := s.rdb.Pipeline()
		cmds := make([]*goredis.Cmd, len(todo))
		for j, i := range todo {
			cmds[j] = gcraScript.EvalSha(ctx, pipe, []string{cs[i].key}, cs[i].rps, cs[i].burst)
		}
		_, _ = pipe.Exec(ctx) // each command holds its own error
		var again []int
		for j, i := range todo {
			// NOSCRIPT: the script did not run, so it runs again once loaded (on a
			// cluster, some nodes may have it and others not).
			if attempt == 0 && goredis.HasErrorPrefix(cmds[j].Err(), "NOSCRIPT") {
				again = append(again, i)
				continue
			}
			out[i] = result(cmds[j])
		}
		if len(again) > 0 {
			if err := loadScripts(ctx, s.rdb, gcraScript); err != nil {
				for _, i := range again {
					out[i] = checked{ok: true, err: err}
				}
				return out
			}
		}
		todo = again
	}
	return out
}

// result reads a script call's answer: {allowed, microseconds until a token is due}.
func result(cmd *goredis.Cmd) checked {
	v, err := cmd.Int64Slice()
	switch {
	case err != nil:
		return checked{ok: true, err: err}
	case len(v) != 2:
		return checked{ok: true, err: fmt.Errorf("unexpected answer %v", v)}
	}
	return checked{ok: v[0] == 1, retry: time.Duration(v[1]) * time.Microsecond}
}
