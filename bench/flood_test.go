package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/seckill/flashsale/bench/load"
)

// kendallTauPairs is Kendall's tau by its definition: every pair, concordant minus
// discordant, over the number of pairs.
func kendallTauPairs(v []int) float64 {
	var c, d float64
	for i := range v {
		for j := i + 1; j < len(v); j++ {
			if v[i] < v[j] {
				c++
			} else {
				d++
			}
		}
	}
	return (c - d) / (c + d)
}

func TestKendallTau(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []int
		want   float64
	}{
		{"empty", nil, 1},
		{"one", []int{7}, 1},
		{"ascending", []int{1, 2, 3, 4, 5}, 1},
		{"descending", []int{5, 4, 3, 2, 1}, -1},
		{"one swap of four", []int{1, 3, 2, 4}, 1 - 2*1.0/6},
		{"gaps in the values", []int{10, 40, 20, 90}, 1 - 2*1.0/6},
		{"half and half", []int{2, 1, 4, 3}, 1 - 2*2.0/6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := kendallTau(tc.values); math.Abs(got-tc.want) > 1e-12 {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	// The merge sort's count of inversions against the pairs, on shuffles of every
	// length up to 300 (odd lengths and lengths that are not powers of two included).
	r := rand.New(rand.NewPCG(1, 2))
	for n := 2; n <= 300; n += 7 {
		v := r.Perm(n)
		if got, want := kendallTau(v), kendallTauPairs(v); math.Abs(got-want) > 1e-12 {
			t.Fatalf("n %d: got %v, want %v", n, got, want)
		}
	}
	// kendallTau leaves its argument alone.
	v := []int{3, 1, 2}
	kendallTau(v)
	if v[0] != 3 || v[1] != 1 || v[2] != 2 {
		t.Fatalf("got %v after the call, want [3 1 2]", v)
	}
}

func TestFloodScenario(t *testing.T) {
	z := DefaultSizes()
	sc, err := buildScenario(Flood, z)
	if err != nil {
		t.Fatal(err)
	}
	n := int(z.FloodStock) * z.FloodDemand
	if sc.stock() != z.FloodStock || sc.users != n || sc.pace.Count != n || sc.pace.Mode != load.Open || sc.perUser != 1 {
		t.Fatalf("got stock %d, %d users, %d attempts, mode %s, per-user %d; want %d units, %d shoppers each once, open loop, limit 1",
			sc.stock(), sc.users, sc.pace.Count, sc.pace.Mode, sc.perUser, z.FloodStock, n)
	}
	for i := range n {
		if u, k := sc.pick(i); u != i || k != 0 {
			t.Fatalf("attempt %d: got user %d item %d, want user %d item 0", i, u, k, i)
		}
	}
	for _, bad := range []func(*Sizes){
		func(z *Sizes) { z.FloodStock = 0 },
		func(z *Sizes) { z.FloodDemand = 0 },
		func(z *Sizes) { z.FloodRate = 0 },
		func(z *Sizes) { z.FloodK = 0 },
		func(z *Sizes) { z.FloodPatience = 0 },
	} {
		z := DefaultSizes()
		bad(&z)
		if _, err := buildScenario(Flood, z); err == nil {
			t.Fatalf("sizes %+v: got a scenario, want an error", z)
		}
	}
	if slices.Contains(Scenarios, Flood) {
		t.Fatal("flood is in \"all\"; it runs only when named")
	}
}
