// Package wasmtest gives tests outside package wasm their plugin managers:
// each compiles through one compilation cache on disk, shared by every test
// process, because a Go guest takes seconds to compile and a cached one
// milliseconds. (Package wasm's own tests keep theirs: they cannot import
// this package.)
package wasmtest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/seckill/flashsale/gateway/wasm"
)

var cache = sync.OnceValues(func() (wazero.CompilationCache, error) {
	return wazero.NewCompilationCacheWithDir(filepath.Join(os.TempDir(), "seckill-wasm-test-cache"))
})

// Cache is the shared compilation cache. It lives as long as the test process.
func Cache(tb testing.TB) wazero.CompilationCache {
	tb.Helper()
	c, err := cache()
	if err != nil {
		tb.Fatalf("compilation cache: %v", err)
	}
	return c
}

// NewManager returns a manager with opts that compiles through Cache and is
// closed when the test ends. Unless opts sets them, its plugins get a pool of
// 2 instances and a call deadline of 2 s (generous: -race and busy CI
// machines).
func NewManager(tb testing.TB, opts wasm.Options) *wasm.Manager {
	tb.Helper()
	opts.CompilationCache = Cache(tb)
	if opts.DefaultPoolSize == 0 {
		opts.DefaultPoolSize = 2
	}
	if opts.DefaultTimeout == 0 {
		opts.DefaultTimeout = 2 * time.Second
	}
	m, err := wasm.NewManager(context.Background(), opts)
	if err != nil {
		tb.Fatalf("NewManager: %v", err)
	}
	tb.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			tb.Errorf("close the plugin manager: %v", err)
		}
	})
	return m
}

// ReadModule reads a .wasm fixture; a missing one fails the test with the
// command that builds it.
func ReadModule(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read %s: %v (run plugins/build.sh)", path, err)
	}
	return b
}
