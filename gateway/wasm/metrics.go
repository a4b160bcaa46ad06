package wasm

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the plugins' counters as Prometheus metrics, labelled
// by plugin. Register it on the gateway's registry:
//
//	reg.MustRegister(wasm.NewCollector(m))
type Collector struct {
	m *Manager

	plugins, calls, admitted, rejections, errors, timeouts *prometheus.Desc
	poolExhausted, created, discarded, live, latency       *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector of m's plugins.
func NewCollector(m *Manager) *Collector {
	label := []string{"plugin"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc("seckill_wasm_"+name, help, labels, nil)
	}
	return &Collector{
		m:          m,
		plugins:    d("plugins", "Admission plugins loaded.", nil),
		calls:      d("plugin_calls_total", "Requests that reached the plugin.", label),
		admitted:   d("plugin_admitted_total", "Requests the plugin admitted (called next).", label),
		rejections: d("plugin_rejections_total", "Requests the plugin rejected.", label),
		errors:     d("plugin_errors_total", "Failed plugin calls: traps, exits, sdk Fail, host errors (timeouts excluded).", label),
		timeouts:   d("plugin_timeouts_total", "Plugin calls that ran past their deadline.", label),
		poolExhausted: d("plugin_pool_exhausted_total",
			"Requests that found no free instance before their deadline, the pool at its maximum: failed per the fail policy (admitted unchecked if open).", label),
		created:   d("plugin_instances_created_total", "Guest instances created.", label),
		discarded: d("plugin_instances_discarded_total", "Guest instances thrown away after a trap or timeout.", label),
		live:      d("plugin_instances", "Guest instances that exist (idle or busy).", label),
		latency:   d("plugin_call_duration_seconds", "Duration of handle_request calls, pool wait included.", label),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.plugins, c.calls, c.admitted, c.rejections, c.errors,
		c.timeouts, c.poolExhausted, c.created, c.discarded, c.live, c.latency} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	infos := c.m.List()
	ch <- prometheus.MustNewConstMetric(c.plugins, prometheus.GaugeValue, float64(len(infos)))
	for _, info := range infos {
		s, name := info.Stats, info.Name
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name)
		}
		counter(c.calls, s.Calls)
		counter(c.admitted, s.Admitted)
		counter(c.rejections, s.Rejections)
		counter(c.errors, s.Errors)
		counter(c.timeouts, s.Timeouts)
		counter(c.poolExhausted, s.PoolExhausted)
		counter(c.created, s.InstancesCreated)
		counter(c.discarded, s.InstancesDiscarded)
		ch <- prometheus.MustNewConstMetric(c.live, prometheus.GaugeValue, float64(s.InstancesLive), name)

		buckets := make(map[float64]uint64, len(s.LatencyBounds))
		var cum, count uint64
		for i, bound := range s.LatencyBounds {
			cum += s.LatencyBuckets[i]
			buckets[bound.Seconds()] = cum
		}
		for _, n := range s.LatencyBuckets {
			count += n
		}
		ch <- prometheus.MustNewConstHistogram(c.latency, count, s.LatencySum.Seconds(), buckets, name)
	}
}
