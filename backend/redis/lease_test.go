package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/seckill/flashsale/backend/redis"
)

// TestLeaseTokensOutliveTheirCounter: the fencing counter lost with its node (a
// restart empty) does not hand the next holder a token below the ones the duties'
// data has seen, which would refuse that holder's repairs for good. Fails before the
// fix: the token started again at 1.
func TestLeaseTokensOutliveTheirCounter(t *testing.T) {
	ctx := context.Background()
	for name, rdb := range clients(t) {
		t.Run(name, func(t *testing.T) {
			l := redis.NewLeases(rdb)
			lease := fmt.Sprint("counter-lost-", nextID.Add(1))
			first, ok, err := l.Hold(ctx, lease, "a", time.Minute)
			if err != nil || !ok {
				t.Fatalf("hold: got %d, %v, %v", first, ok, err)
			}
			if err := rdb.Del(ctx, "sk:{lease}:fence").Err(); err != nil {
				t.Fatal(err)
			}
			if err := l.Release(ctx, lease, "a"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond) // a restart takes longer than the clock's step
			next, ok, err := l.Hold(ctx, lease, "b", time.Minute)
			if err != nil || !ok || next <= first {
				t.Fatalf("the next holder after the counter was lost: got token %d, %v, %v; want above %d", next, ok, err, first)
			}
			if again, ok, err := l.Hold(ctx, lease, "b", time.Minute); err != nil || !ok || again != next {
				t.Fatalf("renewed: got %d, %v, %v; want %d", again, ok, err, next)
			}
			l.Release(ctx, lease, "b")
		})
	}
}
