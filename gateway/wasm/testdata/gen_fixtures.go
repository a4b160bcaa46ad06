//go:build ignore

// gen_fixtures writes the hand-assembled test modules of the wasm package
// (modules that cannot be built from Go source):
//
//	admit.wasm       handle_request returns next=1; no WASI, no Go runtime
//	unreachable.wasm handle_request executes `unreachable` (a trap)
//	noexports.wasm   a valid, empty module: no ABI exports
//	garbage.wasm     not WebAssembly at all
//
// Usage: go run gen_fixtures.go <dir>
package main

import (
	"log"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) != 2 {
		log.Fatal("usage: go run gen_fixtures.go <dir>")
	}
	dir := os.Args[1]
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	// handle_request bodies: i64.const 1; end  |  unreachable; end
	write("admit.wasm", guest([]byte{0x42, 0x01}))
	write("unreachable.wasm", guest([]byte{0x00}))
	write("noexports.wasm", header())
	write("garbage.wasm", []byte("this is not a WebAssembly module\n"))
}

func header() []byte { return []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00} }

// guest is a module exporting memory, handle_request () -> i64 with the given
// instructions, and an empty handle_response (i32, i32) -> ().
func guest(handleRequest []byte) []byte {
	const i32, i64, funcType = 0x7f, 0x7e, 0x60
	b := header()
	b = append(b, section(1, vec(
		[]byte{funcType, 0x00, 0x01, i64},
		[]byte{funcType, 0x02, i32, i32, 0x00},
	))...)
	b = append(b, section(3, vec([]byte{0x00}, []byte{0x01}))...) // functions: type 0, type 1
	b = append(b, section(5, vec([]byte{0x00, 0x01}))...)         // memory: min 1 page
	b = append(b, section(7, vec(
		export("handle_request", 0x00, 0),
		export("handle_response", 0x00, 1),
		export("memory", 0x02, 0),
	))...)
	body := func(instrs []byte) []byte {
		code := append([]byte{0x00}, instrs...) // no locals
		code = append(code, 0x0b)               // end
		return append(uleb(uint32(len(code))), code...)
	}
	b = append(b, section(10, vec(body(handleRequest), body(nil)))...)
	return b
}

func export(name string, kind byte, index uint32) []byte {
	b := append(uleb(uint32(len(name))), name...)
	b = append(b, kind)
	return append(b, uleb(index)...)
}

func vec(items ...[]byte) []byte {
	b := uleb(uint32(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func section(id byte, content []byte) []byte {
	b := append([]byte{id}, uleb(uint32(len(content)))...)
	return append(b, content...)
}

func uleb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}
