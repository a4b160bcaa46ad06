package bench

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/seckill/flashsale/bench/load"
	"github.com/seckill/flashsale/gateway/api"
)

// Scenario names.
const (
	Hot       = "hot"
	Mixed     = "mixed"
	Sustained = "sustained"
	Capacity  = "capacity"
)

// Strategies the backend has.
var Strategies = []string{"sync", "async", "bucket"}

// Scenarios in the order they run.
var Scenarios = []string{Hot, Mixed, Sustained, Capacity}

// Sizes are the knobs of the scenarios. Defaults are the figures, trimmed to
// fit a 2-core machine.
type Sizes struct {
	// hot: one item, many more attempts than stock.
	HotStock       int64
	HotAttempts    int
	HotUsers       int
	HotConcurrency int

	// mixed: MixedItems items, the first MixedHotItems with MixedHotStock each and the
	// rest with MixedColdStock each; attempts pick an item by a Zipf law of
	// exponent MixedSkew (a few hot items, a long cold tail).
	MixedItems       int
	MixedHotItems    int
	MixedHotStock    int64
	MixedColdStock   int64
	MixedSkew        float64
	MixedAttempts    int
	MixedUsers       int
	MixedConcurrency int

	// sustained: open loop at Rate for Duration, every attempt a new user, stock for
	// all of them: the steady-state order rate.
	Rate        float64
	Duration    time.Duration
	MaxInFlight int

	// capacity: one item with a unit for every attempt, every attempt a new user, as
	// fast as CapacityConcurrency clients go: every attempt can buy, so the run
	// measures the admitted path's rate, not the edge's shedding.
	CapacityAttempts    int
	CapacityConcurrency int

	// flood: one item of FloodStock units and FloodDemand shoppers per unit arriving
	// at FloodRate a second, each following the waiting room (k FloodK) until a final
	// answer or FloodPatience; run with the waiting room off and on (flood.go).
	FloodStock    int64
	FloodDemand   int
	FloodRate     float64
	FloodK        float64
	FloodPatience time.Duration
	// FloodWait: a queued shopper's next try waits at the gateway this long (?wait=);
	// 0: it asks again after retry_after_ms.
	FloodWait time.Duration
}

// DefaultSizes are what `make bench` runs.
func DefaultSizes() Sizes {
	return Sizes{
		HotStock: 1000, HotAttempts: 100_000, HotUsers: 20_000, HotConcurrency: 128,
		MixedItems: 50, MixedHotItems: 5, MixedHotStock: 200, MixedColdStock: 50, MixedSkew: 1.5,
		MixedAttempts: 30_000, MixedUsers: 10_000, MixedConcurrency: 128,
		Rate: 200, Duration: 60 * time.Second, MaxInFlight: 2048,
		CapacityAttempts: 20_000, CapacityConcurrency: 128,
		FloodStock: 100, FloodDemand: 100, FloodRate: 4000, FloodK: 1.5, FloodPatience: time.Minute, FloodWait: 5 * time.Second,
	}
}

// scenario is one workload: its sale and how attempts are made.
type scenario struct {
	name        string
	description string
	items       []api.ItemSpec
	users       int
	perUser     int
	pace        load.Config
	pick        func(i int) (user, item int) // 0-based user and item of attempt i
}

func (s *scenario) stock() int64 {
	var n int64
	for _, it := range s.items {
		n += it.Stock
	}
	return n
}

func buildScenario(name string, z Sizes) (*scenario, error) {
	switch name {
	case Hot:
		if z.HotStock <= 0 || z.HotAttempts <= 0 || z.HotUsers <= 0 {
			return nil, fmt.Errorf("hot: stock, attempts and users must be positive")
		}
		users := z.HotUsers
		return &scenario{
			name:        Hot,
			description: fmt.Sprintf("one item of %d units, %d attempts from %d users (round robin), per-user limit 1, closed loop of %d clients", z.HotStock, z.HotAttempts, users, z.HotConcurrency),
			items:       []api.ItemSpec{{Name: "hot item", PriceCents: 9900, Stock: z.HotStock}},
			users:       users, perUser: 1,
			pace: load.Config{Mode: load.Closed, Concurrency: z.HotConcurrency, Count: z.HotAttempts, Duration: 10 * time.Minute},
			pick: func(i int) (int, int) { return i % users, 0 },
		}, nil
	case Mixed:
		if z.MixedItems <= 0 || z.MixedAttempts <= 0 || z.MixedUsers <= 0 || z.MixedHotItems > z.MixedItems {
			return nil, fmt.Errorf("mixed: items, attempts and users must be positive, hot items at most items")
		}
		items := make([]api.ItemSpec, z.MixedItems)
		for k := range items {
			stock, kind := z.MixedColdStock, "cold"
			if k < z.MixedHotItems {
				stock, kind = z.MixedHotStock, "hot"
			}
			items[k] = api.ItemSpec{Name: fmt.Sprintf("%s item %d", kind, k+1), PriceCents: int64(1000 + 100*k), Stock: stock}
		}
		cdf := zipfCDF(z.MixedItems, z.MixedSkew)
		users := z.MixedUsers
		return &scenario{
			name: Mixed,
			description: fmt.Sprintf("%d items (%d hot of %d units, %d cold of %d), %d attempts from %d users, items by Zipf(s=%.2g), per-user limit 1 per item, closed loop of %d clients",
				z.MixedItems, z.MixedHotItems, z.MixedHotStock, z.MixedItems-z.MixedHotItems, z.MixedColdStock, z.MixedAttempts, users, z.MixedSkew, z.MixedConcurrency),
			items: items, users: users, perUser: 1,
			pace: load.Config{Mode: load.Closed, Concurrency: z.MixedConcurrency, Count: z.MixedAttempts, Duration: 10 * time.Minute},
			pick: func(i int) (int, int) {
				u := float64(splitmix(uint64(i))>>11) / (1 << 53)
				return i % users, sort.SearchFloat64s(cdf, u)
			},
		}, nil
	case Flood:
		return floodScenario(z)
	case Sustained:
		if z.Rate <= 0 || z.Duration <= 0 {
			return nil, fmt.Errorf("sustained: rate and duration must be positive")
		}
		n := int(z.Rate * z.Duration.Seconds())
		if n <= 0 {
			return nil, fmt.Errorf("sustained: rate x duration is under one attempt")
		}
		return &scenario{
			name:        Sustained,
			description: fmt.Sprintf("open loop at %.0f attempts/s for %s, one item with a unit for every attempt, each attempt a new user (%d), at most %d in flight", z.Rate, z.Duration, n, z.MaxInFlight),
			items:       []api.ItemSpec{{Name: "steady item", PriceCents: 500, Stock: int64(n)}},
			users:       n, perUser: 1,
			pace: load.Config{Mode: load.Open, Rate: z.Rate, Concurrency: z.MaxInFlight, Count: n, Duration: z.Duration + time.Second},
			pick: func(i int) (int, int) { return i, 0 },
		}, nil
	case Capacity:
		n := z.CapacityAttempts
		if n <= 0 || z.CapacityConcurrency <= 0 {
			return nil, fmt.Errorf("capacity: attempts and concurrency must be positive")
		}
		return &scenario{
			name:        Capacity,
			description: fmt.Sprintf("one item of %d units, %d attempts each from a new user (stock = attempts = users), per-user limit 1, closed loop of %d clients: every attempt can buy", n, n, z.CapacityConcurrency),
			items:       []api.ItemSpec{{Name: "capacity item", PriceCents: 700, Stock: int64(n)}},
			users:       n, perUser: 1,
			pace: load.Config{Mode: load.Closed, Concurrency: z.CapacityConcurrency, Count: n, Duration: 10 * time.Minute},
			pick: func(i int) (int, int) { return i, 0 },
		}, nil
	}
	return nil, fmt.Errorf("unknown scenario %q (want %s, %s, %s, %s or %s)", name, Hot, Mixed, Sustained, Capacity, Flood)
}

// zipfCDF is the cumulative distribution of P(k) ~ 1/(k+1)^s over n items.
func zipfCDF(n int, s float64) []float64 {
	cdf := make([]float64, n)
	var sum float64
	for k := range n {
		sum += 1 / math.Pow(float64(k+1), s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	cdf[n-1] = 1
	return cdf
}

// splitmix is a fixed hash of i: the same attempts pick the same items every run.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
