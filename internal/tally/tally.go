// Package tally counts what a process refused or shed, by activity and reason, and
// hands the counts over in deltas to a shared store (Redis), so the fleet's stats are
// sums over every process rather than one process's.
package tally

import "sync"

// maxActivities bounds the activities counted between two drains: activity ids come
// from clients, and a flood of made-up ones must not grow memory. Past it, counts of
// new activities go to activity 0 (the process's totals only).
const maxActivities = 10_000

// Counts are counters by activity and name since the last Drain. It is safe for
// concurrent use.
type Counts struct {
	mu  sync.Mutex
	per map[int64]map[string]int64
}

// Add counts n of name for activity.
func (c *Counts) Add(activity int64, name string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.per == nil {
		c.per = map[int64]map[string]int64{}
	}
	m := c.per[activity]
	if m == nil {
		if len(c.per) >= maxActivities {
			activity = 0
			if m = c.per[0]; m == nil {
				m = map[string]int64{}
				c.per[0] = m
			}
		} else {
			m = map[string]int64{}
			c.per[activity] = m
		}
	}
	m[name] += n
}

// Drain returns the counts since the last Drain and starts afresh.
func (c *Counts) Drain() map[int64]map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.per
	c.per = nil
	return out
}

// Undrain gives back counts a failed hand-over took, so they go with the next one.
func (c *Counts) Undrain(d map[int64]map[string]int64) {
	for a, m := range d {
		for name, n := range m {
			c.Add(a, name, n)
		}
	}
}
