package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/worker"
)

func manageEnv(t *testing.T, url string) *env {
	e := newEnv(t, url)
	e.deploy("manage", buildGuest(t, "testdata/guests/manage"))
	e.worker(worker.Options{})
	return e
}

// TestRewindRerunsOnlyWhatFailed fails an orchestration (after a successful
// activity and a durable timer), rewinds it, and checks that only the failed
// activity ran again.
func TestRewindRerunsOnlyWhatFailed(t *testing.T) {
	allBackends(t, func(t *testing.T, url string) {
		e := manageEnv(t, url)
		ctx := context.Background()
		until := time.Now().Add(1500 * time.Millisecond).UnixMilli()
		e.start("Flaky", "f1", fmt.Sprint(until))
		st := e.wait("f1", 20*time.Second)
		if st.Status != abi.StatusFailed || st.Failure == nil || !strings.Contains(st.Failure.Message, "not yet") {
			t.Fatalf("first run: %s %+v", st.Status, st.Failure)
		}
		if err := e.client.Rewind(ctx, "f1", "retry"); !errors.Is(err, nil) {
			t.Fatal(err)
		}
		waitRewound(t, e, "f1", 1)
		st = e.wait("f1", 20*time.Second)
		if st.Status == abi.StatusFailed {
			// Rewound before the activity could succeed: it failed again.
			time.Sleep(time.Until(time.UnixMilli(until)))
			if err := e.client.Rewind(ctx, "f1", "retry again"); err != nil {
				t.Fatal(err)
			}
			waitRewound(t, e, "f1", 2)
			st = e.wait("f1", 20*time.Second)
		}
		if st.Status != abi.StatusCompleted || st.Output != `"ok+done"` {
			t.Fatalf("after rewind: %s %s %+v", st.Status, st.Output, st.Failure)
		}
		h, _ := e.client.GetHistory(ctx, "f1")
		ok := 0
		for _, ev := range h {
			if ev.Type == abi.EventTaskScheduled && ev.Name == "Ok" {
				ok++
			}
		}
		if ok != 1 || countType(h, abi.EventTimerCreated) != 1 || countType(h, abi.EventExecutionRewound) < 1 {
			t.Fatalf("history after rewind: Ok scheduled %d times (want 1), timers %d, rewinds %d",
				ok, countType(h, abi.EventTimerCreated), countType(h, abi.EventExecutionRewound))
		}
		if err := e.client.Rewind(ctx, "f1", "again"); !errors.Is(err, host.ErrNotFailed) {
			t.Fatalf("rewinding a completed instance: %v", err)
		}
		if err := e.client.Rewind(ctx, "missing", ""); !errors.Is(err, host.ErrInstanceNotFound) {
			t.Fatalf("rewinding a missing instance: %v", err)
		}
	})
}

// waitRewound waits until the instance has processed its n-th rewind.
func waitRewound(t *testing.T, e *env, id string, n int) {
	t.Helper()
	waitHistory(t, e, id, func(h []abi.HistoryEvent) bool { return countType(h, abi.EventExecutionRewound) >= n })
}

func TestRewindReachesFailedSubOrchestration(t *testing.T) {
	e := manageEnv(t, miniURL(t))
	ctx := context.Background()
	until := time.Now().Add(time.Second).UnixMilli()
	e.start("FlakyParent", "p1", fmt.Sprint(until))
	if st := e.wait("p1", 20*time.Second); st.Status != abi.StatusFailed {
		t.Fatalf("parent: %s", st.Status)
	}
	if st := e.wait("p1:child", 20*time.Second); st.Status != abi.StatusFailed {
		t.Fatalf("child: %s", st.Status)
	}
	time.Sleep(time.Until(time.UnixMilli(until)))
	if err := e.client.Rewind(ctx, "p1", "fixed"); err != nil {
		t.Fatal(err)
	}
	waitRewound(t, e, "p1", 1)
	if st := e.wait("p1", 20*time.Second); st.Status != abi.StatusCompleted || st.Output != `"parent(ok+done)"` {
		for _, id := range []string{"p1", "p1:child"} {
			h, _ := e.client.GetHistory(ctx, id)
			for _, ev := range h {
				t.Logf("%s: %s id=%d task=%d %s %s %v", id, ev.Type, ev.EventID, ev.TaskScheduledID, ev.Name, ev.Result, ev.Failure)
			}
		}
		t.Fatalf("parent after rewind: %s %s %+v", st.Status, st.Output, st.Failure)
	}
	if st := e.wait("p1:child", 20*time.Second); st.Status != abi.StatusCompleted {
		t.Fatalf("child after rewind: %s", st.Status)
	}
}

func TestTerminateIsRecursiveUnlessAskedNot(t *testing.T) {
	e := manageEnv(t, miniURL(t))
	ctx := context.Background()
	e.start("Tree", "t1", "")
	e.start("Tree", "t2", "")
	e.waitStatus("t1:leaf", abi.StatusRunning, 20*time.Second)
	e.waitStatus("t2:leaf", abi.StatusRunning, 20*time.Second)
	if err := e.client.Terminate(ctx, "t1", "stop", true); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Terminate(ctx, "t2", "stop", false); err != nil {
		t.Fatal(err)
	}
	if st := e.wait("t1:leaf", 20*time.Second); st.Status != abi.StatusTerminated {
		t.Fatalf("leaf of a recursive terminate: %s", st.Status)
	}
	if st := e.wait("t2", 20*time.Second); st.Status != abi.StatusTerminated {
		t.Fatalf("t2: %s", st.Status)
	}
	time.Sleep(200 * time.Millisecond)
	if st, _ := e.client.GetStatus(ctx, "t2:leaf"); st.Status != abi.StatusRunning {
		t.Fatalf("leaf of a non-recursive terminate: %s", st.Status)
	}
	if err := e.client.Terminate(ctx, "t1", "again", true); !errors.Is(err, host.ErrInstanceFinished) {
		t.Fatalf("terminating a finished instance: %v", err)
	}
}

func TestRestart(t *testing.T) {
	e := samplesEnv(t, miniURL(t))
	e.worker(worker.Options{})
	ctx := context.Background()
	e.start("HelloWorld", "r1", `"Ann"`)
	e.wait("r1", 20*time.Second)
	st, err := e.client.Restart(ctx, "r1", true)
	if err != nil || st.InstanceID == "r1" || len(st.InstanceID) != 32 {
		t.Fatalf("restart with a new id: %+v %v", st, err)
	}
	if done := e.wait(st.InstanceID, 20*time.Second); done.Output != `"Hello Ann!"` {
		t.Fatalf("restarted output %s", done.Output)
	}
	if st, err = e.client.Restart(ctx, "r1", false); err != nil || st.InstanceID != "r1" {
		t.Fatalf("restart with the same id: %+v %v", st, err)
	}
	e.wait("r1", 20*time.Second)
	e.start("Counter", "r2", "0")
	if _, err := e.client.Restart(ctx, "r2", false); !errors.Is(err, host.ErrInstanceExists) {
		t.Fatalf("restarting a running instance under its id: %v", err)
	}
	if _, err := e.client.Restart(ctx, "nope", true); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Fatalf("restarting a missing instance: %v", err)
	}
}

// TestActivityGetsManagementURLs checks the management_urls host function:
// an activity receives the payload the worker's HTTP API provides, and a
// clear error when there is none.
func TestActivityGetsManagementURLs(t *testing.T) {
	e := newEnv(t, miniURL(t))
	e.deploy("manage", buildGuest(t, "testdata/guests/manage"))
	stop := e.worker(worker.Options{ManagementPayload: func(id string) ([]byte, error) {
		return []byte(`{"id":"` + id + `","statusQueryGetUri":"http://h/instances/` + id + `","rewindPostUri":"http://h/instances/` + id + `/rewind"}`), nil
	}})
	e.start("Mgmt", "m1", "")
	if st := e.wait("m1", 20*time.Second); st.Output != `"m1 http://h/instances/m1 http://h/instances/m1/rewind"` {
		t.Fatalf("with an HTTP API: %s %v", st.Output, st.Failure)
	}
	stop()
	e.worker(worker.Options{})
	e.start("Mgmt", "m2", "")
	if st := e.wait("m2", 20*time.Second); !strings.Contains(st.Output, "serves no HTTP API") {
		t.Fatalf("without an HTTP API: %s %v", st.Output, st.Failure)
	}
}

// TestSelfStartingOrchestratorStopsAtTheNestingLimit: an orchestrator that
// starts itself as a sub-orchestration used to create instances (and
// de-dup keys) forever; the level past MaxNestingDepth is refused with
// LimitExceeded, and the failure propagates to the top.
func TestSelfStartingOrchestratorStopsAtTheNestingLimit(t *testing.T) {
	e := manageEnv(t, miniURL(t))
	e.start("Recurse", "r0", "0")
	st := e.wait("r0", 60*time.Second)
	if st.Status != abi.StatusFailed || st.Failure == nil {
		t.Fatalf("top: %s %+v", st.Status, st.Failure)
	}
	var chain []string
	for f := st.Failure; f != nil; f = f.Inner {
		chain = append(chain, f.Error())
	}
	if !strings.Contains(strings.Join(chain, " / "), fmt.Sprintf("over the limit of %d", host.MaxNestingDepth)) {
		t.Fatalf("failure does not name the nesting limit: %v", st.Failure)
	}
	page, err := e.client.QueryInstances(context.Background(), host.InstanceQuery{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Instances) != host.MaxNestingDepth+1 {
		t.Fatalf("%d instances, want %d (the top and %d levels)", len(page.Instances), host.MaxNestingDepth+1, host.MaxNestingDepth)
	}
	for _, in := range page.Instances {
		if in.Status != abi.StatusFailed || in.Depth > host.MaxNestingDepth {
			t.Fatalf("instance %s: %s depth %d", in.InstanceID, in.Status, in.Depth)
		}
	}
}
