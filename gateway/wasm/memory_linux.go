//go:build linux && (amd64 || arm64 || riscv64 || ppc64le || s390x || loong64)

package wasm

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

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

// imageFile holds a data image in an anonymous file, so that each
// instance's memory can map it copy-on-write instead of copying it: a page
// of the image costs a new instance nothing until the guest writes to it.
type imageFile struct {
	f    *os.File
	size int // the image's length rounded up to whole OS pages
}

// newImageFile writes image to an anonymous in-memory file; nil if the
// platform refuses (copying the image then does the same, slower).
func newImageFile(image []byte) *imageFile {
	fd, err := unix.MemfdCreate("seckill-wasm-data", unix.MFD_CLOEXEC)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), "seckill-wasm-data")
	page := os.Getpagesize()
	size := (len(image) + page - 1) / page * page
	if err := f.Truncate(int64(size)); err != nil {
		_ = f.Close() // unused; the fallback copies
		return nil
	}
	if _, err := f.WriteAt(image, 0); err != nil {
		_ = f.Close() // unused; the fallback copies
		return nil
	}
	return &imageFile{f: f, size: size}
}

// mapOnto maps the image over the start of the reservation buf, private:
// the guest's writes go to its own copies of the pages. False if it could
// not (buf is untouched then).
func (im *imageFile) mapOnto(buf []byte) bool {
	if im == nil || len(buf) < im.size {
		return false
	}
	_, err := unix.MmapPtr(int(im.f.Fd()), 0, unsafe.Pointer(&buf[0]), uintptr(im.size),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED)
	return err == nil
}

func (im *imageFile) close() {
	if im != nil {
		_ = im.f.Close() // a file only we used; nothing to do on error
	}
}
