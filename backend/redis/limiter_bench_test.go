package redis_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/seckill/flashsale/backend/redis"
	"github.com/seckill/flashsale/backend/testenv"
	"github.com/seckill/flashsale/gateway/ratelimit"
)

// BenchmarkLimiterCost is what one rate-limit check costs a gateway, side by side:
// a local token bucket (the global and per-item limits, each gateway holding its share
// of the fleet's rate) against the shared per-user bucket in Redis (GCRA; the checks
// that arrive together share one script call on one node, one pipeline on a cluster).
// Run:
//
//	go test -run '^$' -bench LimiterCost -benchtime 2s ./backend/redis/
func BenchmarkLimiterCost(b *testing.B) {
	b.Run("local", func(b *testing.B) {
		l := ratelimit.New(ratelimit.Limits{Global: ratelimit.Rule{RPS: 1e9, Burst: 1e6}, User: ratelimit.Rule{RPS: 1e9, Burst: 1e6}}, 100_000)
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				l.Allow(ratelimit.User, strconv.Itoa(i%50_000))
			}
		})
	})
	for _, par := range []int{1, 32} {
		name := "shared redis"
		if par > 1 {
			name += " x" + strconv.Itoa(par) // par callers a core at once, as a gateway under load
		}
		b.Run(name, func(b *testing.B) {
			s := redis.NewSharedLimiter(testenv.Redis(b), "bench-"+testenv.ID())
			ctx := context.Background()
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					if _, _, err := s.Allow(ctx, "u:"+strconv.Itoa(i%50_000), 1e6, 1e6); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
