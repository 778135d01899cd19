// Package durabletest runs orchestrators natively, without Wasm, so guest
// authors can unit-test them with go test.
//
// An Env is a fake durablewasm host with a fake clock. It drives the SDK's
// real orchestration runtime (the same coordinator, await and composite-task
// code a Wasm guest runs) through the SDK's internal host interface, and runs
// activities in process. Timers fire when nothing else can make progress: the
// clock then jumps to the earliest pending timer (or timed event), so a test
// of a 6-hour monitor runs in microseconds.
//
//	env := durabletest.New()
//	flows.Register(env)
//	env.OnActivity("E1_SayHello", func(in json.RawMessage) (any, error) { return "hi", nil })
//	res := env.Run("E1_HelloSequence", nil)
//	if res.Status != abi.StatusCompleted { t.Fatal(res.Failure) }
package durabletest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

// DefaultStartTime is the fake clock's initial time when Env.StartTime is zero.
var DefaultStartTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Env is a test environment: a registry of functions and activity mocks, a
// set of events to raise, and a fake host that runs one orchestration (and
// its sub-orchestrations) per Run. Configure the exported fields before Run.
// An Env is not safe for concurrent use.
type Env struct {
	// InstanceID is the root orchestration's instance id; default
	// "test-instance".
	InstanceID string
	// StartTime is the fake clock's initial time; default DefaultStartTime.
	StartTime time.Time
	// MaxSteps bounds the number of host steps (orchestrator starts and
	// resumes, activity runs) of one Run; default 100000. A Run that hits it
	// ends with Status Running and Failure of type "MaxSteps".
	MaxSteps int
	// StepDeadline is how long one orchestrator step (a start, resume or
	// drop) may block outside a Task's Await (on a channel, select{}, a
	// mutex, a sleep) before the SDK reports it stuck; Run then fails that
	// orchestration with Failure type "Stuck" and abandons the blocked
	// goroutine. Zero or negative means durable.StepDeadline as it is when
	// Run begins. It applies to this Env's runs only and never changes
	// durable.StepDeadline, so tests with different deadlines may run in
	// parallel. It is read at the start of each Run. The deadline is wall
	// time, not the fake clock: a stuck step is reported between 1 and 1.25
	// deadlines after it began.
	StepDeadline time.Duration
	// HostError, when non-nil, is consulted before every host call an
	// orchestration makes; a negative return value (an abi.Err* code) is
	// returned to the SDK instead of performing the call. Injecting
	// abi.ErrNondeterminism or abi.ErrLimit also fails the instance the way
	// the real host does. It exists to test failure handling.
	HostError func(c HostCall) int32
	// Config are the configuration values activities read with
	// ActivityContext.Config.
	Config map[string]string
	// HTTP answers activities' outbound HTTP requests; nil refuses them all
	// (as a module deployed without an allowlist).
	HTTP func(req abi.HTTPRequest) abi.HTTPResponse

	reg     *durable.Registry
	mocks   map[string]func(json.RawMessage) (any, error)
	events  []raised
	waiting []raised
}

// HostCall describes a host call for Env.HostError.
type HostCall struct {
	// InstanceID is the calling orchestration.
	InstanceID string
	// Func is the abi.Import* name of the host function.
	Func string
	// Name is the activity, orchestrator or event name, when the call has one.
	Name string
}

type raised struct {
	at   time.Duration // offset from StartTime; <0: before start
	name string
	data []byte
}

var _ durable.Registrar = (*Env)(nil)

// New returns an empty Env.
func New() *Env {
	return &Env{reg: durable.NewRegistry(), mocks: map[string]func(json.RawMessage) (any, error){}}
}

// RegisterOrchestrator registers an orchestrator, as
// durable.RegisterOrchestrator does for a guest.
func (e *Env) RegisterOrchestrator(name string, fn func(ctx *durable.OrchestrationContext) (any, error)) {
	e.reg.RegisterOrchestrator(name, fn)
}

// RegisterActivity registers an activity, as durable.RegisterActivity does
// for a guest.
func (e *Env) RegisterActivity(name string, fn func(ctx *durable.ActivityContext) (any, error)) {
	e.reg.RegisterActivity(name, fn)
}

// OnActivity installs a mock for the activity name, used instead of any
// registered activity of that name. fn gets the activity's raw JSON input;
// its result and error are reported like those of a real activity. A later
// OnActivity for the same name replaces the mock.
func (e *Env) OnActivity(name string, fn func(input json.RawMessage) (any, error)) {
	e.mocks[name] = fn
}

// RaiseEvent raises the external event name with data (json.Marshal) on the
// root orchestration before it starts; the host buffers it until the
// orchestration waits for it.
func (e *Env) RaiseEvent(name string, data any) {
	e.events = append(e.events, raised{at: -1, name: name, data: mustJSON(data)})
}

// RaiseEventAfter raises the event on the root orchestration when the fake
// clock reaches StartTime+d (the clock jumps there when nothing else can
// make progress, like for timers).
func (e *Env) RaiseEventAfter(d time.Duration, name string, data any) {
	if d < 0 {
		d = 0
	}
	e.events = append(e.events, raised{at: d, name: name, data: mustJSON(data)})
}

// RaiseEventWhenWaiting raises the event on the root orchestration as soon
// as it waits for an event of that name and nothing else can make progress
// (before any timer fires). Events queued this way are delivered one at a
// time in the order they were queued.
func (e *Env) RaiseEventWhenWaiting(name string, data any) {
	e.waiting = append(e.waiting, raised{name: name, data: mustJSON(data)})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("durabletest: encode event data: %v", err))
	}
	return b
}

// CallKind names the kind of a recorded call.
type CallKind string

// Recorded call kinds.
const (
	CallActivity         CallKind = "activity"
	CallSubOrchestration CallKind = "sub-orchestration"
	CallTimer            CallKind = "timer"
	CallWaitEvent        CallKind = "wait_event"
	CallCancel           CallKind = "cancel"
	CallSendEvent        CallKind = "send_event"
	CallContinueAsNew    CallKind = "continue_as_new"
)

// Call is one scheduling call an orchestration made, in call order.
type Call struct {
	// Kind is the kind of call.
	Kind CallKind
	// Name is the activity, orchestrator or event name.
	Name string
	// Input is the JSON input (activity, sub-orchestration, continue-as-new,
	// send_event data).
	Input json.RawMessage
	// TaskID is the task id the host returned (cancel: the canceled task).
	TaskID int32
	// InstanceID is the target of a sub-orchestration or send_event.
	InstanceID string
	// FireAt is a timer's fire time.
	FireAt time.Time
	// At is the fake time at which the call was made.
	At time.Time
	// Generation counts ContinueAsNew restarts (0 for the first execution).
	Generation int
}

// Log is one log message.
type Log struct {
	// Level is an abi.Log* level.
	Level int32
	// Message is the formatted message.
	Message string
	// Activity is the activity name for activity logs, empty for the
	// orchestrator.
	Activity string
}

// Result is the outcome of one orchestration instance.
type Result struct {
	// InstanceID and Name identify the instance.
	InstanceID, Name string
	// Status is Completed, Failed, or Running when the orchestration was
	// still waiting when nothing could make progress any more.
	Status abi.RuntimeStatus
	// Output is the JSON output of a completed orchestration.
	Output json.RawMessage
	// Failure describes a failed orchestration (Type "Stuck" when the SDK
	// reported it stuck, "Nondeterminism"/"Limit" for injected host errors).
	// A stuck orchestration takes the SDK runtime down with it, as it takes
	// down its Wasm instance: orchestrations of the same run that were
	// parked at that moment fail with "GuestError" (the real host would
	// replay them).
	Failure *abi.FailureDetails
	// CustomStatus is the last custom status (JSON), or nil.
	CustomStatus json.RawMessage
	// Calls lists the scheduling calls in order, across generations.
	Calls []Call
	// Logs lists orchestrator and activity logs in order.
	Logs []Log
	// Generations is the number of executions (1 + ContinueAsNew count).
	Generations int
	// Input is the input of the last generation.
	Input json.RawMessage
	// End is the fake time when the instance finished (or the run ended).
	End time.Time
	// Children holds the results of sub-orchestrations by instance id.
	Children map[string]*Result
}

// Decode unmarshals Output into v. It fails if the orchestration did not
// complete.
func (r *Result) Decode(v any) error {
	if r.Status != abi.StatusCompleted {
		return fmt.Errorf("durabletest: orchestration %s is %s, not Completed: %v", r.InstanceID, r.Status, r.Failure)
	}
	return json.Unmarshal(r.Output, v)
}

// CallsOf returns the recorded calls of the given kind.
func (r *Result) CallsOf(kind CallKind) []Call {
	var out []Call
	for _, c := range r.Calls {
		if c.Kind == kind {
			out = append(out, c)
		}
	}
	return out
}

// Run starts the orchestrator name with input (json.Marshal) as the root
// instance and runs it, its activities and sub-orchestrations until nothing
// can make progress, firing timers with the fake clock. It then discards
// any orchestration still waiting (dropping its goroutine) and returns the
// root's result. Run may be called several times on one Env; events queued
// with RaiseEvent* apply to every Run.
func (e *Env) Run(name string, input any) *Result {
	in, err := json.Marshal(input)
	if err != nil {
		panic(fmt.Sprintf("durabletest: encode input: %v", err))
	}
	h := newHost(e)
	return h.run(name, in)
}
