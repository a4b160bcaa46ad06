package wasm

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
)

// memoryAfterData instantiates wasm without running its start function and
// returns its memory's first n bytes: with wazero's own allocator and data
// segments when image is nil, else the module as given (stripped) on a
// memory starting from image.
func memoryAfterData(tb testing.TB, wasm []byte, image *dataImage, n int) []byte {
	tb.Helper()
	ctx := context.Background()
	m := newTestManager(tb, Options{})
	// The interpreter: it lays out memory as the compiler does, and
	// compiles megabytes of Go guest in a fraction of the time (-race).
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.instantiateHostModules(ctx, rt, compiled); err != nil {
		tb.Fatal(err)
	}
	if image != nil {
		ctx = experimental.WithMemoryAllocator(ctx, memoryAllocator(&instance{}, image))
	}
	mod, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		tb.Fatal(err)
	}
	b, ok := mod.Memory().Read(0, uint32(n))
	if !ok {
		tb.Fatalf("memory is %d bytes, want at least %d", mod.Memory().Size(), n)
	}
	return bytes.Clone(b)
}

// TestSplitDataGoGuests: for the Go guests (tens of thousands of segments
// each), the image is the memory wazero lays out from the data section, and
// the module without it starts from the same memory, mapped or copied.
func TestSplitDataGoGuests(t *testing.T) {
	for _, path := range []string{probeWasm, blocklistWasm} {
		t.Run(path, func(t *testing.T) {
			wasm := mustReadWasm(t, path)
			stripped, image, ok := splitData(wasm)
			if !ok {
				t.Fatal("splitData: not ok, want the Go guest's data split out")
			}
			if len(stripped) >= len(wasm)-len(image)/2 {
				t.Errorf("stripped module is %d of %d bytes, want the data section (~%d bytes) gone", len(stripped), len(wasm), len(image))
			}
			if _, _, again := splitData(stripped); again {
				t.Error("the stripped module still has data to split")
			}
			// Past the image's end, up to a page past it, must stay zero.
			n := len(image) + 65536
			want := memoryAfterData(t, wasm, nil, n)
			if !bytes.Equal(want[:len(image)], image) {
				t.Fatal("image differs from the memory wazero lays out")
			}
			for name, d := range map[string]*dataImage{
				"mapped": newDataImage(image),
				"copied": {bytes: image}, // no file: the bytes are copied
			} {
				got := memoryAfterData(t, stripped, d, n)
				d.close()
				if !bytes.Equal(got, want) {
					t.Errorf("%s: memory of the stripped module differs from the original's", name)
				}
			}
		})
	}
}

// memModule assembles a Wasm binary: a memory of minPages exported as
// "memory", then sections (id, contents) in the order given.
func memModule(minPages byte, sections ...[]byte) []byte {
	return rawModule(append([][]byte{
		{wasmSectionMemory, 1, 0, minPages},
		{7, 1, 6, 'm', 'e', 'm', 'o', 'r', 'y', 2, 0}, // export memory 0
	}, sections...)...)
}

// rawModule assembles a Wasm binary of sections (id, contents of under 128
// bytes).
func rawModule(sections ...[]byte) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		b = append(b, s[0], byte(len(s)-1))
		b = append(b, s[1:]...)
	}
	return b
}

// activeSegment is an active data segment at offset (a one-byte signed
// LEB128: -64..63) holding init.
func activeSegment(offset byte, init ...byte) []byte {
	return append([]byte{0, 0x41, offset, 0x0b, byte(len(init))}, init...)
}

func dataSection(segments ...[]byte) []byte {
	s := []byte{wasmSectionData, byte(len(segments))}
	for _, seg := range segments {
		s = append(s, seg...)
	}
	return s
}

// TestSplitDataSegments: overlapping segments end as wazero leaves them
// (the later wins), and a module splitData does not apply to is left whole.
func TestSplitDataSegments(t *testing.T) {
	wasm := memModule(1, dataSection(activeSegment(8, 1, 2, 3, 4), activeSegment(10, 9, 9), activeSegment(2, 7)))
	stripped, image, ok := splitData(wasm)
	if !ok {
		t.Fatal("splitData: not ok")
	}
	if want := []byte{0, 0, 7, 0, 0, 0, 0, 0, 1, 2, 9, 9}; !bytes.Equal(image, want) {
		t.Errorf("image: got %v, want %v", image, want)
	}
	if want := memModule(1); !bytes.Equal(stripped, want) {
		t.Errorf("stripped: got %x, want %x", stripped, want)
	}
	d := newDataImage(image)
	defer d.close()
	if got, want := memoryAfterData(t, stripped, d, 64), memoryAfterData(t, wasm, nil, 64); !bytes.Equal(got, want) {
		t.Errorf("memory: got %v, want wazero's %v", got, want)
	}

	for name, wasm := range map[string][]byte{
		"no data":        memModule(1),
		"no memory":      rawModule(dataSection(activeSegment(0, 1))),
		"past the min":   memModule(1, dataSection(activeSegment(0, 1), []byte{0, 0x41, 0x80, 0x80, 0x04, 0x0b, 1, 1})), // at 65536
		"negative":       memModule(1, dataSection(activeSegment(0x7f, 1))),                                             // -1: 4 GiB - 1
		"passive":        memModule(1, dataSection([]byte{1, 1, 5})),
		"global offset":  memModule(1, dataSection([]byte{0, 0x23, 0, 0x0b, 1, 5})),
		"data count":     memModule(1, []byte{wasmSectionDataCount, 1}, dataSection(activeSegment(0, 1))),
		"trailing bytes": memModule(1, append(dataSection(activeSegment(0, 1)), 0)),
		"short count":    memModule(1, dataSection(activeSegment(0, 1))[:3]),
		"truncated":      memModule(1, dataSection(activeSegment(0, 1)))[:30],
		"not wasm":       []byte("\x00asm\x02\x00\x00\x00"),
		"shared memory":  rawModule([]byte{wasmSectionMemory, 1, 3, 1, 1}, dataSection(activeSegment(0, 1))),
	} {
		if _, _, ok := splitData(wasm); ok {
			t.Errorf("%s: got ok, want the module left whole", name)
		}
	}
}

// TestSplitDataOutOfProportion: a tiny module whose one byte lies at the
// end of a large initial memory keeps its data section rather than cost an
// image of megabytes.
func TestSplitDataOutOfProportion(t *testing.T) {
	// 64 pages (4 MiB), one byte at 4 MiB - 1: i32.const 4194303.
	far := []byte{0, 0x41, 0xff, 0xff, 0xff, 0x01, 0x0b, 1, 1}
	if _, _, ok := splitData(memModule(64, dataSection(far))); ok {
		t.Error("got ok, want a 4 MiB image for a 40-byte module refused")
	}
	near := []byte{0, 0x41, 0xff, 0xff, 0x3f, 0x0b, 1, 1} // 1 MiB - 1
	if _, image, ok := splitData(memModule(64, dataSection(near))); !ok || len(image) != 1<<20 {
		t.Errorf("got ok %v and %d bytes, want a 1 MiB image", ok, len(image))
	}
}

// FuzzSplitData: on any bytes splitData does not panic, and what it splits
// accounts for the input: the stripped module is shorter, and the image is
// within bounds.
func FuzzSplitData(f *testing.F) {
	f.Add(memModule(1, dataSection(activeSegment(8, 1, 2, 3, 4), activeSegment(10, 9, 9))))
	f.Add(memModule(1, dataSection([]byte{1, 1, 5})))
	f.Add(memModule(2, []byte{wasmSectionDataCount, 1}, dataSection(activeSegment(0, 1))))
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		stripped, image, ok := splitData(wasm)
		if !ok {
			return
		}
		if len(stripped) >= len(wasm) {
			t.Errorf("stripped %d bytes of %d, want fewer", len(stripped), len(wasm))
		}
		if len(image) > 2*len(wasm)+maxImageSlack {
			t.Errorf("image of %d bytes from %d", len(image), len(wasm))
		}
		if !bytes.HasPrefix(wasm, stripped[:8]) {
			t.Error("stripped module lost its header")
		}
	})
}
