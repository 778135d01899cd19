package replay

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/durablewasm/durablewasm/abi"
)

// fakeGuest runs a Go orchestrator function as a coroutine over a State, the
// way a Wasm guest does through host functions: it parks on unresolved tasks
// and resumes when asked.
type fakeGuest struct {
	fn     func(o *orch) string
	wake   chan struct{}
	parked chan bool // true when finished
	active bool
}

type orch struct {
	g *fakeGuest
	s *State
}

type abortPanic struct{}

func (o *orch) check(id int32) int32 {
	if id < 0 {
		panic(abortPanic{})
	}
	return id
}

// await parks until task id is resolved and returns its result.
func (o *orch) await(id int32) (string, bool) {
	for o.s.Poll([]int32{id}) < 0 {
		o.g.parked <- false
		<-o.g.wake
	}
	kind, p := o.s.TaskResult(id)
	return p, kind == abi.ResultOK
}

func (o *orch) awaitAny(ids ...int32) int {
	for {
		if i := o.s.Poll(ids); i >= 0 {
			return int(i)
		}
		o.g.parked <- false
		<-o.g.wake
	}
}

func (g *fakeGuest) Start(s *State) error {
	g.wake, g.parked, g.active = make(chan struct{}), make(chan bool), true
	o := &orch{g: g, s: s}
	go func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(abortPanic); !ok {
					panic(r)
				}
			}
			g.parked <- true
		}()
		out := g.fn(o)
		if out != "" {
			s.Complete(abi.CompleteOK, out)
		}
	}()
	g.active = !<-g.parked
	return nil
}

func (g *fakeGuest) Resume(s *State) error {
	if !g.active {
		return nil
	}
	g.wake <- struct{}{}
	g.active = !<-g.parked
	return nil
}

func hello(o *orch) string {
	var out []string
	for _, city := range []string{"Tokyo", "Seattle", "London"} {
		r, _ := o.await(o.check(o.s.ScheduleActivity("SayHello", `"`+city+`"`)))
		var v string
		_ = json.Unmarshal([]byte(r), &v)
		out = append(out, v)
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func helloSwapped(o *orch) string {
	var out []string
	for _, city := range []string{"Seattle", "Tokyo", "London"} {
		r, _ := o.await(o.check(o.s.ScheduleActivity("SayHello", `"`+city+`"`)))
		out = append(out, r)
	}
	return "[" + strings.Join(out, ",") + "]"
}

func started(name, input string) abi.HistoryEvent {
	return abi.HistoryEvent{Type: abi.EventExecutionStarted, Name: name, Input: input, ExecutionID: "e1"}
}

func completed(task int32, result string) abi.HistoryEvent {
	return abi.HistoryEvent{Type: abi.EventTaskCompleted, TaskScheduledID: task, Result: result}
}

// runLive drives a fresh state through steps, one incoming batch each, and
// returns the committed history.
func runLive(t *testing.T, fn func(*orch) string, batches ...[]abi.HistoryEvent) (*State, []abi.HistoryEvent) {
	t.Helper()
	s := New("i1", Limits{})
	g := &fakeGuest{fn: fn}
	var hist []abi.HistoryEvent
	for i, b := range batches {
		res, err := s.Step(int64(i+1)*1e9, b, g)
		if err != nil {
			t.Fatal(err)
		}
		hist = append(hist, res.NewEvents...)
	}
	return s, hist
}

func helloBatches() [][]abi.HistoryEvent {
	return [][]abi.HistoryEvent{
		{started("Hello", "")},
		{completed(0, `"Hello Tokyo!"`)},
		{completed(1, `"Hello Seattle!"`)},
		{completed(2, `"Hello London!"`)},
	}
}

func TestLiveSequenceCompletes(t *testing.T) {
	s, hist := runLive(t, hello, helloBatches()...)
	o := s.Outcome()
	if o == nil || o.Status != abi.StatusCompleted || o.Output != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
		t.Fatalf("outcome = %+v", o)
	}
	var types []string
	for _, e := range hist {
		types = append(types, string(e.Type))
	}
	want := "OrchestratorStarted ExecutionStarted TaskScheduled OrchestratorCompleted " +
		"OrchestratorStarted TaskCompleted TaskScheduled OrchestratorCompleted " +
		"OrchestratorStarted TaskCompleted TaskScheduled OrchestratorCompleted " +
		"OrchestratorStarted TaskCompleted ExecutionCompleted OrchestratorCompleted"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("history:\n got %s\nwant %s", got, want)
	}
}

func TestDuplicateCompletionIsDropped(t *testing.T) {
	b := helloBatches()
	b = append(b[:2], append([][]abi.HistoryEvent{{completed(0, `"again"`)}}, b[2:]...)...)
	s, hist := runLive(t, hello, b...)
	if s.Outcome().Output != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
		t.Fatalf("output = %s", s.Outcome().Output)
	}
	n := 0
	for _, e := range hist {
		if e.Type == abi.EventTaskCompleted {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("history has %d TaskCompleted, want 3 (duplicate must not be recorded)", n)
	}
}

func TestRebuildMatchesLiveRun(t *testing.T) {
	b := helloBatches()
	_, hist := runLive(t, hello, b[:3]...) // two activities done, third scheduled
	g := &fakeGuest{fn: hello}
	s, err := Rebuild("i1", Limits{}, hist, g)
	if err != nil {
		t.Fatal(err)
	}
	if s.Aborted() != nil {
		t.Fatalf("replay aborted: %v", s.Aborted())
	}
	res, err := s.Step(9e9, b[3], g)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome == nil || res.Outcome.Output != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
		t.Fatalf("outcome after replay = %+v", res.Outcome)
	}
}

func TestRebuildDetectsReorderedActivities(t *testing.T) {
	_, hist := runLive(t, hello, helloBatches()[:2]...)
	s, err := Rebuild("i1", Limits{}, hist, &fakeGuest{fn: helloSwapped})
	if err != nil {
		t.Fatal(err)
	}
	f := s.Aborted()
	if f == nil || f.Code != CodeMismatch {
		t.Fatalf("aborted = %v, want code %s", f, CodeMismatch)
	}
	for _, want := range []string{"event 0", `TaskScheduled "SayHello" with input "Tokyo"`, `with input "Seattle"`} {
		if !strings.Contains(f.Message, want) {
			t.Errorf("message %q lacks %q", f.Message, want)
		}
	}
	res, err := s.Step(5e9, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome == nil || res.Outcome.Status != abi.StatusFailed {
		t.Fatalf("the next step must commit the failure, got %+v", res.Outcome)
	}
}

func TestRebuildDetectsRemovedCall(t *testing.T) {
	_, hist := runLive(t, hello, helloBatches()[:3]...)
	s, _ := Rebuild("i1", Limits{}, hist, &fakeGuest{fn: func(o *orch) string {
		o.await(o.check(o.s.ScheduleActivity("SayHello", `"Tokyo"`)))
		return `"done"`
	}})
	if f := s.Aborted(); f == nil || f.Code != CodeMissingCall && f.Code != CodeMismatch {
		t.Fatalf("aborted = %v, want a nondeterminism failure", f)
	}
}

func TestEventsBufferedBeforeWaitAndInOrder(t *testing.T) {
	fn := func(o *orch) string {
		a, _ := o.await(o.s.WaitEvent("go"))
		b, _ := o.await(o.s.WaitEvent("go"))
		return "[" + a + "," + b + "]"
	}
	raised := func(d string) abi.HistoryEvent {
		return abi.HistoryEvent{Type: abi.EventEventRaised, Name: "go", Input: d}
	}
	// Both events arrive with the start, before the orchestration waits.
	s, _ := runLive(t, fn, []abi.HistoryEvent{raised("1"), started("E", ""), raised("2")})
	if o := s.Outcome(); o == nil || o.Output != "[1,2]" {
		t.Fatalf("outcome = %+v", o)
	}
}

func TestWhenAnyPicksFirstResolvedAndReplaysSame(t *testing.T) {
	fn := func(o *orch) string {
		ev := o.s.WaitEvent("approve")
		tm := o.check(o.s.CreateTimer(100e9))
		if o.awaitAny(ev, tm) == 0 {
			return `"approved"`
		}
		o.s.CancelTask(ev)
		return `"timeout"`
	}
	fired := abi.HistoryEvent{Type: abi.EventTimerFired, TaskScheduledID: 1, FireAt: 100e9}
	raise := abi.HistoryEvent{Type: abi.EventEventRaised, Name: "approve", Input: "true"}
	s, _ := runLive(t, fn, []abi.HistoryEvent{started("E", "")}, []abi.HistoryEvent{fired, raise})
	if o := s.Outcome(); o == nil || o.Output != `"timeout"` {
		t.Fatalf("timer fired first in the batch: outcome = %+v", o)
	}
	s, hist := runLive(t, fn, []abi.HistoryEvent{started("E", "")}, []abi.HistoryEvent{raise, fired})
	if o := s.Outcome(); o == nil || o.Output != `"approved"` {
		t.Fatalf("event first: outcome = %+v", o)
	}
	// Replaying the same history with the completion step removed must
	// reproduce the same choice.
	r, err := Rebuild("i1", Limits{}, hist[:len(hist)-5], &fakeGuest{fn: fn})
	if err != nil || r.Aborted() != nil {
		t.Fatalf("rebuild: %v %v", err, r.Aborted())
	}
}

func TestSuspendHoldsTheOrchestration(t *testing.T) {
	s := New("i1", Limits{})
	g := &fakeGuest{fn: hello}
	steps := [][]abi.HistoryEvent{
		{started("Hello", "")},
		{{Type: abi.EventExecutionSuspended}},
		{completed(0, `"Hello Tokyo!"`)},
	}
	for i, b := range steps {
		if _, err := s.Step(int64(i+1), b, g); err != nil {
			t.Fatal(err)
		}
	}
	if s.nextSeq != 1 || !s.Suspended() {
		t.Fatalf("suspended orchestration ran: next seq %d, suspended %v", s.nextSeq, s.Suspended())
	}
	res, err := s.Step(9, []abi.HistoryEvent{{Type: abi.EventExecutionResumed}}, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Actions) != 1 || res.Actions[0].Event.Input != `"Seattle"` {
		t.Fatalf("after resume the orchestration must schedule the next activity, got %+v", res.Actions)
	}
}

func TestTerminateEndsWithReason(t *testing.T) {
	s, hist := runLive(t, hello,
		[]abi.HistoryEvent{started("Hello", "")},
		[]abi.HistoryEvent{{Type: abi.EventExecutionTerminated, Reason: "stop it"}},
		[]abi.HistoryEvent{completed(0, `"late"`)},
	)
	if o := s.Outcome(); o == nil || o.Status != abi.StatusTerminated || o.Output != "stop it" {
		t.Fatalf("outcome = %+v", o)
	}
	if last := hist[len(hist)-2]; last.Type != abi.EventExecutionCompleted || last.Status != abi.StatusTerminated {
		t.Fatalf("last events = %+v", hist[len(hist)-3:])
	}
}

func TestPayloadLimitFailsTheOrchestration(t *testing.T) {
	s := New("i1", Limits{MaxPayloadBytes: 10})
	g := &fakeGuest{fn: func(o *orch) string {
		o.check(o.s.ScheduleActivity("A", `"`+strings.Repeat("x", 20)+`"`))
		return `"unreachable"`
	}}
	res, err := s.Step(1, []abi.HistoryEvent{started("E", "")}, g)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome == nil || res.Outcome.Failure == nil || res.Outcome.Failure.Code != CodeLimit {
		t.Fatalf("outcome = %+v", res.Outcome)
	}
}

func TestContinueAsNewCarriesUnconsumedEvents(t *testing.T) {
	fn := func(o *orch) string {
		o.s.ContinueAsNew(`{"n":1}`, true)
		return ""
	}
	s, _ := runLive(t, fn, []abi.HistoryEvent{started("C", ""), {Type: abi.EventEventRaised, Name: "op", Input: `"incr"`}})
	o := s.Outcome()
	if o == nil || o.Status != abi.StatusContinuedAsNew || len(o.Carried) != 1 || o.Carried[0].Input != `"incr"` {
		t.Fatalf("outcome = %+v", o)
	}
}

func TestNewGUIDIsDeterministic(t *testing.T) {
	a, b := New("x", Limits{}), New("x", Limits{})
	for i := 0; i < 3; i++ {
		if ga, gb := a.NewGUID(), b.NewGUID(); ga != gb || len(ga) != 36 {
			t.Fatalf("guid %d: %q vs %q", i, ga, gb)
		}
	}
	if New("y", Limits{}).NewGUID() == New("x", Limits{}).NewGUID() {
		t.Fatal("different instances must get different GUIDs")
	}
	_ = fmt.Sprint()
}

func TestRebuildDetectsActivityBecomingEventWait(t *testing.T) {
	_, hist := runLive(t, hello, helloBatches()[:2]...) // activity 0 scheduled and completed
	s, err := Rebuild("i1", Limits{}, hist, &fakeGuest{fn: func(o *orch) string {
		r, _ := o.await(o.check(o.s.WaitEvent("x")))
		return r
	}})
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Aborted(); f == nil || f.Code != CodeMismatch || !strings.Contains(f.Message, `waits for external event "x"`) {
		t.Fatalf("aborted = %v, want %s naming the event wait", f, CodeMismatch)
	}
}

func TestOversizedInputsFailTheOrchestration(t *testing.T) {
	s := New("i1", Limits{MaxPayloadBytes: 8})
	res, err := s.Step(1, []abi.HistoryEvent{started("E", `"0123456789"`)}, &fakeGuest{fn: hello})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome == nil || res.Outcome.Failure == nil || res.Outcome.Failure.Code != CodeLimit || !strings.Contains(res.Outcome.Failure.Message, "input is 12 bytes") {
		t.Fatalf("oversized input: %+v", res.Outcome)
	}
	s = New("i2", Limits{MaxPayloadBytes: 8})
	g := &fakeGuest{fn: func(o *orch) string { r, _ := o.await(o.s.WaitEvent("x")); return r }}
	if _, err := s.Step(1, []abi.HistoryEvent{started("E", "")}, g); err != nil {
		t.Fatal(err)
	}
	res, _ = s.Step(2, []abi.HistoryEvent{{Type: abi.EventEventRaised, Name: "x", Input: `"0123456789"`}}, g)
	if res.Outcome == nil || res.Outcome.Failure == nil || !strings.Contains(res.Outcome.Failure.Message, `data of event "x" is 12 bytes`) {
		t.Fatalf("oversized event: %+v", res.Outcome)
	}
}
