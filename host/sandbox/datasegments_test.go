package sandbox

import (
	"bytes"
	"context"
	"testing"

	"github.com/durablewasm/durablewasm/samples"
)

// dataImage applies the data section of wasm to zeroed memory and returns
// the image and the number of segments.
func dataImage(t *testing.T, wasm []byte) ([]byte, int) {
	t.Helper()
	secs, err := readSections(wasm)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secs {
		if s.id != 11 {
			continue
		}
		segs, ok := readDataSegments(s.body)
		if !ok {
			t.Fatal("the data section is not one coalesceData reads")
		}
		var img []byte
		for _, d := range segs {
			if end := int(d.offset) + len(d.init); end > len(img) {
				img = append(img, make([]byte, end-len(img))...)
			}
			copy(img[d.offset:], d.init)
		}
		return img, len(segs)
	}
	t.Fatal("no data section")
	return nil, 0
}

// TestCoalescedDataIsTheSameMemory: the instrumented samples module has a
// few data segments instead of tens of thousands, and they write exactly
// the bytes the original ones do.
func TestCoalescedDataIsTheSameMemory(t *testing.T) {
	inst, err := instrumentLoops(samples.Wasm)
	if err != nil {
		t.Fatal(err)
	}
	want, before := dataImage(t, samples.Wasm)
	got, after := dataImage(t, inst)
	if !bytes.Equal(got, want) {
		t.Fatalf("coalesced data writes other bytes (%d vs %d bytes)", len(got), len(want))
	}
	if before < 1000 || after > before/100 {
		t.Errorf("%d segments became %d; want at most 1%%", before, after)
	}
	t.Logf("%d data segments → %d (%d bytes)", before, after, len(got))
}

// TestCoalesceDataLeavesWhatItCannotMerge: overlapping segments, passive
// ones, and a module with a data count section are left alone; segments out
// of order are merged in order of offset.
func TestCoalesceDataLeavesWhatItCannotMerge(t *testing.T) {
	seg := func(off byte, b ...byte) []byte { return append([]byte{0x00, 0x41, off, 0x0b, byte(len(b))}, b...) }
	two := func(a, b []byte) []byte { return append(append([]byte{2}, a...), b...) }
	for name, body := range map[string][]byte{
		"overlapping": two(seg(0, 1, 2, 3), seg(2, 9)),
		"passive":     append([]byte{2, 0x01, 1, 7}, seg(5, 1)...),
	} {
		if out := coalesceData(body, false); !bytes.Equal(out, body) {
			t.Errorf("%s: rewritten to % x", name, out)
		}
	}
	adjacent := two(seg(0, 1, 2), seg(4, 3))
	if out := coalesceData(adjacent, true); !bytes.Equal(out, adjacent) {
		t.Errorf("with a data count section: rewritten")
	}
	if out, want := coalesceData(adjacent, false), append([]byte{1}, seg(0, 1, 2, 0, 0, 3)...); !bytes.Equal(out, want) {
		t.Errorf("adjacent: % x, want % x", out, want)
	}
	if out, want := coalesceData(two(seg(4, 3), seg(0, 1, 2)), false), append([]byte{1}, seg(0, 1, 2, 0, 0, 3)...); !bytes.Equal(out, want) {
		t.Errorf("descending: % x, want % x", out, want)
	}
}

// BenchmarkNewInstance creates an activity instance of the samples module
// (instantiation, the Go runtime's _initialize) and closes it.
func BenchmarkNewInstance(b *testing.B) {
	e := newTestEngine(b, b.TempDir())
	ctx := context.Background()
	const d = "samples"
	if _, err := e.Compile(ctx, d, samples.Wasm); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		g, err := e.NewInstance(ctx, d, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		g.Close(ctx)
	}
}
