package sandbox

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/host"

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

// BenchmarkHello5Guest measures the guest side of one hello5 orchestration
// without Redis: the orchestrator's six steps on a warm instance and its
// five Bench_Echo activities on an activity instance.
func BenchmarkHello5Guest(b *testing.B) {
	ctx := context.Background()
	wasm, err := os.ReadFile("../../samples/samples.wasm")
	if err != nil {
		b.Fatal(err)
	}
	e := newTestEngine(b, filepath.Join(os.TempDir(), "durablewasm-test-cache"))
	d := Digest(wasm)
	if _, err := e.Compile(ctx, d, wasm); err != nil {
		b.Fatal(err)
	}
	orch, err := e.NewInstance(ctx, d, true, nil)
	if err != nil {
		b.Fatal(err)
	}
	act, err := e.NewInstance(ctx, d, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	base := slog.New(slog.NewTextHandler(io.Discard, nil))
	var actNs, orchNs, startNs time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		orch.nextHandle++
		g := &Orchestration{ctx: ctx, inst: orch, handle: orch.nextHandle}
		st := replay.New("h", replay.Limits{})
		ev := []abi.HistoryEvent{{Type: abi.EventExecutionStarted, Name: "Hello5", Input: `"x"`, ExecutionID: "x"}}
		for step := 0; ; step++ {
			t0 := time.Now()
			res, err := st.Step(int64(step+1)*1000, ev, g)
			orchNs += time.Since(t0)
			if step == 0 {
				startNs += time.Since(t0)
			}
			if err != nil {
				b.Fatal(err)
			}
			if res.Outcome != nil {
				break
			}
			if len(res.Actions) != 1 {
				b.Fatalf("step %d: %d actions", step, len(res.Actions))
			}
			a := res.Actions[0].Event
			t0 = time.Now()
			item := &host.ActivityItem{InstanceID: "h", TaskID: a.EventID, Name: a.Name, Input: a.Input}
			ok, out, err := act.RunActivity(ctx, item, func() *slog.Logger { return base }, nil)
			actNs += time.Since(t0)
			if err != nil || !ok {
				b.Fatal(ok, out, err)
			}
			ev = []abi.HistoryEvent{{Type: abi.EventTaskCompleted, TaskScheduledID: a.EventID, Result: out}}
		}
		orch.drop(ctx, g.handle)
	}
	b.ReportMetric(float64(orchNs.Nanoseconds())/float64(b.N)/1000, "orch-µs/op")
	b.ReportMetric(float64(actNs.Nanoseconds())/float64(b.N)/1000, "act-µs/op")
	b.ReportMetric(float64(startNs.Nanoseconds())/float64(b.N)/1000, "start-µs/op")
}
