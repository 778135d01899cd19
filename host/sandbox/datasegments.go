package sandbox

import (
	"cmp"
	"slices"
)

// Coalescing data segments.
//
// Go's linker emits one active data segment per symbol: the samples module
// has 44,155 of them for 1.4 MB of data. wazero, at every instantiation,
// evaluates each segment's offset expression (an allocation each) and
// keeps a [][]byte of one entry per segment (1 MB), which was most of the
// Go heap an instance cost and a large part of its instantiation time. The
// rewriter (instrumentLoops) therefore merges runs of segments that follow
// each other in memory, closer than maxDataGap bytes, into one segment
// whose gaps are zero-filled. Memory after instantiation is byte for byte
// the same, because fresh linear memory is zero and the rewrite happens
// only when every segment is active, in memory 0, at a constant offset,
// and no two overlap (so no other segment writes into a filled gap, and the
// order they are applied in does not matter). A module with a data count section
// (bulk-memory instructions refer to segments by index) is left as it is.

// maxDataGap is the largest gap between two segments that coalescing fills
// with zeros.
const maxDataGap = 4096

// dataSegment is an active data segment of memory 0 at a constant offset.
type dataSegment struct {
	offset uint32
	init   []byte
}

// readDataSegments parses a data section body whose segments are all of
// the kind coalesceData handles and overlap nowhere, and returns them in
// ascending order of offset (the order they are applied in does not matter
// then); ok is false otherwise.
func readDataSegments(body []byte) (segs []dataSegment, ok bool) {
	r := &reader{b: body}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		if flag := r.u32(); flag != 0 {
			return nil, false
		}
		if r.byte() != 0x41 { // i32.const
			return nil, false
		}
		off, good := readS32(r)
		if !good || off < 0 || r.byte() != 0x0b {
			return nil, false
		}
		init := r.bytes(int(r.u32()))
		segs = append(segs, dataSegment{offset: uint32(off), init: init})
	}
	if r.err != nil || r.off != len(body) {
		return nil, false
	}
	slices.SortStableFunc(segs, func(a, b dataSegment) int { return cmp.Compare(a.offset, b.offset) })
	for i := 1; i < len(segs); i++ {
		if uint64(segs[i-1].offset)+uint64(len(segs[i-1].init)) > uint64(segs[i].offset) {
			return nil, false
		}
	}
	return segs, true
}

// readS32 reads a signed LEB128 i32.
func readS32(r *reader) (int32, bool) {
	var v int64
	var shift uint
	for {
		b := r.byte()
		if r.err != nil || shift > 28 {
			return 0, false
		}
		v |= int64(b&0x7f) << shift
		shift += 7
		if b&0x80 == 0 {
			if shift < 64 && b&0x40 != 0 {
				v |= -1 << shift
			}
			return int32(v), v >= -1<<31 && v < 1<<31
		}
	}
}

// coalesceData returns the data section body with runs of nearby segments
// merged (see above), or body itself when it cannot be rewritten or
// nothing merges. hasDataCount: the module has a data count section.
func coalesceData(body []byte, hasDataCount bool) []byte {
	if hasDataCount {
		return body
	}
	segs, ok := readDataSegments(body)
	if !ok || len(segs) < 2 {
		return body
	}
	var merged []dataSegment
	for _, s := range segs {
		if k := len(merged) - 1; k >= 0 {
			last := &merged[k]
			end := uint64(last.offset) + uint64(len(last.init))
			if gap := uint64(s.offset) - end; gap <= maxDataGap {
				last.init = append(last.init, make([]byte, gap)...)
				last.init = append(last.init, s.init...)
				continue
			}
		}
		merged = append(merged, dataSegment{offset: s.offset, init: append([]byte(nil), s.init...)})
	}
	if len(merged) == len(segs) {
		return body
	}
	out := appendU32(nil, uint32(len(merged)))
	for _, s := range merged {
		out = append(out, 0x00, 0x41)
		out = appendS32(out, int32(s.offset))
		out = append(out, 0x0b)
		out = appendU32(out, uint32(len(s.init)))
		out = append(out, s.init...)
	}
	return out
}
