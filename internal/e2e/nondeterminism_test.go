package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
	"github.com/durablewasm/durablewasm/host/worker"
)

// TestChangedOrderFailsOnReplay runs an orchestration on v1 of a module,
// migrates it to v2 (the same orchestrator with two activity calls swapped),
// which replays it there: the instance fails with the nondeterminism error,
// on v2, while the worker keeps serving the other instances, old digest and
// new.
func TestChangedOrderFailsOnReplay(t *testing.T) {
	e := newEnv(t, miniURL(t))
	ctx := context.Background()
	e.deploy("ordered", buildGuest(t, "testdata/guests/order_v1"))
	stop := e.worker(worker.Options{})
	for _, id := range []string{"moved", "stays"} {
		e.start("Ordered", id, "")
	}
	for _, id := range []string{"moved", "stays"} {
		waitHistory(t, e, id, func(h []abi.HistoryEvent) bool { return countType(h, abi.EventTaskCompleted) == 1 })
	}
	stop()

	// Deploy v2; new instances start on it.
	e.deploy("ordered", buildGuest(t, "testdata/guests/order_v2"))
	app, err := e.store.GetApp(ctx, "ordered")
	if err != nil {
		t.Fatal(err)
	}
	// Move "moved" to v2 (`durablewasm migrate`): the owning worker replays
	// its history on v2, which calls the activities in the other order.
	if err := e.client.Migrate(ctx, "moved", app.Digest); err != nil {
		t.Fatal(err)
	}
	e.worker(worker.Options{})
	e.start("Ordered", "fresh", "")
	for _, id := range []string{"stays", "fresh"} {
		if err := e.client.RaiseEvent(ctx, id, "go", ""); err != nil {
			t.Fatal(err)
		}
	}
	st := e.wait("moved", 20*time.Second)
	if st.Status != abi.StatusFailed || st.Failure == nil || st.Failure.Code != replay.CodeMismatch || st.Digest != app.Digest {
		t.Fatalf("moved: status %s on %s, failure %+v", st.Status, st.Digest, st.Failure)
	}
	for _, want := range []string{"event 0", `"Step" with input "A"`, `"Step" with input "B"`} {
		if !strings.Contains(st.Failure.Message, want) {
			t.Errorf("failure message %q lacks %q", st.Failure.Message, want)
		}
	}
	if st := e.wait("stays", 20*time.Second); st.Status != abi.StatusCompleted || st.Output != `"AB"` {
		t.Errorf("stays (v1): %s %s %v", st.Status, st.Output, st.Failure)
	}
	if st := e.wait("fresh", 20*time.Second); st.Status != abi.StatusCompleted || st.Output != `"AB"` {
		t.Errorf("fresh (v2): %s %s %v", st.Status, st.Output, st.Failure)
	}
	h, _ := e.client.GetHistory(ctx, "fresh")
	if first := firstScheduled(h); first != `"B"` {
		t.Errorf("fresh ran on v2, whose first call is B; history's first call has input %s", first)
	}
}

func firstScheduled(h []abi.HistoryEvent) string {
	for _, ev := range h {
		if ev.Type == abi.EventTaskScheduled {
			return ev.Input
		}
	}
	return ""
}

func waitHistory(t *testing.T, e *env, id string, ok func([]abi.HistoryEvent) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, _ := e.client.GetHistory(context.Background(), id)
		if ok(h) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: history never reached the expected state: %+v", id, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
