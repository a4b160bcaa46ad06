package wasm

import (
	"context"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
)

// module is a compiled guest in a runtime of its own (the memory limit is
// per runtime), shared by the plugins loaded from the same bytes with the
// same memory limit: a hot swap that uploads the module again (to change its
// config, say) does not decode, validate and compile 3 MB of Wasm again on a
// gateway under load, it only instantiates the new plugin's pool. The
// runtime closes when the last plugin using it does.
type module struct {
	runtime     wazero.Runtime
	compiled    wazero.CompiledModule
	sha256      string // hex of the module bytes
	memoryPages uint32
	image       *dataImage // a new instance's memory starts with it; nil: the module has its data segments (dataimage.go)
	requestOnly bool       // exports seckill_request_only
	startFn     string     // _initialize, _start or none

	refs   atomic.Int32  // plugins using it; 0: closed
	nextID atomic.Uint64 // instance names are unique per runtime
}

// ref takes a reference for one more plugin; false if the module has
// closed (its last plugin went away meanwhile).
func (md *module) ref() bool {
	for {
		n := md.refs.Load()
		if n <= 0 {
			return false
		}
		if md.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// unref drops a plugin's reference and, after the last one, closes the
// runtime (every instance left in it) and the compiled module. The runtimes
// share the Manager's compilation cache, which keeps a module's machine code
// until the module is closed, whatever becomes of its runtime: without the
// Close every module ever loaded stays in memory.
func (md *module) unref(ctx context.Context) error {
	if md.refs.Add(-1) != 0 {
		return nil
	}
	err := md.runtime.Close(ctx)
	if cerr := md.compiled.Close(ctx); err == nil {
		err = cerr
	}
	md.image.close()
	return err
}

// sharedModule returns a module of the current chain compiled from the
// bytes whose hash is sum with the memory limit pages, with a reference
// taken, or nil.
func (m *Manager) sharedModule(sum string, pages uint32) *module {
	for _, p := range m.chain.Load().plugins {
		if p.mod.sha256 == sum && p.mod.memoryPages == pages && p.mod.ref() {
			return p.mod
		}
	}
	return nil
}
