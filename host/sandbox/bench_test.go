package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
	"github.com/durablewasm/durablewasm/samples"
)

var (
	loopOnce sync.Once
	loopWasm []byte
	loopErr  error
)

// loopGuest builds testdata/guests/loop once per test binary.
func loopGuest(tb testing.TB) []byte {
	tb.Helper()
	loopOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dw-loop")
		if err != nil {
			loopErr = err
			return
		}
		out := filepath.Join(dir, "loop.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, "./testdata/guests/loop")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			loopErr = fmt.Errorf("%v: %s", err, b)
			return
		}
		loopWasm, loopErr = os.ReadFile(out)
	})
	if loopErr != nil {
		tb.Fatal(loopErr)
	}
	return loopWasm
}

func newTestEngine(tb testing.TB, cacheDir string) *Engine {
	tb.Helper()
	e, err := NewEngine(context.Background(), EngineOptions{CacheDir: cacheDir})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// BenchmarkCompileCold compiles the samples module with no compilation cache.
func BenchmarkCompileCold(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e := newTestEngine(b, "-")
		if _, err := e.Compile(context.Background(), Digest(samples.Wasm), samples.Wasm); err != nil {
			b.Fatal(err)
		}
		e.Close(context.Background())
	}
}

// BenchmarkCompileCached compiles the samples module in a fresh engine whose
// on-disk compilation cache already holds it (a worker restart).
func BenchmarkCompileCached(b *testing.B) {
	dir := b.TempDir()
	warm := newTestEngine(b, dir)
	if _, err := warm.Compile(context.Background(), Digest(samples.Wasm), samples.Wasm); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := newTestEngine(b, dir)
		if _, err := e.Compile(context.Background(), Digest(samples.Wasm), samples.Wasm); err != nil {
			b.Fatal(err)
		}
		e.Close(context.Background())
	}
}

// loopHarness drives the Loop orchestrator of one warm instance directly
// through the replay core, with activities completed in memory.
type loopHarness struct {
	inst  *Instance
	state *replay.State
	guest *Orchestration
	hist  []abi.HistoryEvent
	now   int64
	// dropHistory stops recording history (the warm-step benchmark does not
	// need it, and appending to it would dominate the measurement).
	dropHistory bool
}

func newLoopHarness(tb testing.TB, e *Engine, n int) *loopHarness {
	tb.Helper()
	ctx := context.Background()
	wasm := loopGuest(tb)
	digest := Digest(wasm)
	if _, err := e.Compile(ctx, digest, wasm); err != nil {
		tb.Fatal(err)
	}
	inst, err := e.NewInstance(ctx, digest, true, nil)
	if err != nil {
		tb.Fatal(err)
	}
	inst.nextHandle++
	h := &loopHarness{inst: inst, state: replay.New("loop", replay.Limits{}), guest: &Orchestration{ctx: ctx, inst: inst, handle: inst.nextHandle}}
	h.step(tb, abi.HistoryEvent{Type: abi.EventExecutionStarted, Name: "Loop", Input: fmt.Sprint(n), ExecutionID: "x"})
	return h
}

// step applies one event and returns the id of the task scheduled, or -1.
func (h *loopHarness) step(tb testing.TB, ev abi.HistoryEvent) int32 {
	h.now += 1000
	res, err := h.state.Step(h.now, []abi.HistoryEvent{ev}, h.guest)
	if err != nil {
		tb.Fatal(err)
	}
	if h.dropHistory {
		h.hist = h.hist[:0]
	}
	h.hist = append(h.hist, res.NewEvents...)
	if len(res.Actions) == 1 {
		return res.Actions[0].Event.EventID
	}
	return -1
}

// BenchmarkWarmStep measures one orchestration step on a warm instance: an
// activity result arrives, the parked goroutine resumes and schedules the
// next activity. history=10 and history=10000 show the per-step cost does
// not grow with history.
func BenchmarkWarmStep(b *testing.B) {
	for _, prior := range []int{10, 10000} {
		b.Run(fmt.Sprintf("history=%d", prior), func(b *testing.B) {
			e := newTestEngine(b, filepath.Join(os.TempDir(), "durablewasm-test-cache"))
			h := newLoopHarness(b, e, 1<<30)
			task := int32(0)
			for len(h.hist) < prior {
				task = h.step(b, abi.HistoryEvent{Type: abi.EventTaskCompleted, TaskScheduledID: task, Result: "null"})
			}
			h.dropHistory = true
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				task = h.step(b, abi.HistoryEvent{Type: abi.EventTaskCompleted, TaskScheduledID: task, Result: "null"})
			}
		})
	}
}

// BenchmarkColdReplay measures rebuilding an orchestration from a history of
// about 1,000 and 10,000 events in a fresh goroutine of a warm module
// instance (what happens after an eviction, a restart or a move).
func BenchmarkColdReplay(b *testing.B) {
	for _, size := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			e := newTestEngine(b, filepath.Join(os.TempDir(), "durablewasm-test-cache"))
			h := newLoopHarness(b, e, 1<<30)
			task := int32(0)
			for len(h.hist) < size {
				task = h.step(b, abi.HistoryEvent{Type: abi.EventTaskCompleted, TaskScheduledID: task, Result: "null"})
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h.inst.nextHandle++
				g := &Orchestration{ctx: context.Background(), inst: h.inst, handle: h.inst.nextHandle}
				s, err := replay.Rebuild("loop", replay.Limits{}, h.hist, g)
				if err != nil || s.Aborted() != nil {
					b.Fatalf("rebuild: %v %v", err, s.Aborted())
				}
				h.inst.drop(context.Background(), g.handle)
			}
			b.ReportMetric(float64(len(h.hist)), "events")
		})
	}
}

// TestRebuildOnRealGuest replays a real guest's history and checks that the
// rebuilt orchestration continues exactly where the live one was.
func TestRebuildOnRealGuest(t *testing.T) {
	e := newTestEngine(t, filepath.Join(os.TempDir(), "durablewasm-test-cache"))
	h := newLoopHarness(t, e, 5)
	task := int32(0)
	for i := 0; i < 3; i++ {
		task = h.step(t, abi.HistoryEvent{Type: abi.EventTaskCompleted, TaskScheduledID: task, Result: "null"})
	}
	h.inst.nextHandle++
	g := &Orchestration{ctx: context.Background(), inst: h.inst, handle: h.inst.nextHandle}
	s, err := replay.Rebuild("loop", replay.Limits{}, h.hist, g)
	if err != nil || s.Aborted() != nil {
		t.Fatalf("rebuild: %v %v", err, s.Aborted())
	}
	if open := s.OpenTasks(); len(open) != 1 || open[0] != task {
		t.Fatalf("rebuilt state waits on %v, the live one on task %d", open, task)
	}
	// Finish on the rebuilt state.
	for task >= 0 {
		res, err := s.Step(1e12, []abi.HistoryEvent{{Type: abi.EventTaskCompleted, TaskScheduledID: task, Result: "null"}}, g)
		if err != nil {
			t.Fatal(err)
		}
		task = -1
		if len(res.Actions) == 1 {
			task = res.Actions[0].Event.EventID
		}
		if res.Outcome != nil && (res.Outcome.Status != abi.StatusCompleted || res.Outcome.Output != "5") {
			t.Fatalf("outcome %+v", res.Outcome)
		}
	}
	if o := s.Outcome(); o == nil || o.Output != "5" {
		t.Fatalf("rebuilt orchestration did not complete: %+v", o)
	}
}
