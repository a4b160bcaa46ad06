package wasm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// fillerModule is a guest that admits every request, followed by funcs
// functions of straight-line arithmetic (about 1 KiB of machine code each)
// that only make its compiled code big. variant goes into every function, so
// two variants are different modules, compiled apart.
func fillerModule(variant uint32, funcs int) []byte {
	const i32, i64, funcType = 0x7f, 0x7e, 0x60
	// (i32) -> i32: x = x*variant + k, 64 times.
	filler := []byte{0x00, 0x20, 0x00} // no locals; local.get 0
	for k := range 64 {
		filler = append(filler, 0x41)
		filler = appendS32(filler, int32(variant))
		filler = append(filler, 0x6c, 0x41) // i32.mul, i32.const
		filler = appendS32(filler, int32(k))
		filler = append(filler, 0x6a) // i32.add
	}
	filler = append(filler, 0x0b)

	types := [][]byte{{0x00}, {0x01}}
	bodies := [][]byte{wasmBody([]byte{0x00, 0x42, 0x01, 0x0b}), wasmBody([]byte{0x00, 0x0b})}
	for range funcs {
		types = append(types, []byte{0x02})
		bodies = append(bodies, wasmBody(filler))
	}
	b := []byte("\x00asm\x01\x00\x00\x00")
	b = append(b, wasmSection(secType, wasmVec(
		[]byte{funcType, 0x00, 0x01, i64},
		[]byte{funcType, 0x02, i32, i32, 0x00},
		[]byte{funcType, 0x01, i32, 0x01, i32},
	))...)
	b = append(b, wasmSection(secFunction, wasmVec(types...))...)
	b = append(b, wasmSection(5, wasmVec([]byte{0x00, 0x01}))...) // memory: min 1 page
	b = append(b, wasmSection(secExport, wasmVec(
		wasmExport("handle_request", 0x00, 0),
		wasmExport("handle_response", 0x00, 1),
		wasmExport("memory", 0x02, 0),
	))...)
	return append(b, wasmSection(secCode, wasmVec(bodies...))...)
}

// wasmVec, wasmSection, wasmBody and wasmExport assemble parts of a Wasm
// binary: a vector, a section, a function body (locals and code, ending
// with end) with its size, an export.
func wasmVec(items ...[]byte) []byte {
	b := appendU32(nil, uint32(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func wasmSection(id byte, content []byte) []byte {
	return append(append([]byte{id}, appendU32(nil, uint32(len(content)))...), content...)
}

func wasmBody(code []byte) []byte { return append(appendU32(nil, uint32(len(code))), code...) }

func wasmExport(name string, kind byte, index uint32) []byte {
	return appendU32(append(appendName(nil, name), kind), index)
}

// memoryUse is the Go heap in use after a collection and the resident set
// of the process (0 where /proc is missing), in bytes.
func memoryUse(tb testing.TB) (heap, rss uint64) {
	tb.Helper()
	runtime.GC()
	runtime.GC() // the first one runs the finalizers that free compiled code
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return ms.HeapAlloc, 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return ms.HeapAlloc, kb << 10
		}
	}
	return ms.HeapAlloc, 0
}

// TestSwapsReleaseMemory replaces a plugin 1,000 times, with a different
// module each time (compiled each time) and with the same module and a
// different config (a Go guest compiled once, new instances each time), and checks
// that the Go heap and the resident set stay flat: a replaced plugin's
// compiled code, runtime and instances are all released. Each module's
// machine code is about 100 KiB, so keeping it (in the compilation cache,
// say) would grow the heap by some 70 MiB and the resident set by some 190 MiB over the run.
//
// The figures are logged every 100 swaps: go test -run TestSwapsReleaseMemory -v ./gateway/wasm/
func TestSwapsReleaseMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("1,000 compiles, and memory figures that under -race would measure the race detector")
	}
	const swaps, funcs = 1000, 100
	// Bounds well under what keeping every module would cost (swaps *
	// ~100 KiB of code, plus its metadata on the heap), well over the
	// noise of a run.
	const maxHeapGrowth, maxRSSGrowth = 16 << 20, 48 << 20
	probe := mustReadWasm(t, probeWasm)
	tests := []struct {
		name string
		spec func(i int) Spec
	}{
		{"other module", func(i int) Spec { return Spec{Wasm: fillerModule(uint32(i), funcs), PoolSize: 1} }},
		{"other config", func(i int) Spec {
			return Spec{Wasm: probe, PoolSize: 1, Config: json.RawMessage(strconv.Itoa(i))}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The manager's own in-memory compilation cache, as in the
			// gateway (the tests' cache on disk would keep every module).
			m, err := NewManager(context.Background(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := m.Close(context.Background()); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			put := func(i int) {
				t.Helper()
				if _, err := m.Put(context.Background(), "p", tt.spec(i)); err != nil {
					t.Fatalf("Put %d: %v", i, err)
				}
				if v, _ := handle(m, newTestHost()); !v.Admitted {
					t.Fatalf("swap %d: got %+v, want admitted", i, v)
				}
			}
			// Warm up: the first swaps fill pools and caches that stay.
			for i := range 20 {
				put(-1 - i)
			}
			heap0, rss0 := memoryUse(t)
			var log bytes.Buffer
			log.WriteString("swaps  heap MiB  rss MiB\n")
			heap, rss := heap0, rss0
			for i := 1; i <= swaps; i++ {
				put(i)
				if i%100 == 0 {
					heap, rss = memoryUse(t)
					log.WriteString(strconv.Itoa(i) + "  " + mib(heap) + "  " + mib(rss) + "\n")
				}
			}
			t.Logf("%s (before the swaps: heap %s MiB, rss %s MiB)\n%s", tt.name, mib(heap0), mib(rss0), log.String())
			if heap > heap0+maxHeapGrowth {
				t.Errorf("heap grew from %s to %s MiB over %d swaps, want at most %s MiB more", mib(heap0), mib(heap), swaps, mib(maxHeapGrowth))
			}
			if rss0 > 0 && rss > rss0+maxRSSGrowth {
				t.Errorf("rss grew from %s to %s MiB over %d swaps, want at most %s MiB more", mib(rss0), mib(rss), swaps, mib(maxRSSGrowth))
			}
		})
	}
}

func mib(b uint64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) }
