package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Interrupting guests.
//
// A guest that loops forever must be stopped at its deadline. wazero can do
// that itself (RuntimeConfig.WithCloseOnContextDone), but its compiled code
// then leaves native code for a call into Go at every loop iteration
// (wazero#2466), which made an idle orchestration resume 4× slower and cost
// hello5 a fifth of its throughput. Instead, the engine rewrites each module
// before compiling it. It adds two mutable i32 globals, an interrupt flag
// (exported as InterruptGlobal) and an iteration budget, and one function,
// and at the head of every loop it inserts
//
//	global.get $budget
//	i32.const 1
//	i32.sub
//	global.set $budget
//	global.get $budget
//	i32.eqz
//	if
//	  call $yield
//	end
//
// $yield refills the budget (yieldEvery iterations), calls the module's own
// WASI sched_yield import and traps (unreachable) if the interrupt flag is
// set. The host sets the flag from any goroutine at the deadline; the guest
// traps within yieldEvery loop iterations, and the instance is discarded as
// after any trap.
//
// The call into Go is not only where the flag is read: native code cannot
// be preempted by the Go runtime, and a garbage collection waits for every
// goroutine to reach a safe point, so a guest spinning without ever leaving
// native code would stall the whole process (the deadline timer included)
// until it returned. Leaving for Go every yieldEvery iterations bounds that
// stall to microseconds.
//
// A start section is removed and its function exported as StartExport
// instead: the engine calls it right after instantiation, under the
// instantiation deadline, like any other guest call. (A start function that
// ran inside wazero's instantiation could not be interrupted: the interrupt
// global cannot be reached before instantiation returns.)
//
// The rewrite appends a type, globals, a function and exports and changes
// no existing index, so the module's behaviour is otherwise unchanged. A
// module the rewriter cannot read (an opcode it does not know), or one that
// does not import wasi_snapshot_preview1.sched_yield, is compiled unchanged
// on a runtime with WithCloseOnContextDone instead.

// InterruptGlobal is the name under which instrumented modules export the
// interrupt flag.
const InterruptGlobal = "durablewasm_interrupt"

// StartExport is the name under which instrumented modules export the
// function of their start section, which the rewrite removes: the engine
// calls it after instantiation, under the instantiation deadline
// (EngineOptions.InstantiateTimeout).
const StartExport = "durablewasm_start"

// yieldEvery is how many loop iterations run between two calls into Go.
const yieldEvery = 1 << 16

var errInstrument = errors.New("cannot instrument module")

type section struct {
	id   byte
	body []byte
}

// instrumentLoops returns wasm with the interrupt global and the loop-head
// checks added. It fails, naming why, on a malformed module, an opcode it
// does not know or a module without a sched_yield import; wasm itself is not
// modified.
func instrumentLoops(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || binary.LittleEndian.Uint32(wasm[4:8]) != 1 {
		return nil, fmt.Errorf("%w: not a WebAssembly 1.0 binary", errInstrument)
	}
	var secs []section
	r := &reader{b: wasm, off: 8}
	for r.off < len(r.b) {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("%w: section %d: %v", errInstrument, id, r.err)
		}
		secs = append(secs, section{id, body})
	}
	var im imports
	var types [][]byte // each type's encoding
	ownGlobals, ownFuncs := uint32(0), uint32(0)
	startFn, hasStart := uint32(0), false
	has := map[byte]bool{}
	for _, s := range secs {
		has[s.id] = true
		var err error
		switch s.id {
		case 1:
			types, err = readTypes(s.body)
		case 2:
			im, err = readImports(s.body)
		case 3:
			sr := &reader{b: s.body}
			ownFuncs, err = sr.u32(), sr.err
		case 6:
			sr := &reader{b: s.body}
			ownGlobals, err = sr.u32(), sr.err
		case 8:
			sr := &reader{b: s.body}
			startFn, hasStart, err = sr.u32(), true, sr.err
		}
		if err != nil {
			return nil, fmt.Errorf("%w: section %d: %v", errInstrument, s.id, err)
		}
	}
	// sched_yield: () -> i32
	if im.schedYield < 0 || int(im.schedYieldType) >= len(types) || string(types[im.schedYieldType]) != "\x60\x00\x01\x7f" {
		return nil, fmt.Errorf("%w: it does not import wasi_snapshot_preview1.sched_yield () -> i32", errInstrument)
	}
	if !has[3] || !has[10] {
		return nil, fmt.Errorf("%w: no function or code section", errInstrument)
	}
	// The type () -> () of the new function, appended if missing.
	voidType, addType := uint32(len(types)), true
	for i, t := range types {
		if string(t) == "\x60\x00\x00" {
			voidType, addType = uint32(i), false
			break
		}
	}
	flag := im.globals + ownGlobals
	budget := flag + 1
	yieldFn := im.funcs + ownFuncs

	newGlobals := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41}
	newGlobals = appendS32(newGlobals, yieldEvery)
	newGlobals = append(newGlobals, 0x0b)
	newExport := appendName(nil, InterruptGlobal)
	newExport = append(newExport, 0x03)
	newExport = appendU32(newExport, flag)
	newExports := uint32(1)
	if hasStart {
		newExport = appendName(newExport, StartExport)
		newExport = append(newExport, 0x00)
		newExport = appendU32(newExport, startFn)
		newExports++
	}
	// The body of $yield: no locals.
	yieldBody := []byte{0x00, 0x41}
	yieldBody = appendS32(yieldBody, yieldEvery)
	yieldBody = append(yieldBody, 0x24)
	yieldBody = appendU32(yieldBody, budget)
	yieldBody = append(yieldBody, 0x10)
	yieldBody = appendU32(yieldBody, uint32(im.schedYield))
	yieldBody = append(yieldBody, 0x1a, 0x23)
	yieldBody = appendU32(yieldBody, flag)
	yieldBody = append(yieldBody, 0x04, 0x40, 0x00, 0x0b, 0x0b)
	// The loop-head check.
	check := []byte{0x23}
	check = appendU32(check, budget)
	check = append(check, 0x41, 0x01, 0x6b, 0x24)
	check = appendU32(check, budget)
	check = append(check, 0x23)
	check = appendU32(check, budget)
	check = append(check, 0x45, 0x04, 0x40, 0x10)
	check = appendU32(check, yieldFn)
	check = append(check, 0x0b)

	out := append([]byte(nil), wasm[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
	}
	// appendItems re-emits a vector section with items added at its end.
	appendItems := func(id byte, body []byte, n uint32, items []byte) {
		sr := &reader{b: body}
		count := sr.u32()
		b := appendU32(nil, count+n)
		b = append(b, body[sr.off:]...)
		emit(id, append(b, items...))
	}
	// Known sections in their required order; custom sections (0) keep
	// their place.
	order := map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}
	added := map[byte]bool{}
	addMissing := func(before int) {
		for _, id := range []byte{1, 6, 7} {
			if !has[id] && !added[id] && before > order[id] {
				switch id {
				case 1:
					if addType {
						emit(1, []byte{1, 0x60, 0x00, 0x00})
					}
				case 6:
					emit(6, append([]byte{2}, newGlobals...))
				case 7:
					emit(7, append(appendU32(nil, newExports), newExport...))
				}
				added[id] = true
			}
		}
	}
	for _, s := range secs {
		if s.id != 0 {
			addMissing(order[s.id])
		}
		switch s.id {
		case 1:
			if addType {
				appendItems(1, s.body, 1, []byte{0x60, 0x00, 0x00})
			} else {
				emit(1, s.body)
			}
		case 3:
			appendItems(3, s.body, 1, appendU32(nil, voidType))
		case 6:
			appendItems(6, s.body, 2, newGlobals)
		case 7:
			appendItems(7, s.body, newExports, newExport)
		case 8:
			// Dropped: exported as StartExport instead.
		case 10:
			body, err := instrumentCode(s.body, check)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", errInstrument, err)
			}
			fn := appendU32(nil, uint32(len(yieldBody)))
			appendItems(10, body, 1, append(fn, yieldBody...))
		default:
			emit(s.id, s.body)
		}
	}
	addMissing(math.MaxInt)
	return out, nil
}

// imports is what instrumentLoops needs from the import section.
type imports struct {
	funcs, globals uint32
	// schedYield is the function index of wasi_snapshot_preview1.sched_yield
	// (-1 when not imported), schedYieldType its type index.
	schedYield     int64
	schedYieldType uint32
}

func readImports(b []byte) (imports, error) {
	im := imports{schedYield: -1}
	r := &reader{b: b}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		mod := string(r.bytes(int(r.u32())))
		name := string(r.bytes(int(r.u32())))
		switch kind := r.byte(); kind {
		case 0: // function: type index
			t := r.u32()
			if mod == "wasi_snapshot_preview1" && name == "sched_yield" && im.schedYield < 0 {
				im.schedYield, im.schedYieldType = int64(im.funcs), t
			}
			im.funcs++
		case 1: // table: reftype, limits
			r.byte()
			r.limits()
		case 2: // memory: limits
			r.limits()
		case 3: // global: valtype, mutability
			r.byte()
			r.byte()
			im.globals++
		case 4: // tag: attribute, type index
			r.byte()
			r.u32()
		default:
			return im, fmt.Errorf("import %d: unknown kind %#x", i, kind)
		}
	}
	return im, r.err
}

// readTypes returns the encoding of each function type.
func readTypes(b []byte) ([][]byte, error) {
	r := &reader{b: b}
	n := r.u32()
	var out [][]byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		from := r.off
		if f := r.byte(); f != 0x60 {
			return nil, fmt.Errorf("type %d: form %#x is not a function type", i, f)
		}
		for k := 0; k < 2; k++ { // params, results
			c := r.u32()
			for j := uint32(0); j < c && r.err == nil; j++ {
				r.valtype()
			}
		}
		out = append(out, r.b[from:r.off])
	}
	return out, r.err
}

// instrumentCode rewrites the code section's function bodies, inserting
// check after the block type of every loop.
func instrumentCode(b []byte, check []byte) ([]byte, error) {
	r := &reader{b: b}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(b)+len(b)/16), n)
	var fn []byte
	for i := uint32(0); i < n; i++ {
		size := r.u32()
		body := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("function body %d: %v", i, r.err)
		}
		var err error
		fn, err = instrumentBody(fn[:0], body, check)
		if err != nil {
			return nil, fmt.Errorf("function body %d: %v", i, err)
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("code section: %d trailing bytes", len(b)-r.off)
	}
	return out, nil
}

func instrumentBody(out, body []byte, check []byte) ([]byte, error) {
	r := &reader{b: body}
	groups := r.u32()
	for i := uint32(0); i < groups; i++ {
		r.u32()  // count
		r.byte() // value type
	}
	if r.err != nil {
		return nil, fmt.Errorf("locals: %v", r.err)
	}
	from := 0
	for r.off < len(body) && r.err == nil {
		at := r.off
		op := r.byte()
		switch {
		case op == 0x03: // loop blocktype
			r.s64()
			if r.err == nil {
				out = append(out, body[from:r.off]...)
				out = append(out, check...)
				from = r.off
			}
		case op == 0x02 || op == 0x04 || op == 0x06: // block, if, try: blocktype
			r.s64()
		case op <= 0x01 || op == 0x05 || op == 0x0a || op == 0x0b || op == 0x0f || op == 0x19 ||
			op == 0x1a || op == 0x1b || op == 0xd1 || op == 0xd3 || op == 0xd5 || (op >= 0x45 && op <= 0xc4):
			// no immediates
		case op == 0x07 || op == 0x08 || op == 0x09 || op == 0x18 || op == 0x0c || op == 0x0d ||
			op == 0x10 || op == 0x12 || op == 0x14 || op == 0x15 || (op >= 0x20 && op <= 0x26) ||
			op == 0x3f || op == 0x40 || op == 0xd2 || op == 0xd4 || op == 0xd6:
			// one index / label / memory index
			r.u32()
		case op == 0x0e: // br_table
			n := r.u32()
			for i := uint32(0); i <= n && r.err == nil; i++ {
				r.u32()
			}
		case op == 0x11 || op == 0x13: // call_indirect: type, table
			r.u32()
			r.u32()
		case op == 0x1c: // select t*
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				r.valtype()
			}
		case op == 0x1f: // try_table blocktype vec(catch)
			r.s64()
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				switch k := r.byte(); k {
				case 0, 1:
					r.u32()
					r.u32()
				case 2, 3:
					r.u32()
				default:
					r.fail(fmt.Errorf("try_table: unknown catch kind %#x", k))
				}
			}
		case op >= 0x28 && op <= 0x3e: // loads and stores
			r.memarg()
		case op == 0x41:
			r.s64()
		case op == 0x42:
			r.s64()
		case op == 0x43:
			r.bytes(4)
		case op == 0x44:
			r.bytes(8)
		case op == 0xd0: // ref.null heaptype
			r.s64()
		case op == 0xfc:
			misc(r, r.u32())
		case op == 0xfd:
			simd(r, r.u32())
		case op == 0xfe:
			sub := r.u32()
			if sub == 0x03 { // atomic.fence
				r.byte()
			} else {
				r.memarg()
			}
		default:
			return nil, fmt.Errorf("unknown opcode %#x at offset %d", op, at)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return append(out, body[from:]...), nil
}

// misc reads the immediates of the 0xFC-prefixed instructions.
func misc(r *reader, sub uint32) {
	switch {
	case sub <= 7: // saturating truncations
	case sub == 8: // memory.init data, mem
		r.u32()
		r.u32()
	case sub == 9 || sub == 13 || sub == 15 || sub == 16 || sub == 17 || sub == 11: // one index
		r.u32()
	case sub == 10 || sub == 12 || sub == 14: // two indexes
		r.u32()
		r.u32()
	default:
		r.fail(fmt.Errorf("unknown 0xfc instruction %d", sub))
	}
}

// simd reads the immediates of the 0xFD-prefixed (vector) instructions.
func simd(r *reader, sub uint32) {
	switch {
	case sub <= 11 || sub == 92 || sub == 93: // loads and stores
		r.memarg()
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract/replace lane
		r.byte()
	case sub >= 84 && sub <= 91: // load/store lane
		r.memarg()
		r.byte()
	case sub <= 275: // no immediates
	default:
		r.fail(fmt.Errorf("unknown 0xfd instruction %d", sub))
	}
}

// reader decodes the binary format; the first error sticks.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.off = len(r.b)
}

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.fail(errors.New("unexpected end"))
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || r.off+n > len(r.b) {
		r.fail(errors.New("unexpected end"))
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail(errors.New("LEB128 too long"))
	return 0
}

func (r *reader) s64() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail(errors.New("LEB128 too long"))
}

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: memory index follows
		r.u32()
	}
	r.u32() // offset (u64 with memory64; u32 here)
}

func (r *reader) valtype() {
	switch t := r.byte(); t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
	default:
		r.fail(fmt.Errorf("unknown value type %#x", t))
	}
}

func appendU32(b []byte, v uint32) []byte {
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

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}
