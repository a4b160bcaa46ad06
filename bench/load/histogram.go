package load

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram records durations in log-linear buckets, like an HDR histogram: values
// below 64 ns are exact, above that every power of two is split into 64 equal
// buckets, so a percentile is off by at most 1/64 (1.6%) of its value. Recording is
// lock-free and safe from many goroutines; memory is fixed (about 30 KB).
type Histogram struct {
	counts [nBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // ns
	min    atomic.Int64  // ns; valid when n > 0
	max    atomic.Int64
}

const (
	subBits  = 6
	subCount = 1 << subBits // buckets per power of two
	nBuckets = subCount + (64-subBits)*subCount
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	h := &Histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	exp := bits.Len64(v) - 1 // >= subBits
	shift := exp - subBits
	sub := int(v>>shift) - subCount
	return subCount + (exp-subBits)*subCount + sub
}

// bucketRange is the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width uint64) {
	if i < subCount {
		return uint64(i), 1
	}
	exp := (i-subCount)/subCount + subBits
	sub := uint64((i - subCount) % subCount)
	shift := exp - subBits
	return (subCount + sub) << shift, 1 << shift
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(uint64(v))].Add(1)
	h.n.Add(1)
	h.sum.Add(uint64(v))
	for {
		m := h.min.Load()
		if v >= m || h.min.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.Count() == 0 {
		return
	}
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	for {
		m, v := h.min.Load(), o.min.Load()
		if v >= m || h.min.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m, v := h.max.Load(), o.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count is how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Min is the smallest value recorded (0 when empty).
func (h *Histogram) Min() time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return time.Duration(h.min.Load())
}

// Max is the largest value recorded (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean is the average (exact).
func (h *Histogram) Mean() time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the value at quantile q (0 < q <= 1) by the nearest-rank method:
// the smallest recorded value such that at least q of all values are at or below it,
// give or take the bucket width. 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, w := bucketRange(i)
			v := int64(lo + w/2) // the bucket's middle: error at most half a bucket
			return time.Duration(min(max(v, h.min.Load()), h.max.Load()))
		}
	}
	return h.Max()
}

// Summary is a histogram reduced to the figures a report shows.
type Summary struct {
	Count uint64  `json:"count"`
	MinMs float64 `json:"min_ms"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	MaxMs float64 `json:"max_ms"`
}

// Ms is a duration in milliseconds, rounded to microseconds.
func Ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// Summary reduces h.
func (h *Histogram) Summary() Summary {
	return Summary{Count: h.Count(), MinMs: Ms(h.Min()), Mean: Ms(h.Mean()), P50: Ms(h.Quantile(0.50)), P90: Ms(h.Quantile(0.90)),
		P99: Ms(h.Quantile(0.99)), P999: Ms(h.Quantile(0.999)), MaxMs: Ms(h.Max())}
}
