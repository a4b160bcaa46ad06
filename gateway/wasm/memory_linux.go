//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64)

package wasm

import "syscall"

// canReserve: guest memories are mapped outside the Go heap (memory.go).
const canReserve = true

// reserve maps n bytes of zeroed, private memory outside the Go heap.
// MAP_NORESERVE: address space only; pages take RAM as the guest touches
// them.
func reserve(n uint64) ([]byte, bool) {
	if n == 0 || n > 1<<32 {
		return nil, false
	}
	b, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		return nil, false
	}
	return b, true
}

func unreserve(b []byte) {
	_ = syscall.Munmap(b) // the whole mapping, ours; nothing to do on error
}
