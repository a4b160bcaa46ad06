package redis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Tallies are the fleet's counts of what each process refused or shed, by activity:
// one hash per activity (sk:{tally:a<id>}), fields "<prefix><name>", summed by
// HINCRBY from every process and kept a week.
type Tallies struct {
	e *Events
}

// NewTallies returns Tallies on the same Redis as e.
func NewTallies(e *Events) *Tallies { return &Tallies{e: e} }

func tallyKey(activity int64) string { return "sk:{tally:a" + strconv.FormatInt(activity, 10) + "}" }

// Add adds counts (by activity, then name) under prefix, in one round trip.
func (t *Tallies) Add(ctx context.Context, prefix string, counts map[int64]map[string]int64) error {
	if len(counts) == 0 {
		return nil
	}
	pipe := t.e.rdb.Pipeline()
	for a, m := range counts {
		if a <= 0 {
			continue
		}
		k := tallyKey(a)
		for name, n := range m {
			pipe.HIncrBy(ctx, k, prefix+name, n)
		}
		pipe.Expire(ctx, k, 7*24*time.Hour)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("add tallies: %w", err)
	}
	return nil
}

// Read returns an activity's counts under prefix, by name.
func (t *Tallies) Read(ctx context.Context, activity int64, prefix string) (map[string]int64, error) {
	all, err := t.e.rdb.HGetAll(ctx, tallyKey(activity)).Result()
	if err != nil {
		return nil, fmt.Errorf("read tallies of activity %d: %w", activity, err)
	}
	out := map[string]int64{}
	for f, v := range all {
		if name, ok := strings.CutPrefix(f, prefix); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			out[name] = n
		}
	}
	return out, nil
}
