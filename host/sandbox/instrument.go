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
// What the checks cost (issue 14), measured with BenchmarkCompute and
// TestComputeInstructions (callgrind instruction counts per call; timing on
// the shared 2-core machine was too noisy to rank them) on the compute test
// guest, about 5 ms of Go natively: the Go wasm port itself costs 7-11× the
// native instruction count (every taken branch of a Go function goes through
// its dispatch loop and br_table; the Go stack lives in linear memory), the
// loop-head checks add 9-16% to that on ordinary code and 55% on a tight
// loop (a sieve: from 7.2× to 11.1× native). Alternatives measured, as
// instructions relative to the module run unchanged (mixed / sieve):
//
//	global budget at loop heads (this)             +11%  +55%
//	flag check only (global.get; if call $yield)    +9%  +49%  (needs a host ticker)
//	counter in a local, global every 1024           +11%  +145%
//	  ... and flushed at every function exit        +15%  +52%
//	function entries and call-free loops only        +7%   +5%  (unsound)
//	budget, locals saved to globals around the call  -     +92%
//
// The cost is not the check's few instructions but the call on its cold
// path: wazero's register allocator then keeps what is live at the loop
// head in memory on the hot path too, so even a check that only reads the
// flag costs almost as much, and counting in a local buys nothing (the
// local is spilled as well). Checking only function entries and loops
// without calls is cheap but cannot bound a Go loop: a Go function is one
// wasm loop, which contains calls whenever the function makes any, while
// the Go loop spinning in it need not. No sound alternative measured
// clearly better, so the budget stays; within ~1.25× of native is out of
// reach for Go guests whatever the instrumentation, as the module run
// unchanged is already 7-11× native in instructions.
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
	secs, err := readSections(wasm)
	if err != nil {
		return nil, err
	}
	mod, err := scanModule(secs)
	if err != nil {
		return nil, err
	}
	if err := mod.checkInstrumentable(); err != nil {
		return nil, err
	}
	w := newRewrite(mod, wasm[:8])
	if err := w.emitSections(secs); err != nil {
		return nil, err
	}
	return w.out, nil
}

// readSections splits wasm, whose 8-byte header was checked, into its
// sections in order. It fails (wrapping errInstrument and naming the
// section id) when a section's size runs past the end of the module.
func readSections(wasm []byte) ([]section, error) {
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
	return secs, nil
}

// moduleInfo is what instrumentLoops reads from a module's sections before
// it rewrites them.
type moduleInfo struct {
	im    imports
	types [][]byte // each type's encoding
	// ownGlobals and ownFuncs count the globals and functions the module
	// defines (not imports).
	ownGlobals, ownFuncs uint32
	// startFn is the function of the start section, when hasStart.
	startFn  uint32
	hasStart bool
	// has records which section ids are present.
	has map[byte]bool
}

// scanModule reads the type, import, function, global and start sections of
// secs. It fails (wrapping errInstrument and naming the section id) on the
// first of them that does not decode.
func scanModule(secs []section) (*moduleInfo, error) {
	m := &moduleInfo{has: map[byte]bool{}}
	for _, s := range secs {
		m.has[s.id] = true
		var err error
		switch s.id {
		case 1:
			m.types, err = readTypes(s.body)
		case 2:
			m.im, err = readImports(s.body)
		case 3:
			sr := &reader{b: s.body}
			m.ownFuncs, err = sr.u32(), sr.err
		case 6:
			sr := &reader{b: s.body}
			m.ownGlobals, err = sr.u32(), sr.err
		case 8:
			sr := &reader{b: s.body}
			m.startFn, m.hasStart, err = sr.u32(), true, sr.err
		}
		if err != nil {
			return nil, fmt.Errorf("%w: section %d: %v", errInstrument, s.id, err)
		}
	}
	return m, nil
}

// checkInstrumentable fails (wrapping errInstrument) unless the module
// imports wasi_snapshot_preview1.sched_yield with type () -> i32 and has
// both a function and a code section.
func (m *moduleInfo) checkInstrumentable() error {
	// sched_yield: () -> i32
	im := m.im
	if im.schedYield < 0 || int(im.schedYieldType) >= len(m.types) || string(m.types[im.schedYieldType]) != "\x60\x00\x01\x7f" {
		return fmt.Errorf("%w: it does not import wasi_snapshot_preview1.sched_yield () -> i32", errInstrument)
	}
	if !m.has[3] || !m.has[10] {
		return fmt.Errorf("%w: no function or code section", errInstrument)
	}
	return nil
}

// voidType returns the index of the type () -> () among the module's types
// and false, or the index it gets when appended and true when the module
// has no such type.
func (m *moduleInfo) voidType() (index uint32, add bool) {
	for i, t := range m.types {
		if string(t) == "\x60\x00\x00" {
			return uint32(i), false
		}
	}
	return uint32(len(m.types)), true
}

// rewrite is the output of instrumentLoops under construction: the
// encodings of what it adds to the module and the sections emitted so far.
type rewrite struct {
	mod      *moduleInfo
	voidType uint32 // type index of $yield, () -> ()
	addType  bool   // voidType must be appended to the type section
	// newGlobals encodes the interrupt flag and the budget; newExport the
	// newExports exports added (the flag, and the start function).
	newGlobals []byte
	newExport  []byte
	newExports uint32
	yieldBody  []byte // the body of $yield
	check      []byte // the loop-head check
	out        []byte
	// added records the sections the module lacked and that were emitted.
	added map[byte]bool
}

// newRewrite computes the indexes and encodings that instrumentLoops adds to
// mod and starts the output with header (the module's first 8 bytes).
func newRewrite(mod *moduleInfo, header []byte) *rewrite {
	w := &rewrite{mod: mod, added: map[byte]bool{}}
	w.voidType, w.addType = mod.voidType()
	flag := mod.im.globals + mod.ownGlobals
	budget := flag + 1
	yieldFn := mod.im.funcs + mod.ownFuncs
	w.newGlobals = encodeNewGlobals()
	w.newExport, w.newExports = encodeNewExports(mod, flag)
	w.yieldBody = encodeYieldBody(uint32(mod.im.schedYield), flag, budget)
	w.check = encodeLoopCheck(budget, yieldFn)
	w.out = append([]byte(nil), header...)
	return w
}

// encodeNewGlobals returns the two globals instrumentLoops adds: the
// interrupt flag (mutable i32, 0) and the budget (mutable i32, yieldEvery).
func encodeNewGlobals() []byte {
	g := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41}
	g = appendS32(g, yieldEvery)
	return append(g, 0x0b)
}

// encodeNewExports returns the exports instrumentLoops adds and their
// count: global flag as InterruptGlobal and, when the module has a start
// section, its function as StartExport.
func encodeNewExports(mod *moduleInfo, flag uint32) ([]byte, uint32) {
	e := appendName(nil, InterruptGlobal)
	e = append(e, 0x03)
	e = appendU32(e, flag)
	n := uint32(1)
	if mod.hasStart {
		e = appendName(e, StartExport)
		e = append(e, 0x00)
		e = appendU32(e, mod.startFn)
		n++
	}
	return e, n
}

// encodeYieldBody returns the body of $yield (no locals): refill global
// budget, call function schedYield and drop its result, and trap if global
// flag is set.
func encodeYieldBody(schedYield, flag, budget uint32) []byte {
	b := []byte{0x00, 0x41}
	b = appendS32(b, yieldEvery)
	b = append(b, 0x24)
	b = appendU32(b, budget)
	b = append(b, 0x10)
	b = appendU32(b, schedYield)
	b = append(b, 0x1a, 0x23)
	b = appendU32(b, flag)
	return append(b, 0x04, 0x40, 0x00, 0x0b, 0x0b)
}

// encodeLoopCheck returns the loop-head check: decrement global budget and
// call function yieldFn when it reaches zero.
func encodeLoopCheck(budget, yieldFn uint32) []byte {
	c := []byte{0x23}
	c = appendU32(c, budget)
	c = append(c, 0x41, 0x01, 0x6b, 0x24)
	c = appendU32(c, budget)
	c = append(c, 0x23)
	c = appendU32(c, budget)
	c = append(c, 0x45, 0x04, 0x40, 0x10)
	c = appendU32(c, yieldFn)
	return append(c, 0x0b)
}

// sectionOrder is the required order of the known sections; custom
// sections (0) keep their place.
var sectionOrder = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

// emit appends section id with body to the output.
func (w *rewrite) emit(id byte, body []byte) {
	w.out = append(w.out, id)
	w.out = appendU32(w.out, uint32(len(body)))
	w.out = append(w.out, body...)
}

// appendItems re-emits a vector section with n items (encoded in items)
// added at its end.
func (w *rewrite) appendItems(id byte, body []byte, n uint32, items []byte) {
	sr := &reader{b: body}
	count := sr.u32()
	b := appendU32(nil, count+n)
	b = append(b, body[sr.off:]...)
	w.emit(id, append(b, items...))
}

// addMissing emits, once each, the type, global and export sections the
// module lacks whose place in sectionOrder comes before before (the type
// section only when the void type must be added).
func (w *rewrite) addMissing(before int) {
	for _, id := range []byte{1, 6, 7} {
		if !w.mod.has[id] && !w.added[id] && before > sectionOrder[id] {
			switch id {
			case 1:
				if w.addType {
					w.emit(1, []byte{1, 0x60, 0x00, 0x00})
				}
			case 6:
				w.emit(6, append([]byte{2}, w.newGlobals...))
			case 7:
				w.emit(7, append(appendU32(nil, w.newExports), w.newExport...))
			}
			w.added[id] = true
		}
	}
}

// emitSections emits secs in order with the additions, then the missing
// sections that go last. It fails (wrapping errInstrument) when a function
// body cannot be instrumented.
func (w *rewrite) emitSections(secs []section) error {
	for _, s := range secs {
		if s.id != 0 {
			w.addMissing(sectionOrder[s.id])
		}
		if err := w.emitSection(s); err != nil {
			return err
		}
	}
	w.addMissing(math.MaxInt)
	return nil
}

// emitSection emits one of the module's sections: the type, function,
// global and export sections with their items added, the code section
// instrumented and with the body of $yield added, the start section not at
// all (exported as StartExport instead) and any other unchanged.
func (w *rewrite) emitSection(s section) error {
	switch s.id {
	case 1:
		if w.addType {
			w.appendItems(1, s.body, 1, []byte{0x60, 0x00, 0x00})
		} else {
			w.emit(1, s.body)
		}
	case 3:
		w.appendItems(3, s.body, 1, appendU32(nil, w.voidType))
	case 6:
		w.appendItems(6, s.body, 2, w.newGlobals)
	case 7:
		w.appendItems(7, s.body, w.newExports, w.newExport)
	case 8:
		// Dropped: exported as StartExport instead.
	case 11:
		w.emit(11, coalesceData(s.body, w.mod.has[12]))
	case 10:
		body, err := instrumentCode(s.body, w.check)
		if err != nil {
			return fmt.Errorf("%w: %v", errInstrument, err)
		}
		fn := appendU32(nil, uint32(len(w.yieldBody)))
		w.appendItems(10, body, 1, append(fn, w.yieldBody...))
	default:
		w.emit(s.id, s.body)
	}
	return nil
}
