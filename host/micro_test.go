package host

import (
	"context"
	"testing"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
)

// BenchmarkExportCall measures one call of a trivial export (abi_version) on
// a warm Go guest: the fixed cost of entering the guest.
func BenchmarkExportCall(b *testing.B) {
	e := newTestEngine(b, "")
	h := newLoopHarness(b, e, 1<<30)
	fn := h.inst.mod.ExportedFunction(abi.ExportABIVersion)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := fn.Call(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleResume measures resuming a parked orchestration that finds
// nothing resolved and parks again: one export call, a goroutine switch and
// one poll host call.
func BenchmarkIdleResume(b *testing.B) {
	e := newTestEngine(b, "")
	h := newLoopHarness(b, e, 1<<30)
	var s *replay.State = h.state
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := h.guest.Resume(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleResumeNoDeadline is BenchmarkIdleResume without the per-call
// deadline context.
func BenchmarkIdleResumeNoDeadline(b *testing.B) {
	e := newTestEngine(b, "")
	h := newLoopHarness(b, e, 1<<30)
	ctx := withCall(context.Background(), &orchCall{inst: h.inst})
	h.inst.current = h.guest.handle
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.inst.fnRes.Call(ctx, uint64(h.guest.handle)); err != nil {
			b.Fatal(err)
		}
	}
}
