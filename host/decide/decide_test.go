package decide

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
)

// testEnv is a deterministic environment: a fixed time and sequential ids.
func testEnv() Env {
	n := 0
	return Env{Now: time.Unix(1700000000, 0).UTC(), Partitions: 16, Limits: replay.Limits{}.WithDefaults(),
		NewID: func() string { n++; return fmt.Sprintf("id%d", n) }}
}

func running(id string) host.InstanceState {
	return host.InstanceState{InstanceID: id, Name: "Orch", ExecutionID: "x1", Status: abi.StatusRunning, App: "app", Digest: "sha256:d",
		HistoryLength: 4}
}

func gen(id string) Generation {
	return Generation{Started: true, Name: "Orch", Input: `1`, ExecutionID: "x1", HistoryLen: 8}
}

func TestDecideSchedules(t *testing.T) {
	env := testEnv()
	res := &replay.StepResult{NewEvents: make([]abi.HistoryEvent, 4), Actions: []replay.Action{
		{Event: abi.HistoryEvent{Type: abi.EventTaskScheduled, EventID: 0, Name: "Act", Input: `"a"`}},
		{Event: abi.HistoryEvent{Type: abi.EventTimerCreated, EventID: 1, FireAt: env.Now.Add(time.Minute).UnixNano()}},
		{Event: abi.HistoryEvent{Type: abi.EventSubOrchestrationInstanceCreated, EventID: 2, Name: "Child", InstanceID: "c1", Input: `2`}},
		{Event: abi.HistoryEvent{Type: abi.EventEventSent, EventID: 3, Name: "ping", InstanceID: "other", Input: `3`}},
	}}
	g := gen("i1")
	g.CustomStatus, g.CustomStatusSet = `"busy"`, true
	d := Decide(env, 5, 7, "i1", running("i1"), g, res)
	c := d.Commit
	if c.Partition != 5 || c.Epoch != 7 || c.CommitID != "id1" || len(c.NewEvents) != 4 || c.ResetHistory {
		t.Fatalf("commit header: %+v", c)
	}
	if st := c.State; st.Status != abi.StatusRunning || st.CustomStatus != `"busy"` || st.HistoryLength != 8 || !st.UpdatedAt.Equal(env.Now) {
		t.Fatalf("state: %+v", st)
	}
	if len(c.Activities) != 1 || c.Activities[0] != (host.ActivityItem{Partition: 5, InstanceID: "i1", ExecutionID: "x1", TaskID: 0, Name: "Act", Input: `"a"`, Digest: "sha256:d"}) {
		t.Fatalf("activities: %+v", c.Activities)
	}
	if len(c.Timers) != 1 || !c.Timers[0].FireAt.Equal(env.Now.Add(time.Minute)) || c.Timers[0].Message.Event.Type != abi.EventTimerFired ||
		c.Timers[0].Message.Event.TaskScheduledID != 1 || c.Timers[0].Message.ExecutionID != "x1" {
		t.Fatalf("timers: %+v", c.Timers)
	}
	if len(c.Outbox) != 2 {
		t.Fatalf("outbox: %+v", c.Outbox)
	}
	sub := c.Outbox[0]
	if sub.Partition != host.PartitionFor("c1", 16) || sub.Create == nil || sub.Create.Depth != 1 || sub.Create.ParentInstanceID != "i1" ||
		sub.Create.ParentTaskID != 2 || sub.Create.ExecutionID != "id2" || sub.Message.MessageID != "i1/x1/2" ||
		sub.Message.Fresh == nil || sub.Message.Fresh.Depth != 1 || sub.Message.Event.Type != abi.EventExecutionStarted {
		t.Fatalf("sub-orchestration start: %+v %+v", sub, sub.Create)
	}
	if ev := c.Outbox[1]; ev.Message.MessageID != "i1/x1/3" || ev.Message.Event.Type != abi.EventEventRaised || ev.Message.Event.Name != "ping" ||
		ev.Partition != host.PartitionFor("other", 16) {
		t.Fatalf("event sent: %+v", ev)
	}
	if d.HistoryWarning {
		t.Fatal("history warning at 8 events")
	}
}

func TestDecideNestingLimit(t *testing.T) {
	meta := running("deep")
	meta.Depth = host.MaxNestingDepth
	res := &replay.StepResult{Actions: []replay.Action{{Event: abi.HistoryEvent{Type: abi.EventSubOrchestrationInstanceCreated, EventID: 0, Name: "Orch", InstanceID: "deeper"}}}}
	c := Decide(testEnv(), 0, 1, "deep", meta, gen("deep"), res).Commit
	if len(c.Outbox) != 0 || len(c.Local) != 1 {
		t.Fatalf("outbox %+v, local %+v", c.Outbox, c.Local)
	}
	ev := c.Local[0].Event
	if ev.Type != abi.EventSubOrchestrationInstanceFailed || ev.TaskScheduledID != 0 || ev.Failure.Code != replay.CodeLimit ||
		!strings.Contains(ev.Failure.Message, "over the limit of 64") || c.Local[0].ExecutionID != "x1" {
		t.Fatalf("refusal: %+v", c.Local[0])
	}
}

func TestDecideOutcomes(t *testing.T) {
	fail := &abi.FailureDetails{Type: "GuestError", Message: "boom"}
	for _, tc := range []struct {
		name      string
		parent    bool
		open      []string
		outcome   replay.Outcome
		check     func(t *testing.T, c host.Commit)
		wantState abi.RuntimeStatus
	}{
		{name: "completed", outcome: replay.Outcome{Status: abi.StatusCompleted, Output: `"ok"`}, wantState: abi.StatusCompleted,
			check: func(t *testing.T, c host.Commit) {
				if len(c.Outbox) != 0 || c.State.Output != `"ok"` {
					t.Fatalf("%+v", c)
				}
			}},
		{name: "child completed tells its parent", parent: true, outcome: replay.Outcome{Status: abi.StatusCompleted, Output: `5`}, wantState: abi.StatusCompleted,
			check: func(t *testing.T, c host.Commit) {
				m := c.Outbox[0].Message
				if m.InstanceID != "p1" || m.MessageID != "i1/x1/done/8" || m.Event.Type != abi.EventSubOrchestrationInstanceCompleted ||
					m.Event.TaskScheduledID != 4 || m.Event.Result != `5` || c.Outbox[0].Partition != host.PartitionFor("p1", 16) {
					t.Fatalf("%+v", m)
				}
			}},
		{name: "child failed passes its failure", parent: true, outcome: replay.Outcome{Status: abi.StatusFailed, Failure: fail}, wantState: abi.StatusFailed,
			check: func(t *testing.T, c host.Commit) {
				f := c.Outbox[0].Message.Event.Failure
				if c.Outbox[0].Message.Event.Type != abi.EventSubOrchestrationInstanceFailed || f.Type != "GuestError" || f.Message != "boom" ||
					f.Source != "sub-orchestration Orch (i1)" || c.State.Failure != fail {
					t.Fatalf("%+v", f)
				}
			}},
		{name: "child terminated without failure", parent: true, outcome: replay.Outcome{Status: abi.StatusTerminated, Output: `"stop"`, NoCascade: true}, wantState: abi.StatusTerminated,
			check: func(t *testing.T, c host.Commit) {
				f := c.Outbox[0].Message.Event.Failure
				if f.Type != "SubOrchestrationTerminated" || f.Message != `sub-orchestration i1 was Terminated: "stop"` {
					t.Fatalf("%+v", f)
				}
			}},
		{name: "terminate cascades", open: []string{"c1", "c2"}, outcome: replay.Outcome{Status: abi.StatusTerminated, Output: `"why"`}, wantState: abi.StatusTerminated,
			check: func(t *testing.T, c host.Commit) {
				if len(c.Outbox) != 2 || c.Outbox[1].Message.MessageID != "i1/x1/terminate/c2" || c.Outbox[1].Message.Event.Type != abi.EventExecutionTerminated ||
					c.Outbox[1].Message.Event.Reason != `parent i1 was terminated: "why"` {
					t.Fatalf("%+v", c.Outbox)
				}
			}},
		{name: "continue as new", outcome: replay.Outcome{Status: abi.StatusContinuedAsNew, NewInput: `2`}, wantState: abi.StatusContinuedAsNew,
			check: func(t *testing.T, c host.Commit) {
				if !c.ResetHistory || len(c.NewEvents) != 0 || c.State.ExecutionID != "id2" || c.State.Input != `2` || c.State.HistoryLength != 0 {
					t.Fatalf("%+v", c)
				}
				if len(c.Local) != 1 || c.Local[0].ExecutionID != "id2" || c.Local[0].Event.Type != abi.EventExecutionStarted || c.Local[0].Event.Input != `2` {
					t.Fatalf("restart: %+v", c.Local)
				}
			}},
		{name: "continue as new with carried events", outcome: replay.Outcome{Status: abi.StatusContinuedAsNew, NewInput: `3`,
			Carried: []abi.HistoryEvent{{EventID: -1, Type: abi.EventEventRaised, Name: "e", Input: `1`}}}, wantState: abi.StatusContinuedAsNew,
			check: func(t *testing.T, c host.Commit) {
				if len(c.NewEvents) != 3 || c.NewEvents[1].Type != abi.EventEventRaised || c.NewEvents[1].Timestamp != testEnv().Now.UnixNano() || c.State.HistoryLength != 3 {
					t.Fatalf("%+v", c.NewEvents)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := gen("i1")
			if tc.parent {
				g.ParentID, g.ParentTask = "p1", 4
			}
			g.OpenSubOrchestrations = tc.open
			o := tc.outcome
			c := Decide(testEnv(), 0, 1, "i1", running("i1"), g, &replay.StepResult{Outcome: &o}).Commit
			if c.State.Status != tc.wantState {
				t.Fatalf("status %s, want %s", c.State.Status, tc.wantState)
			}
			tc.check(t, c)
		})
	}
}

func TestDecideStateAndWarning(t *testing.T) {
	env := testEnv()
	env.Limits.MaxHistoryEvents = 10
	meta := running("i1")
	meta.HistoryLength = 6
	g := gen("i1")
	g.Suspended = true
	d := Decide(env, 0, 1, "i1", meta, g, &replay.StepResult{})
	if !d.HistoryWarning || d.Commit.State.Status != abi.StatusSuspended || !d.Commit.State.UpdatedAt.IsZero() {
		t.Fatalf("%+v", d)
	}
	// Once past 80 % it is not repeated.
	meta.HistoryLength = 9
	g.HistoryLen = 9
	if Decide(env, 0, 1, "i1", meta, g, &replay.StepResult{}).HistoryWarning {
		t.Fatal("warned twice")
	}
	// Not started yet: the state keeps what it had.
	pending := host.InstanceState{InstanceID: "i2", Status: abi.StatusPending, Name: "Orch"}
	if st := Decide(env, 0, 1, "i2", pending, Generation{}, &replay.StepResult{}).Commit.State; st.Status != abi.StatusPending {
		t.Fatalf("%+v", st)
	}
}

func TestRewindDecisions(t *testing.T) {
	subs := []abi.HistoryEvent{{EventID: 1, InstanceID: "gone"}, {EventID: 2, InstanceID: "done"}, {EventID: 3, InstanceID: "failed"},
		{EventID: 4, InstanceID: "stopped"}, {EventID: 5, InstanceID: "running"}}
	children := []*host.InstanceState{nil, {Status: abi.StatusCompleted, Output: `7`}, {Status: abi.StatusFailed},
		{Status: abi.StatusTerminated, Output: `"x"`}, {Status: abi.StatusRunning}}
	extra, rewind := RewindChildren(subs, children)
	if len(rewind) != 1 || rewind[0] != "failed" || len(extra) != 3 {
		t.Fatalf("extra %+v rewind %v", extra, rewind)
	}
	if extra[0].Failure.Type != abi.FailureSubOrchestrationMissing || extra[1].Type != abi.EventSubOrchestrationInstanceCompleted || extra[1].Result != `7` ||
		extra[2].Failure.Type != "SubOrchestrationTerminated" || extra[2].TaskScheduledID != 4 {
		t.Fatalf("extra %+v", extra)
	}
	env := testEnv()
	plan := &replay.RewindPlan{History: make([]abi.HistoryEvent, 5),
		Activities: []abi.HistoryEvent{{EventID: 0, Name: "Act", Input: `1`}},
		Timers:     []abi.HistoryEvent{{EventID: 1, FireAt: 42}}}
	res := &replay.StepResult{NewEvents: make([]abi.HistoryEvent, 2)}
	meta := running("r1")
	d := DecideRewind(env, 3, 9, "r1", meta, gen("r1"), res, plan, rewind, "fix")
	c := d.Commit
	if !c.ResetHistory || len(c.NewEvents) != 7 || c.State.HistoryLength != 7 || len(c.Activities) != 1 || c.Activities[0].Partition != 3 ||
		len(c.Timers) != 1 || c.Timers[0].FireAt.UnixNano() != 42 || len(c.Outbox) != 1 {
		t.Fatalf("%+v", c)
	}
	if m := c.Outbox[0].Message; m.InstanceID != "failed" || m.Event.Type != abi.EventExecutionRewound || m.Event.Reason != "parent r1 rewound: fix" ||
		m.MessageID != fmt.Sprintf("r1/x1/rewind/%d/failed", env.Now.UnixNano()) {
		t.Fatalf("%+v", m)
	}
}

func TestFail(t *testing.T) {
	env := testEnv()
	f := &abi.FailureDetails{Type: abi.FailureQuarantined, Code: "DW3001", Message: "parked"}
	st := running("q1")
	st.ParentInstanceID, st.ParentTaskID = "p1", 3
	c := Fail(env, 2, 5, st, f)
	if c.Partition != 2 || c.Epoch != 5 || c.CommitID != "id1" || len(c.NewEvents) != 3 ||
		c.NewEvents[1].Type != abi.EventExecutionCompleted || c.NewEvents[1].Status != abi.StatusFailed || c.NewEvents[1].Failure != f {
		t.Fatalf("%+v", c)
	}
	if c.State.Status != abi.StatusFailed || c.State.Failure != f || c.State.HistoryLength != 7 || !c.State.UpdatedAt.Equal(env.Now) {
		t.Fatalf("state %+v", c.State)
	}
	if len(c.Outbox) != 1 || c.Outbox[0].Message.InstanceID != "p1" || c.Outbox[0].Message.MessageID != "q1/x1/done/7" ||
		c.Outbox[0].Message.Event.Type != abi.EventSubOrchestrationInstanceFailed || c.Outbox[0].Message.Event.Failure.Code != "DW3001" {
		t.Fatalf("parent message %+v", c.Outbox)
	}
	if c := Fail(env, 2, 5, running("q2"), f); len(c.Outbox) != 0 {
		t.Fatalf("a top-level instance has no parent to tell: %+v", c.Outbox)
	}
}
