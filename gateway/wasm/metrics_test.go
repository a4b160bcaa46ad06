package wasm

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCollector(t *testing.T) {
	m := newTestManager(t, Options{})
	mustPut(t, m, "probe", Spec{Wasm: mustReadWasm(t, probeWasm)})
	handle(m, newTestHost())
	handle(m, newTestHost("X-Probe", "reject"))

	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(m)); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			switch {
			case mt.GetCounter() != nil:
				got[f.GetName()] = mt.GetCounter().GetValue()
			case mt.GetGauge() != nil:
				got[f.GetName()] = mt.GetGauge().GetValue()
			case mt.GetHistogram() != nil:
				got[f.GetName()] = float64(mt.GetHistogram().GetSampleCount())
			}
			if f.GetName() != "seckill_wasm_plugins" {
				if l := mt.GetLabel(); len(l) != 1 || l[0].GetName() != "plugin" || l[0].GetValue() != "probe" {
					t.Errorf("%s: got labels %v, want plugin=probe", f.GetName(), l)
				}
			}
		}
	}
	want := map[string]float64{
		"seckill_wasm_plugins":                      1,
		"seckill_wasm_plugin_calls_total":           2,
		"seckill_wasm_plugin_admitted_total":        1,
		"seckill_wasm_plugin_rejections_total":      1,
		"seckill_wasm_plugin_errors_total":          0,
		"seckill_wasm_plugin_timeouts_total":        0,
		"seckill_wasm_plugin_pool_exhausted_total":  0,
		"seckill_wasm_plugin_instances":             2,
		"seckill_wasm_plugin_call_duration_seconds": 2,
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("%s: got %v (present %v), want %v", name, g, ok, w)
		}
	}
}
