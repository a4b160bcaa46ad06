package wasm

import (
	"context"
	"encoding/json"
	"testing"
)

// BenchmarkChain measures one request through the admission chain: no
// plugin, a minimal hand-written guest (the host's own cost), and Go SDK
// plugins (the cost a real plugin adds). Compare ns/op with "none" for the
// overhead ratio.
func BenchmarkChain(b *testing.B) {
	cases := []struct {
		name, wasm, config string
	}{
		{"none", "", ""},
		{"admit-wat", admitWasm, ""},
		{"blocklist-go", blocklistWasm, `{"users":["1","2","3"],"ips":["198.51.100.0/24"]}`},
		{"attemptlimit-go", attemptlimitWasm, `{"max":1000000000,"window_ms":60000}`},
	}
	next := func(context.Context) error { return nil }
	for _, c := range cases {
		m := newTestManager(b, Options{DefaultPoolSize: 8})
		if c.wasm != "" {
			mustPut(b, m, "p", Spec{Wasm: mustReadWasm(b, c.wasm), Config: json.RawMessage(c.config)})
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h := newTestHost("X-Seckill-User", "42", "X-Real-IP", "192.0.2.1")
				if v := m.Handle(context.Background(), h, next); !v.Admitted {
					b.Fatalf("got %+v, want admitted", v)
				}
			}
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					h := newTestHost("X-Seckill-User", "42", "X-Real-IP", "192.0.2.1")
					if v := m.Handle(context.Background(), h, next); !v.Admitted {
						b.Errorf("got %+v, want admitted", v)
						return
					}
				}
			})
		})
	}
}
