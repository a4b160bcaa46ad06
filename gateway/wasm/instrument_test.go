package wasm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/http-wasm/http-wasm-host-go/tck"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// instrumentCorpus is every module at hand: the fixtures, the examples, the
// upstream TCK guest and the upstream host's example and test guests (Go,
// TinyGo, Rust, hand written; with start, element, name and data count
// sections).
func instrumentCorpus(tb testing.TB) map[string][]byte {
	tb.Helper()
	corpus := map[string][]byte{"tck.wasm": tck.GuestWASM}
	for _, path := range []string{probeWasm, admitWasm, unreachableWasm, noExportsWasm,
		blocklistWasm, attemptlimitWasm, powcheckWasm, timewindowWasm} {
		corpus[path] = mustReadWasm(tb, path)
	}
	if dir, err := upstreamDir(); err == nil {
		paths, _ := filepath.Glob(filepath.Join(dir, "examples", "*.wasm"))
		more, _ := filepath.Glob(filepath.Join(dir, "internal", "test", "testdata", "*", "*.wasm"))
		for _, path := range append(paths, more...) {
			if b, err := os.ReadFile(path); err == nil {
				corpus[path] = b
			}
		}
	}
	return corpus
}

// upstreamDir is where the module cache keeps http-wasm-host-go.
func upstreamDir() (string, error) {
	mod := filepath.Join(os.Getenv("GOMODCACHE"), "github.com", "http-wasm")
	if os.Getenv("GOMODCACHE") == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		mod = filepath.Join(home, "go", "pkg", "mod", "github.com", "http-wasm")
	}
	dirs, err := filepath.Glob(filepath.Join(mod, "http-wasm-host-go@*"))
	if err != nil || len(dirs) == 0 {
		return "", errors.New("not in the module cache")
	}
	return dirs[len(dirs)-1], nil
}

// TestInstrumentCompiles: every module of the corpus still compiles once
// instrumented, with the same exports and the same imports plus yield. The
// Go guests (megabytes, seconds to compile twice under -race) are left to
// the Manager's tests, which compile and run them instrumented.
func TestInstrumentCompiles(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for name, wasm := range instrumentCorpus(t) {
		if len(wasm) > 256<<10 {
			continue
		}
		t.Run(filepath.Base(name), func(t *testing.T) {
			orig, err := rt.CompileModule(ctx, wasm)
			if err != nil {
				t.Skipf("does not compile as it is: %v", err)
			}
			defer orig.Close(ctx)
			out, err := instrument(wasm)
			if err != nil {
				t.Fatalf("instrument: %v", err)
			}
			inst, err := rt.CompileModule(ctx, out)
			if err != nil {
				t.Fatalf("compile the instrumented module: %v", err)
			}
			defer inst.Close(ctx)
			exports := func(c wazero.CompiledModule) []string {
				var s []string
				for n, d := range c.ExportedFunctions() {
					s = append(s, n+signature(d.ParamTypes(), d.ResultTypes()))
				}
				slices.Sort(s)
				return s
			}
			if got, want := exports(inst), exports(orig); !slices.Equal(got, want) {
				t.Errorf("exports: got %v, want %v", got, want)
			}
			imports := func(c wazero.CompiledModule) []string {
				var s []string
				for _, d := range c.ImportedFunctions() {
					mod, fn, _ := d.Import()
					s = append(s, mod+"."+fn+signature(d.ParamTypes(), d.ResultTypes()))
				}
				return s
			}
			want := append(imports(orig), yieldModule+"."+yieldName+signature(nil, []api.ValueType{api.ValueTypeI32}))
			if got := imports(inst); !slices.Equal(got, want) {
				t.Errorf("imports: got %v, want %v", got, want)
			}
		})
	}
}

// TestInstrumentRefusesYieldImport: a guest may not import the host's
// internal module itself.
func TestInstrumentRefusesYieldImport(t *testing.T) {
	imp := appendName(appendName([]byte{1}, yieldModule), yieldName)
	imp = append(imp, 0x00, 0x00) // func, type 0
	wasm := rawModule([]byte{secType, 1, 0x60, 0, 1, 0x7f}, append([]byte{secImport}, imp...))
	if _, err := instrument(wasm); err == nil {
		t.Error("got no error, want the import refused")
	}
}

// TestInstrumentKeepsTheBudget: code that names the global index the
// budget takes (invalid as uploaded) is refused rather than given the
// budget to reset, and so is an export of it.
func TestInstrumentKeepsTheBudget(t *testing.T) {
	types := wasmSection(secType, wasmVec([]byte{0x60, 0x00, 0x00}))
	funcs := wasmSection(secFunction, wasmVec([]byte{0x00}))
	// loop; i32.const 1000; global.set 0; br 0; end
	reset := wasmSection(secCode, wasmVec(wasmBody([]byte{0x00, 0x03, 0x40, 0x41, 0xe8, 0x07, 0x24, 0x00, 0x0c, 0x00, 0x0b, 0x0b})))
	exportGlobal := wasmSection(secExport, wasmVec(wasmExport("budget", 0x03, 0)))
	tests := map[string][]byte{
		"global.set": rawModuleOf(types, funcs, reset),
		"export":     rawModuleOf(types, funcs, exportGlobal, wasmSection(secCode, wasmVec(wasmBody([]byte{0x00, 0x0b})))),
	}
	for name, wasm := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := instrument(wasm); err == nil {
				t.Error("got no error, want the module refused")
			}
		})
	}
}

// rawModuleOf is a Wasm binary of the sections given.
func rawModuleOf(sections ...[]byte) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		b = append(b, s...)
	}
	return b
}

// FuzzInstrument: instrument never panics, and a module wazero compiles
// still compiles instrumented (or instrument says why not).
func FuzzInstrument(f *testing.F) {
	for _, wasm := range instrumentCorpus(f) {
		if len(wasm) < 64<<10 {
			f.Add(wasm)
		}
	}
	f.Add(fillerModule(3, 2))
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	f.Cleanup(func() { rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := instrument(wasm)
		orig, origErr := compileModule(ctx, rt, wasm)
		if origErr != nil {
			return // wazero refuses it anyway (or panics: compileModule)
		}
		defer orig.Close(ctx)
		if err != nil {
			if errors.Is(err, errUnsupported) {
				return
			}
			t.Fatalf("instrument refused a module wazero compiles: %v", err)
		}
		inst, err := compileModule(ctx, rt, out)
		if err != nil {
			t.Fatalf("compile the instrumented module: %v", err)
		}
		inst.Close(ctx)
	})
}
