package wasm

import (
	"encoding/binary"
	"errors"
)

// A Go guest's data section is tens of thousands of small active segments
// (blocklist.wasm: 38,535 segments, 965 KB), and wazero applies them one by
// one to every new instance, evaluating each segment's offset expression:
// that was 6 of the 10 ms an instance took to make, and a hot swap makes a
// whole pool of them on a gateway under load. The manager applies the
// segments once instead, when it compiles the module: splitData lays them
// out in an image of the memory's first bytes and cuts the data section out
// of the module it compiles, and each new instance's memory starts as a
// copy of the image (memoryAllocator). The module's SHA-256 is still that of
// the bytes uploaded.

// dataImage is a module's data laid out as its memory starts, and the same
// bytes in a file that instances map (memory_linux.go; nil elsewhere or if
// the file could not be made: the instances copy the bytes).
type dataImage struct {
	bytes []byte
	file  *imageFile
}

func newDataImage(image []byte) *dataImage {
	return &dataImage{bytes: image, file: newImageFile(image)}
}

// writeTo starts a new memory with the image: mapped onto buf if it is a
// reservation (mapped is true) and the file is there, copied otherwise.
func (d *dataImage) writeTo(buf []byte, mapped bool) {
	if d == nil || (mapped && d.file.mapOnto(buf)) {
		return
	}
	copy(buf, d.bytes) // splitData made sure it fits the initial size
}

func (d *dataImage) close() {
	if d != nil {
		d.file.close()
	}
}

// wasmSectionData and wasmSectionDataCount are section ids of the binary
// format; wasmSectionMemory the memory section's.
const (
	wasmSectionMemory    = 5
	wasmSectionData      = 11
	wasmSectionDataCount = 12
)

// maxImageSlack bounds the image beyond twice the module's size: a module
// of a few bytes could otherwise ask for an image of its whole initial
// memory by placing one byte at its end.
const maxImageSlack = 1 << 20

// splitData returns wasm without its data section and the bytes the
// section's segments write into a zeroed memory (its length: the end of the
// last byte written). ok is false when the module is not one this applies
// to: no data section, a passive segment or a data count section (the code
// may then use memory.init), an offset other than i32.const, a memory that
// is imported or absent, a segment past the memory's initial size, an image
// out of proportion to the module, or bytes that do not parse. Such a module
// is compiled as it was uploaded, and wazero judges it.
func splitData(wasm []byte) (stripped, image []byte, ok bool) {
	s, err := scanSections(wasm)
	if err != nil || s.dataSection < 0 || s.dataCount || !s.memory {
		return nil, nil, false
	}
	image, err = layOutData(wasm[s.dataStart:s.dataEnd], s.memoryMinBytes, uint64(2*len(wasm)+maxImageSlack))
	if err != nil {
		return nil, nil, false
	}
	stripped = make([]byte, 0, len(wasm)-(s.dataEnd-s.dataSection))
	stripped = append(stripped, wasm[:s.dataSection]...)
	stripped = append(stripped, wasm[s.dataEnd:]...)
	return stripped, image, true
}

// sections is what scanSections found.
type sections struct {
	memory         bool   // one memory, defined in the module
	memoryMinBytes uint64 // its initial size
	dataCount      bool
	// The data section is wasm[dataSection:dataEnd], its contents
	// wasm[dataStart:dataEnd]; dataSection -1: none.
	dataSection, dataStart, dataEnd int
}

var errMalformed = errors.New("malformed module")

func scanSections(wasm []byte) (sections, error) {
	s := sections{dataSection: -1}
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || binary.LittleEndian.Uint32(wasm[4:8]) != 1 {
		return s, errMalformed
	}
	for i := 8; i < len(wasm); {
		sectionStart := i
		id := wasm[i]
		size, n := readU32(wasm[i+1:])
		if n == 0 {
			return s, errMalformed
		}
		start := i + 1 + n
		end := start + int(size)
		if end > len(wasm) || end < start {
			return s, errMalformed
		}
		switch id {
		case wasmSectionMemory:
			min, ok := memoryMin(wasm[start:end])
			if !ok {
				return s, errMalformed
			}
			s.memory, s.memoryMinBytes = true, min
		case wasmSectionData:
			if s.dataSection >= 0 {
				return s, errMalformed
			}
			s.dataSection, s.dataStart, s.dataEnd = sectionStart, start, end
		case wasmSectionDataCount:
			s.dataCount = true
		}
		i = end
	}
	return s, nil
}

// memoryMin reads a memory section of exactly one plain 32-bit memory and
// returns its initial size in bytes.
func memoryMin(b []byte) (uint64, bool) {
	count, n := readU32(b)
	if n == 0 || count != 1 {
		return 0, false
	}
	b = b[n:]
	if len(b) == 0 || (b[0] != 0 && b[0] != 1) { // 0: min; 1: min and max; others: shared or 64-bit
		return 0, false
	}
	pages, n := readU32(b[1:])
	if n == 0 {
		return 0, false
	}
	return uint64(pages) * 65536, true
}

// layOutData applies the active segments of a data section's contents to a
// zeroed memory of minBytes and returns the bytes up to the last written,
// or an error if a segment is not active with an i32.const offset, lies
// past minBytes, or the image would exceed maxImage.
func layOutData(b []byte, minBytes, maxImage uint64) ([]byte, error) {
	count, n := readU32(b)
	if n == 0 {
		return nil, errMalformed
	}
	b = b[n:]
	type segment struct {
		offset uint64
		init   []byte
	}
	segs := make([]segment, 0, min(count, uint32(len(b)/4)+1))
	var end uint64
	for range count {
		// flags 0 (active, memory 0), i32.const (0x41) offset, end (0x0b)
		if len(b) < 2 || b[0] != 0 || b[1] != 0x41 {
			return nil, errMalformed
		}
		offset, n := readS32(b[2:])
		if n == 0 || len(b) < 2+n+1 || b[2+n] != 0x0b {
			return nil, errMalformed
		}
		b = b[2+n+1:]
		size, n := readU32(b)
		if n == 0 || uint64(len(b)-n) < uint64(size) {
			return nil, errMalformed
		}
		init := b[n : n+int(size)]
		b = b[n+int(size):]
		off := uint64(uint32(offset)) // wazero reads the i32 as unsigned
		if off+uint64(size) > minBytes {
			return nil, errMalformed
		}
		end = max(end, off+uint64(size))
		segs = append(segs, segment{off, init})
	}
	if len(b) != 0 || end > maxImage {
		return nil, errMalformed
	}
	image := make([]byte, end)
	for _, s := range segs { // in order: a later segment overwrites an earlier one, as in wazero
		copy(image[s.offset:], s.init)
	}
	return image, nil
}

// readU32 decodes an unsigned LEB128 of at most 32 bits; n is 0 if b does
// not start with one.
func readU32(b []byte) (v uint32, n int) {
	var shift uint
	for i, c := range b {
		if i == 5 || (i == 4 && c > 0x0f) {
			return 0, 0
		}
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return v, i + 1
		}
		shift += 7
	}
	return 0, 0
}

// readS32 decodes a signed LEB128 of at most 32 bits; n is 0 if b does not
// start with one.
func readS32(b []byte) (v int32, n int) {
	var r int64
	var shift uint
	for i, c := range b {
		if i == 5 {
			return 0, 0
		}
		r |= int64(c&0x7f) << shift
		shift += 7
		if c < 0x80 {
			if shift < 64 && c&0x40 != 0 {
				r |= -1 << shift
			}
			if r < -1<<31 || r > 1<<31-1 {
				return 0, 0
			}
			return int32(r), i + 1
		}
	}
	return 0, 0
}
