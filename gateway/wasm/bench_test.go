package wasm

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestGuestCallsAllocateNothing: the host's side of a guest call (the
// pool, the deadline, the call's context and state) allocates nothing: no
// context, timer or goroutine per call. admit.wasm makes two calls per
// request (it keeps its instance for handle_response) and asks the host
// for nothing.
func TestGuestCallsAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	m := newTestManager(t, Options{DemoteAfter: time.Microsecond}) // the thread watch too, where it may
	mustPut(t, m, "admit", Spec{Wasm: mustReadWasm(t, admitWasm), PoolSize: 1})
	h := newTestHost()
	ctx := context.Background()
	next := func(context.Context) error { return nil }
	allocs := testing.AllocsPerRun(1000, func() {
		if v := m.Handle(ctx, h, next); !v.Admitted {
			t.Fatalf("got %+v, want admitted", v)
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per request, want 0", allocs)
	}
}

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
