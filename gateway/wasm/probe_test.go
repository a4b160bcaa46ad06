package wasm

import (
	"encoding/json"
	"testing"
)

// TestProbeHeaderConfig: probes configured with {"header": ...} take their mode
// from that header only, so tests can make one probe of a chain fail and not
// another (gateway/faults_test.go does).
func TestProbeHeaderConfig(t *testing.T) {
	m := newTestManager(t, Options{})
	probe := mustReadWasm(t, probeWasm)
	mustPut(t, m, "a", Spec{Wasm: probe, Order: 1, Config: json.RawMessage(`{"header":"X-Fault-A"}`)})
	mustPut(t, m, "b", Spec{Wasm: probe, Order: 2, Config: json.RawMessage(`{"header":"X-Fault-B"}`), FailPolicy: FailClosed})
	tests := []struct {
		name       string
		header     []string
		wantAdmit  bool
		wantPlugin string
	}{
		{"no header", nil, true, ""},
		{"X-Probe is not listened to", []string{"X-Probe", "reject"}, true, ""},
		{"a rejects", []string{"X-Fault-A", "reject"}, false, "a"},
		{"b rejects", []string{"X-Fault-B", "reject"}, false, "b"},
		{"a fails open", []string{"X-Fault-A", "fail"}, true, ""},
		{"b fails closed", []string{"X-Fault-B", "fail"}, false, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ran := handle(m, newTestHost(tt.header...))
			if v.Admitted != tt.wantAdmit || ran != tt.wantAdmit || v.Plugin != tt.wantPlugin {
				t.Errorf("got admitted=%v next ran=%v plugin=%q, want %v and %q (%+v)", v.Admitted, ran, v.Plugin, tt.wantAdmit, tt.wantPlugin, v)
			}
		})
	}
}
