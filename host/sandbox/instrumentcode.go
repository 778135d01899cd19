package sandbox

// Instrumenting function bodies: the instructions instrumentLoops must step
// over to find the loops.

import "fmt"

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

// instrumentBody appends to out the function body body with check inserted
// after the block type of every loop, and returns out. It fails on locals
// that do not decode, an opcode it does not know (naming it and its offset)
// or an instruction whose immediates do not decode.
func instrumentBody(out, body []byte, check []byte) ([]byte, error) {
	r := &reader{b: body}
	skipLocals(r)
	if r.err != nil {
		return nil, fmt.Errorf("locals: %v", r.err)
	}
	from := 0
	for r.off < len(body) && r.err == nil {
		at := r.off
		op := r.byte()
		if op == 0x03 { // loop blocktype
			r.s64()
			if r.err == nil {
				out = append(out, body[from:r.off]...)
				out = append(out, check...)
				from = r.off
			}
			continue
		}
		if err := skipImmediates(r, op, at); err != nil {
			return nil, err
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return append(out, body[from:]...), nil
}

// skipLocals reads a function body's local declarations (a vector of count
// and value type); a decoding error sticks in r.
func skipLocals(r *reader) {
	groups := r.u32()
	for i := uint32(0); i < groups; i++ {
		r.u32()  // count
		r.byte() // value type
	}
}

// skipImmediates reads the immediates of the instruction op (other than
// loop), which started at offset at. It fails, naming op and at, on an
// opcode it does not know; a decoding error of the immediates sticks in r.
func skipImmediates(r *reader, op byte, at int) error {
	switch {
	case op == 0x02 || op == 0x04 || op == 0x06: // block, if, try: blocktype
		r.s64()
	case hasNoImmediates(op):
	case hasOneIndex(op): // one index / label / memory index
		r.u32()
	case op == 0x0e: // br_table
		skipBrTable(r)
	case op == 0x11 || op == 0x13: // call_indirect: type, table
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		skipSelectTypes(r)
	case op == 0x1f: // try_table blocktype vec(catch)
		skipTryTable(r)
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
		threads(r, r.u32())
	default:
		return fmt.Errorf("unknown opcode %#x at offset %d", op, at)
	}
	return nil
}

// hasNoImmediates reports whether instruction op has no immediates.
func hasNoImmediates(op byte) bool {
	return op <= 0x01 || op == 0x05 || op == 0x0a || op == 0x0b || op == 0x0f || op == 0x19 ||
		op == 0x1a || op == 0x1b || op == 0xd1 || op == 0xd3 || op == 0xd5 || (op >= 0x45 && op <= 0xc4)
}

// hasOneIndex reports whether instruction op has one index (a label,
// function, local, global, table, memory or type index) as its immediate.
func hasOneIndex(op byte) bool {
	return op == 0x07 || op == 0x08 || op == 0x09 || op == 0x18 || op == 0x0c || op == 0x0d ||
		op == 0x10 || op == 0x12 || op == 0x14 || op == 0x15 || (op >= 0x20 && op <= 0x26) ||
		op == 0x3f || op == 0x40 || op == 0xd2 || op == 0xd4 || op == 0xd6
}

// skipBrTable reads br_table's label vector and default label.
func skipBrTable(r *reader) {
	n := r.u32()
	for i := uint32(0); i <= n && r.err == nil; i++ {
		r.u32()
	}
}

// skipSelectTypes reads the value types of a typed select.
func skipSelectTypes(r *reader) {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		r.valtype()
	}
}

// skipTryTable reads try_table's block type and catch clauses; an unknown
// catch kind fails r.
func skipTryTable(r *reader) {
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
}

// threads reads the immediates of the 0xFE-prefixed (threads) instructions:
// atomic.fence's reserved byte, a memarg for all others.
func threads(r *reader, sub uint32) {
	if sub == 0x03 { // atomic.fence
		r.byte()
	} else {
		r.memarg()
	}
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
