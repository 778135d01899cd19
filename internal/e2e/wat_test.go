package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/worker"
)

// The WAT guest (testdata/wat/hello.wat) is written by hand from
// abi/README.md, without the Go SDK: these tests show that the ABI is
// language-neutral. Rebuild hello.wasm with wat2wasm (see
// testdata/wat/README.md).

func watModule(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/wat/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func watEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, miniURL(t))
	e.deploy("wat", watModule(t))
	return e
}

// checkWatHello checks a finished WatHello instance: output "b" and two
// TaskScheduled/TaskCompleted pairs of WatEcho with inputs "a" and "b".
func checkWatHello(t *testing.T, e *env, id string) {
	t.Helper()
	st := e.wait(id, 20*time.Second)
	if st.Status != abi.StatusCompleted || st.Output != `"b"` {
		t.Fatalf("%s: status %s, output %s, failure %v; want Completed with \"b\"", id, st.Status, st.Output, st.Failure)
	}
	h, err := e.client.GetHistory(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var sched, done []abi.HistoryEvent
	for _, ev := range h {
		switch ev.Type {
		case abi.EventTaskScheduled:
			sched = append(sched, ev)
		case abi.EventTaskCompleted:
			done = append(done, ev)
		case abi.EventTaskFailed:
			t.Errorf("%s: unexpected %+v", id, ev)
		}
	}
	if len(sched) != 2 || len(done) != 2 {
		t.Fatalf("%s: %d TaskScheduled and %d TaskCompleted, want 2 and 2: %+v", id, len(sched), len(done), h)
	}
	for i, in := range []string{`"a"`, `"b"`} {
		s := sched[i]
		if s.EventID != int32(i) || s.Name != "WatEcho" || s.Input != in {
			t.Errorf("%s: TaskScheduled %d = %+v, want id %d WatEcho(%s)", id, i, s, i, in)
		}
		c := done[i]
		if c.TaskScheduledID != int32(i) || c.Result != in {
			t.Errorf("%s: TaskCompleted %d = %+v, want task %d result %s", id, i, c, i, in)
		}
	}
}

func TestWatDeploy(t *testing.T) {
	e := newEnv(t, miniURL(t))
	info, err := e.client.Deploy(context.Background(), "wat", watModule(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.ABIVersion != abi.Version || len(info.Functions) != 2 ||
		info.Functions[0] != (host.FunctionInfo{Name: "WatEcho", Kind: abi.KindActivity}) ||
		info.Functions[1] != (host.FunctionInfo{Name: "WatHello", Kind: abi.KindOrchestrator}) {
		t.Fatalf("deploy: %+v", info)
	}
}

func TestWatHello(t *testing.T) {
	e := watEnv(t)
	e.worker(worker.Options{})
	e.start("WatHello", "wat1", `"ignored"`)
	checkWatHello(t, e, "wat1")
}

// watLogSignal is a slog handler that closes ch the first time a record with
// message msg is handled.
type watLogSignal struct {
	msg  string
	once *sync.Once
	ch   chan struct{}
}

func (l watLogSignal) Enabled(context.Context, slog.Level) bool { return true }
func (l watLogSignal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == l.msg {
		l.once.Do(func() { close(l.ch) })
	}
	return nil
}
func (l watLogSignal) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l watLogSignal) WithGroup(string) slog.Handler      { return l }

func watWaitHistory(t *testing.T, e *env, id string, what string, ok func([]abi.HistoryEvent) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h, _ := e.client.GetHistory(context.Background(), id)
		if ok(h) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s never happened: %+v", id, what, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatColdReplay runs WatHello across worker restarts so that every
// orchestration step after the first runs in a fresh worker, whose WAT
// instance must rebuild the orchestration by replaying its history:
//
//  1. an orchestration-only worker starts it; it schedules WatEcho("a"); stop.
//  2. an activity-only worker runs WatEcho("a") (the result waits in the
//     control stream, no worker processes orchestrations); stop.
//  3. a new orchestration-only worker replays step 1 cold, applies the result
//     and schedules WatEcho("b"); stop.
//  4. a new full worker runs WatEcho("b"), replays steps 1-2 cold (poll,
//     task_result of "a", the second schedule_activity matched against
//     history) and completes with "b".
func TestWatColdReplay(t *testing.T) {
	e := watEnv(t)
	const id = "wat-cold"

	stop := e.worker(worker.Options{NoActivities: true})
	e.start("WatHello", id, "")
	watWaitHistory(t, e, id, "TaskScheduled 0", func(h []abi.HistoryEvent) bool { return countType(h, abi.EventTaskScheduled) == 1 })
	stop()

	ran := make(chan struct{})
	stop = e.worker(worker.Options{NoOrchestrations: true,
		Logger: slog.New(watLogSignal{msg: "WatEcho ran", once: new(sync.Once), ch: ran})})
	select {
	case <-ran:
	case <-time.After(20 * time.Second):
		t.Fatal("the activity worker never ran WatEcho")
	}
	stop() // waits for the running activity to post its result
	if h, _ := e.client.GetHistory(context.Background(), id); countType(h, abi.EventTaskCompleted) != 0 {
		t.Fatalf("no orchestration worker ran, yet history has a completion: %+v", h)
	}

	stop = e.worker(worker.Options{NoActivities: true})
	watWaitHistory(t, e, id, "TaskScheduled 1", func(h []abi.HistoryEvent) bool { return countType(h, abi.EventTaskScheduled) == 2 })
	stop()

	e.worker(worker.Options{})
	checkWatHello(t, e, id)
}

// TestWatEviction keeps one orchestration warm while several run
// interleaved, so most steps rebuild their orchestration by replay in the
// same long-lived WAT instance (new handles; the evicted ones are dropped).
func TestWatEviction(t *testing.T) {
	e := watEnv(t)
	e.worker(worker.Options{MaxWarm: 1, OrchestrationInstances: 1})
	var ids []string
	for i := 0; i < 6; i++ {
		id := fmt.Sprint("wat-evict-", i)
		ids = append(ids, id)
		e.start("WatHello", id, "")
	}
	for _, id := range ids {
		checkWatHello(t, e, id)
	}
}

// TestWatUnknownFunction checks the statuses the WAT guest returns for names
// it does not register.
func TestWatUnknownFunction(t *testing.T) {
	e := watEnv(t)
	_, err := e.client.StartNew(context.Background(), client.StartOptions{FunctionName: "WatEcho"})
	if err == nil || !strings.Contains(err.Error(), "activity") {
		t.Fatalf("starting the activity as an orchestrator: %v", err)
	}
}
