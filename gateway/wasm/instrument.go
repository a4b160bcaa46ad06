package wasm

import (
	"errors"
	"fmt"
)

// Guests are compiled without wazero's WithCloseOnContextDone. That option
// makes every loop iteration of compiled code return to Go to ask whether
// the module was closed, and every call start a goroutine that closes the
// module when the call's context ends: a Go guest, whose runtime loops a
// lot, ran 2.5 times slower than without it, and each call paid a goroutine,
// a channel and the context with its timer. Instead the manager rewrites
// each module before compiling it (instrument) so that the guest checks in
// with the host now and then:
//
//   - a mutable i32 global, the budget, is added;
//   - at the entry of every function and at the head of every loop, the
//     code decrements the budget, and when it reaches zero calls an added
//     import, yieldModule.yield () -> i32, and sets the budget to what it
//     returns.
//
// yield (Manager.yield) is where a call's deadline is enforced, a closed
// plugin's calls end and a long call's thread is demoted; its answer paces
// the next check-in to about yieldInterval of guest time. Function entries
// count as well as loops because code can run without end without a loop
// (recursion). A guest calling the host now and then also lets the Go
// runtime stop the goroutine for a garbage collection: compiled code cannot
// be preempted.
//
// The check costs a few instructions per loop iteration and function call.
// The import comes after the module's own function imports, so every
// defined function's index grows by one: calls, ref.func, exports, the start
// function, element segments and the name section are renumbered.

// yieldModule is the host module of yield; guests may not import it
// themselves.
const (
	yieldModule = "seckill_internal"
	yieldName   = "yield"
)

// initialBudget is the budget of a new instance: check-ins before the first
// yield.
const initialBudget = 1 << 12

// Section ids of the binary format.
const (
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secFunction = 3
	secGlobal   = 6
	secExport   = 7
	secStart    = 8
	secElement  = 9
	secCode     = 10
)

var errUnsupported = errors.New("unsupported instruction")

// instrument returns wasm with the budget checks added, or an error if wasm
// does not parse (wazero would refuse it as well) or uses an instruction
// the rewriter does not know.
func instrument(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errMalformed
	}
	type section struct {
		id      byte
		content []byte
	}
	var secs []section
	for b := wasm[8:]; len(b) > 0; {
		id := b[0]
		size, n := readU32(b[1:])
		if n == 0 || uint64(len(b)-1-n) < uint64(size) {
			return nil, errMalformed
		}
		secs = append(secs, section{id, b[1+n : 1+n+int(size)]})
		b = b[1+n+int(size):]
	}

	// The indices the rewrite needs: the added import and global (the added
	// type's is found as the type section is rewritten, before the imports).
	var funcImports, globalImports, globals uint32
	for _, s := range secs {
		var err error
		switch s.id {
		case secImport:
			funcImports, globalImports, err = countImports(s.content)
		case secGlobal:
			globals, _, err = readCount(s.content)
		}
		if err != nil {
			return nil, err
		}
	}
	r := rewriter{funcImports: funcImports, yield: funcImports, budget: globalImports + globals}

	// Sections in the order of the binary format, with the type, import
	// and global sections made if the module has none. Custom sections keep
	// their place; sections made at the end go before the trailing custom
	// sections, which wazero's reader of the name section may read past.
	order := map[byte]int{secType: 1, secImport: 2, secFunction: 3, 4: 4, 5: 5, 13: 6, secGlobal: 7,
		secExport: 8, secStart: 9, secElement: 10, 12: 11, secCode: 12, 11: 13}
	have := map[byte]bool{}
	for _, s := range secs {
		have[s.id] = true
	}
	out := append(make([]byte, 0, len(wasm)+len(wasm)/8), wasm[:8]...)
	emit := func(id byte, content []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(content)))
		out = append(out, content...)
	}
	added := map[byte]bool{}
	addMissing := func(before int) {
		for _, id := range []byte{secType, secImport, secGlobal} {
			if !have[id] && !added[id] && order[id] < before {
				added[id] = true
				emit(id, r.section(id, []byte{0}))
			}
		}
	}
	trailing := len(out) // where the custom sections after the last known one start
	for _, s := range secs {
		if s.id != secCustom {
			o, known := order[s.id]
			if !known {
				return nil, fmt.Errorf("section %d: %w", s.id, errMalformed)
			}
			addMissing(o)
		}
		content, err := r.rewrite(s.id, s.content)
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, err)
		}
		emit(s.id, content)
		if s.id != secCustom {
			trailing = len(out)
		}
	}
	customs := append([]byte(nil), out[trailing:]...)
	out = out[:trailing]
	addMissing(len(order) + 1)
	return append(out, customs...), nil
}

// rewriter rewrites sections for instrument.
type rewriter struct {
	funcImports uint32 // the module's function imports: indices below are not shifted
	yield       uint32 // function index of the yield import
	budget      uint32 // global index of the budget
	yieldType   uint32 // type index of () -> i32
}

// fn maps a function index of the module to the instrumented module's.
func (r *rewriter) fn(i uint32) uint32 {
	if i >= r.funcImports {
		return i + 1
	}
	return i
}

// section rewrites the contents of a section; for the type, import and
// global sections it also appends the added entry.
func (r *rewriter) section(id byte, content []byte) []byte {
	b, _ := r.rewrite(id, content) // content is a valid empty section
	return b
}

func (r *rewriter) rewrite(id byte, b []byte) ([]byte, error) {
	switch id {
	case secType:
		n, rest, err := readCount(b)
		if err != nil {
			return nil, err
		}
		r.yieldType = n
		out := appendU32(nil, n+1)
		out = append(out, rest...)
		return append(out, 0x60, 0x00, 0x01, 0x7f), nil // () -> i32
	case secImport:
		n, rest, err := readCount(b)
		if err != nil {
			return nil, err
		}
		if err := refuseYieldImport(b); err != nil {
			return nil, err
		}
		out := appendU32(nil, n+1)
		out = append(out, rest...)
		out = appendName(out, yieldModule)
		out = appendName(out, yieldName)
		return appendU32(append(out, 0x00), r.yieldType), nil
	case secGlobal:
		return r.globals(b)
	case secExport:
		return r.exports(b)
	case secStart:
		i, n := readU32(b)
		if n == 0 || n != len(b) {
			return nil, errMalformed
		}
		return appendU32(nil, r.fn(i)), nil
	case secElement:
		return r.elements(b)
	case secCode:
		return r.code(b)
	case secCustom:
		return r.custom(b)
	}
	return b, nil
}

// readCount reads the count of a vector and returns the rest.
func readCount(b []byte) (uint32, []byte, error) {
	n, k := readU32(b)
	if k == 0 {
		return 0, nil, errMalformed
	}
	return n, b[k:], nil
}

// name reads a name (length and bytes).
func readName(b []byte) (string, []byte, error) {
	n, k := readU32(b)
	if k == 0 || uint64(len(b)-k) < uint64(n) {
		return "", nil, errMalformed
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}

// countImports counts the function and global imports of an import section.
func countImports(b []byte) (funcs, globals uint32, err error) {
	err = visitImports(b, func(_ string, kind byte) {
		switch kind {
		case 0x00:
			funcs++
		case 0x03:
			globals++
		}
	})
	return funcs, globals, err
}

func refuseYieldImport(b []byte) error {
	var bad bool
	if err := visitImports(b, func(mod string, _ byte) { bad = bad || mod == yieldModule }); err != nil {
		return err
	}
	if bad {
		return fmt.Errorf("imports module %s, which is the host's own", yieldModule)
	}
	return nil
}

// visitImports calls f with the module and kind of each import.
func visitImports(b []byte, f func(mod string, kind byte)) error {
	n, b, err := readCount(b)
	if err != nil {
		return err
	}
	for range n {
		var mod string
		if mod, b, err = readName(b); err != nil {
			return err
		}
		if _, b, err = readName(b); err != nil {
			return err
		}
		if len(b) == 0 {
			return errMalformed
		}
		kind := b[0]
		b = b[1:]
		var k int
		switch kind {
		case 0x00: // type index
			_, k = readU32(b)
		case 0x01: // table: reftype, limits
			if len(b) == 0 {
				return errMalformed
			}
			k = limitsLen(b[1:])
			if k > 0 {
				k++
			}
		case 0x02: // memory: limits
			k = limitsLen(b)
		case 0x03: // global: valtype, mutability
			k = 2
			if len(b) < 2 {
				k = 0
			}
		default:
			return errMalformed
		}
		if k == 0 {
			return errMalformed
		}
		f(mod, kind)
		b = b[k:]
	}
	if len(b) != 0 {
		return errMalformed
	}
	return nil
}

// limitsLen is the length of the limits at the start of b, 0 if malformed.
func limitsLen(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	flags := b[0]
	k := 1
	n := lebLen(b[k:])
	if n == 0 {
		return 0
	}
	k += n
	if flags&1 != 0 { // a maximum
		n = lebLen(b[k:])
		if n == 0 {
			return 0
		}
		k += n
	}
	return k
}

// globals renumbers ref.func in the init expressions and appends the budget.
func (r *rewriter) globals(b []byte) ([]byte, error) {
	n, b, err := readCount(b)
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n+1)
	for range n {
		if len(b) < 2 {
			return nil, errMalformed
		}
		out = append(out, b[0], b[1]) // valtype, mutability
		if out, b, err = r.expr(out, b[2:], false); err != nil {
			return nil, err
		}
	}
	if len(b) != 0 {
		return nil, errMalformed
	}
	out = append(out, 0x7f, 0x01, 0x41) // i32, mutable, i32.const
	out = appendS32(out, initialBudget)
	return append(out, 0x0b), nil
}

func (r *rewriter) exports(b []byte) ([]byte, error) {
	n, b, err := readCount(b)
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	for range n {
		var name string
		if name, b, err = readName(b); err != nil {
			return nil, err
		}
		if len(b) == 0 {
			return nil, errMalformed
		}
		kind := b[0]
		i, k := readU32(b[1:])
		if k == 0 || (kind == 0x03 && i >= r.budget) { // the budget stays the host's
			return nil, errMalformed
		}
		b = b[1+k:]
		if kind == 0x00 {
			i = r.fn(i)
		}
		out = appendU32(append(appendName(out, name), kind), i)
	}
	if len(b) != 0 {
		return nil, errMalformed
	}
	return out, nil
}

// elements renumbers the function indices of the element segments (the
// eight encodings of the format).
func (r *rewriter) elements(b []byte) ([]byte, error) {
	n, b, err := readCount(b)
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	for range n {
		flags, k := readU32(b)
		if k == 0 || flags > 7 {
			return nil, errMalformed
		}
		out = appendU32(out, flags)
		b = b[k:]
		if flags&3 == 2 { // an explicit table index
			k = lebLen(b)
			if k == 0 {
				return nil, errMalformed
			}
			out, b = append(out, b[:k]...), b[k:]
		}
		if flags&1 == 0 { // active: the offset
			if out, b, err = r.expr(out, b, false); err != nil {
				return nil, err
			}
		}
		if flags&3 != 0 { // elemkind or reftype
			if len(b) == 0 {
				return nil, errMalformed
			}
			out, b = append(out, b[0]), b[1:]
		}
		var items uint32
		if items, b, err = readCount(b); err != nil {
			return nil, err
		}
		out = appendU32(out, items)
		for range items {
			if flags&4 != 0 { // expressions
				if out, b, err = r.expr(out, b, false); err != nil {
					return nil, err
				}
				continue
			}
			i, k := readU32(b)
			if k == 0 {
				return nil, errMalformed
			}
			out, b = appendU32(out, r.fn(i)), b[k:]
		}
	}
	if len(b) != 0 {
		return nil, errMalformed
	}
	return out, nil
}

// code rewrites every function body: the check at its entry and at each
// loop head, the renumbered calls.
func (r *rewriter) code(b []byte) ([]byte, error) {
	n, b, err := readCount(b)
	if err != nil {
		return nil, err
	}
	out := appendU32(make([]byte, 0, len(b)+len(b)/8), n)
	var body []byte
	for range n {
		size, k := readU32(b)
		if k == 0 || uint64(len(b)-k) < uint64(size) {
			return nil, errMalformed
		}
		fn := b[k : k+int(size)]
		b = b[k+int(size):]
		// Locals: a vector of (count, valtype).
		locals, rest, err := readCount(fn)
		if err != nil {
			return nil, err
		}
		for range locals {
			k := lebLen(rest)
			if k == 0 || len(rest) < k+1 {
				return nil, errMalformed
			}
			rest = rest[k+1:]
		}
		body = append(body[:0], fn[:len(fn)-len(rest)]...)
		body = r.check(body)
		if body, rest, err = r.expr(body, rest, true); err != nil {
			return nil, err
		}
		if len(rest) != 0 {
			return nil, errMalformed
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	if len(b) != 0 {
		return nil, errMalformed
	}
	return out, nil
}

// check appends the budget check:
//
//	global.get $budget; i32.const 1; i32.sub; global.set $budget
//	global.get $budget; i32.eqz
//	if; call $yield; global.set $budget; end
func (r *rewriter) check(b []byte) []byte {
	b = appendU32(append(b, 0x23), r.budget)
	b = append(b, 0x41, 0x01, 0x6b, 0x24)
	b = appendU32(b, r.budget)
	b = appendU32(append(b, 0x23), r.budget)
	b = append(b, 0x45, 0x04, 0x40, 0x10)
	b = appendU32(b, r.yield)
	b = appendU32(append(b, 0x24), r.budget)
	return append(b, 0x0b)
}

// expr copies the instructions of b to out up to the end of an expression:
// the end of b for a function body (body true), else the end instruction
// that closes it (a constant expression). It renumbers function indices and,
// in a body, adds the budget check at each loop head.
func (r *rewriter) expr(out, b []byte, body bool) ([]byte, []byte, error) {
	depth := 0
	for len(b) > 0 {
		op := b[0]
		k, err := immediatesLen(b)
		if err != nil {
			return nil, nil, err
		}
		switch op {
		case 0x10, 0x12, 0xd2: // call, return_call, ref.func
			i, n := readU32(b[1:])
			if n == 0 {
				return nil, nil, errMalformed
			}
			out = appendU32(append(out, op), r.fn(i))
		case 0x23, 0x24: // global.get, global.set
			// The budget's index is past the module's globals: code that
			// names it would be invalid as uploaded, and once instrumented
			// could reset its own budget and never check in.
			if i, _ := readU32(b[1:]); i >= r.budget {
				return nil, nil, fmt.Errorf("global %d: %w", i, errMalformed)
			}
			out = append(out, b[:k]...)
		default:
			out = append(out, b[:k]...)
		}
		b = b[k:]
		switch op {
		case 0x02, 0x04: // block, if
			depth++
		case 0x03: // loop
			depth++
			if body {
				out = r.check(out)
			}
		case 0x0b: // end
			if depth == 0 && !body {
				return out, b, nil
			}
			depth--
		}
	}
	if !body {
		return nil, nil, errMalformed
	}
	return out, b, nil
}

// immediatesLen is the length of the instruction at the start of b, opcode
// and immediates, for the instructions of WebAssembly 2.0 (and the few
// later ones wazero may be configured to accept: tail calls, threads).
func immediatesLen(b []byte) (int, error) {
	leb := func(from, count int) (int, error) {
		for range count {
			n := lebLen(b[min(from, len(b)):])
			if n == 0 {
				return 0, errMalformed
			}
			from += n
		}
		return from, nil
	}
	fixed := func(n int) (int, error) {
		if len(b) < n {
			return 0, errMalformed
		}
		return n, nil
	}
	memarg := func(from int) (int, error) { // align (with a memory index if bit 6 is set), offset
		align, n := readU32(b[min(from, len(b)):])
		if n == 0 {
			return 0, errMalformed
		}
		from += n
		if align&0x40 != 0 {
			return leb(from, 2)
		}
		return leb(from, 1)
	}
	op := b[0]
	switch {
	case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0b || op == 0x0f || op == 0x1a || op == 0x1b ||
		(op >= 0x45 && op <= 0xc4) || op == 0xd1:
		return 1, nil
	case op >= 0x02 && op <= 0x04: // blocktype: an s33
		return leb(1, 1)
	case op == 0x0c || op == 0x0d || op == 0x10 || op == 0x12 || (op >= 0x20 && op <= 0x26) ||
		op == 0x3f || op == 0x40 || op == 0x41 || op == 0x42 || op == 0xd0 || op == 0xd2:
		return leb(1, 1)
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		return leb(1, 2)
	case op == 0x0e: // br_table
		n, k := readU32(b[1:])
		if k == 0 {
			return 0, errMalformed
		}
		return leb(1+k, int(n)+1)
	case op == 0x1c: // select with types: vec(valtype)
		n, k := readU32(b[1:])
		if k == 0 {
			return 0, errMalformed
		}
		return fixed(1 + k + int(n))
	case op >= 0x28 && op <= 0x3e:
		return memarg(1)
	case op == 0x43:
		return fixed(5)
	case op == 0x44:
		return fixed(9)
	case op == 0xfc:
		sub, k := readU32(b[1:])
		if k == 0 {
			return 0, errMalformed
		}
		switch {
		case sub <= 7: // saturating truncations
			return 1 + k, nil
		case sub == 9 || sub == 11 || sub == 13 || (sub >= 15 && sub <= 17):
			return leb(1+k, 1)
		case sub == 8 || sub == 10 || sub == 12 || sub == 14:
			return leb(1+k, 2)
		}
	case op == 0xfd:
		sub, k := readU32(b[1:])
		if k == 0 {
			return 0, errMalformed
		}
		switch {
		case sub <= 11 || sub == 92 || sub == 93: // loads and stores
			return memarg(1 + k)
		case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
			return fixed(1 + k + 16)
		case sub >= 21 && sub <= 34: // lane access
			return fixed(1 + k + 1)
		case sub >= 84 && sub <= 91: // lane loads and stores
			n, err := memarg(1 + k)
			if err != nil {
				return 0, err
			}
			return fixed(n + 1)
		case sub <= 0x113:
			return 1 + k, nil
		}
	case op == 0xfe:
		sub, k := readU32(b[1:])
		if k == 0 {
			return 0, errMalformed
		}
		if sub == 0x03 { // atomic.fence
			return fixed(1 + k + 1)
		}
		return memarg(1 + k)
	}
	return 0, fmt.Errorf("opcode %#x: %w", op, errUnsupported)
}

// lebLen is the length of the LEB128 number at the start of b (at most 10
// bytes), 0 if there is none.
func lebLen(b []byte) int {
	for i, c := range b {
		if i == 10 {
			return 0
		}
		if c < 0x80 {
			return i + 1
		}
	}
	return 0
}

// custom renumbers the function indices of the name section (function,
// local and label names); other custom sections are kept as they are.
func (r *rewriter) custom(b []byte) ([]byte, error) {
	name, rest, err := readName(b)
	if err != nil {
		return nil, err
	}
	if name != "name" {
		return b, nil
	}
	out := append([]byte(nil), b[:len(b)-len(rest)]...)
	for len(rest) > 0 {
		id := rest[0]
		size, k := readU32(rest[1:])
		if k == 0 || uint64(len(rest)-1-k) < uint64(size) {
			return b, nil // a name section that does not parse: wazero ignores it too
		}
		sub := rest[1+k : 1+k+int(size)]
		rest = rest[1+k+int(size):]
		if id >= 1 && id <= 3 { // function names; local and label names, per function
			if sub, err = r.nameMap(sub, id != 1); err != nil {
				return b, nil
			}
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(sub)))
		out = append(out, sub...)
	}
	return out, nil
}

// nameMap renumbers a name map keyed by function index; indirect: each
// entry is a name map of its own.
func (r *rewriter) nameMap(b []byte, indirect bool) ([]byte, error) {
	n, b, err := readCount(b)
	if err != nil {
		return nil, err
	}
	out := appendU32(nil, n)
	for range n {
		i, k := readU32(b)
		if k == 0 {
			return nil, errMalformed
		}
		out, b = appendU32(out, r.fn(i)), b[k:]
		if !indirect {
			var name string
			if name, b, err = readName(b); err != nil {
				return nil, err
			}
			out = appendName(out, name)
			continue
		}
		m, rest, err := readCount(b)
		if err != nil {
			return nil, err
		}
		out = appendU32(out, m)
		b = rest
		for range m {
			j, k := readU32(b)
			if k == 0 {
				return nil, errMalformed
			}
			var name string
			if name, b, err = readName(b[k:]); err != nil {
				return nil, err
			}
			out = appendName(appendU32(out, j), name)
		}
	}
	if len(b) != 0 {
		return nil, errMalformed
	}
	return out, nil
}

// appendU32 appends v as an unsigned LEB128.
func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendS32 appends v as a signed LEB128.
func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
