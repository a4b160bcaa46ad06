package wasm

import (
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// guestMemory is a guest's linear memory, reserved at its limit and kept
// outside the Go heap where the platform allows (memory_unix.go): growing it
// never copies, a new instance's memory needs no zeroing (the kernel hands
// out zero pages as they are touched), and the garbage collector never
// scans or frees it. A Go guest grows its memory a dozen times while it
// initializes and a memory bomb does until its limit, so with wazero's
// default (a Go slice grown by copying) every replaced instance cost
// megabytes of garbage and copies on a gateway under load.
//
// Unmapped memory cannot be left to the garbage collector: wazero frees it
// when the module closes, which can happen while a call still runs on it (a
// guest that exits or runs past its deadline, a runtime closed with calls in
// flight). Calls therefore enter and leave it, and a free during a call is
// done by the last one to leave; a call after the free does not start.
type guestMemory struct {
	mu    sync.Mutex
	buf   []byte       // the reservation (len: the limit), or the Go slice
	max   uint64       // the limit
	calls int          // calls running on it
	freed bool         // wazero freed it; unmapped once calls is 0
	unmap func([]byte) // nil: buf is a Go slice (the mapping failed)
}

var _ experimental.LinearMemory = (*guestMemory)(nil)

// Reallocate implements experimental.LinearMemory: the memory grows in place
// up to its reservation.
func (g *guestMemory) Reallocate(size uint64) []byte {
	switch {
	case size > g.max:
		return nil
	case g.unmap == nil && size > uint64(len(g.buf)): // on the Go heap
		g.buf = append(g.buf, make([]byte, size-uint64(len(g.buf)))...)
	}
	return g.buf[:size]
}

// Free implements experimental.LinearMemory.
func (g *guestMemory) Free() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.freed = true
	if g.calls == 0 {
		g.release()
	}
}

// enter registers a call; false if the memory is freed (its module closed).
func (g *guestMemory) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.freed {
		return false
	}
	g.calls++
	return true
}

func (g *guestMemory) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls--
	if g.freed && g.calls == 0 {
		g.release()
	}
}

func (g *guestMemory) release() {
	if g.buf != nil && g.unmap != nil {
		g.unmap(g.buf)
	}
	g.buf = nil
}

// memoryAllocator gives the guest memory of one instance to in, starting
// with image (the module's data, dataimage.go; nil: none); nil where memory
// cannot be mapped and there is no image (wazero's own allocation then).
func memoryAllocator(in *instance, image *dataImage) experimental.MemoryAllocator {
	if !canReserve && image == nil {
		return nil
	}
	return experimental.MemoryAllocatorFunc(func(capacity, limit uint64) experimental.LinearMemory {
		g := &guestMemory{max: limit}
		if buf, ok := reserve(limit); ok {
			g.buf, g.unmap = buf, unreserve
		} else { // out of address space: a Go slice, grown by copying
			n := 0
			if image != nil {
				n = len(image.bytes)
			}
			g.buf = make([]byte, n, max(capacity, uint64(n)))
		}
		image.writeTo(g.buf, g.unmap != nil)
		in.mem = g
		return g
	})
}
