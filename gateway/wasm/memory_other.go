//go:build !(linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64))

package wasm

// canReserve: guest memories stay wazero's, on the Go heap (memory.go).
const canReserve = false

func reserve(uint64) ([]byte, bool) { return nil, false }

func unreserve([]byte) {}

type imageFile struct{}

func newImageFile([]byte) *imageFile { return nil }

func (*imageFile) mapOnto([]byte) bool { return false }

func (*imageFile) close() {}
