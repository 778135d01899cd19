package sandbox

// Reading and writing the WebAssembly binary format, for instrumentLoops.

import (
	"errors"
	"fmt"
)

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
