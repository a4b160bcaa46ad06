package wasm

import (
	"sync/atomic"
	"time"
)

// latencyBuckets are the upper bounds of the call latency histogram.
var latencyBuckets = []time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond,
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond,
	2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, time.Second,
}

// stats are the counters of one plugin name. They live as long as the name
// is loaded, across replacements, so rates stay continuous over hot swaps.
type stats struct {
	calls, admitted, rejections, errors, timeouts atomic.Uint64
	poolExhausted                                 atomic.Uint64
	created, discarded                            atomic.Uint64
	latencyNanos                                  atomic.Uint64
	buckets                                       [15]atomic.Uint64 // len(latencyBuckets)+1 (+Inf)
}

func (s *stats) observe(d time.Duration) {
	s.latencyNanos.Add(uint64(d))
	i := 0
	for i < len(latencyBuckets) && d > latencyBuckets[i] {
		i++
	}
	s.buckets[i].Add(1)
}

// Stats is a snapshot of a plugin's counters.
type Stats struct {
	Calls      uint64 // handle_request calls attempted (requests that reached the plugin)
	Admitted   uint64 // the plugin called next
	Rejections uint64 // the plugin rejected the request
	Errors     uint64 // traps, exits, sdk fail, host errors, closed plugin (timeouts not included)
	Timeouts   uint64 // the guest ran past its deadline
	// PoolExhausted counts requests that found no free instance before
	// their deadline with the pool grown to its maximum: each failed per
	// the fail policy, so under FailOpen each was admitted unchecked.
	PoolExhausted uint64

	InstancesCreated   uint64
	InstancesDiscarded uint64 // thrown away after a trap or timeout
	InstancesLive      int    // instances that exist now (idle or busy)

	LatencySum time.Duration // total time of handle_request calls, pool wait included
	LatencyP50 time.Duration // estimated from the histogram
	LatencyP99 time.Duration
	// LatencyBuckets counts calls per bucket: LatencyBuckets[i] calls took at
	// most LatencyBounds[i]; the last one counts the rest (+Inf).
	LatencyBuckets []uint64
	LatencyBounds  []time.Duration
}

func (s *stats) snapshot() Stats {
	st := Stats{
		Calls:              s.calls.Load(),
		Admitted:           s.admitted.Load(),
		Rejections:         s.rejections.Load(),
		Errors:             s.errors.Load(),
		Timeouts:           s.timeouts.Load(),
		PoolExhausted:      s.poolExhausted.Load(),
		InstancesCreated:   s.created.Load(),
		InstancesDiscarded: s.discarded.Load(),
		LatencySum:         time.Duration(s.latencyNanos.Load()),
		LatencyBuckets:     make([]uint64, len(s.buckets)),
		LatencyBounds:      latencyBuckets,
	}
	for i := range s.buckets {
		st.LatencyBuckets[i] = s.buckets[i].Load()
	}
	st.LatencyP50 = quantile(st.LatencyBuckets, 0.50)
	st.LatencyP99 = quantile(st.LatencyBuckets, 0.99)
	return st
}

// quantile estimates the q-quantile from bucket counts, interpolating
// linearly within the bucket (the +Inf bucket reports its lower bound).
func quantile(counts []uint64, q float64) time.Duration {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var cum uint64
	for i, c := range counts {
		if float64(cum+c) >= rank && c > 0 {
			lo := time.Duration(0)
			if i > 0 {
				lo = latencyBuckets[i-1]
			}
			if i == len(latencyBuckets) {
				return lo
			}
			hi := latencyBuckets[i]
			frac := (rank - float64(cum)) / float64(c)
			return lo + time.Duration(frac*float64(hi-lo))
		}
		cum += c
	}
	return latencyBuckets[len(latencyBuckets)-1]
}
