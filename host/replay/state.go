// Package replay is the pure decision core of an orchestration: it answers the
// guest's host calls from the instance's history, records new actions, resolves
// tasks from incoming events and detects nondeterminism. It does no I/O, reads
// no clock and starts no goroutines: time arrives with each step and the guest
// is driven through the Guest interface.
package replay

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/durablewasm/durablewasm/abi"
)

// Stable error codes for failures detected by the host. Users search for
// these; never change their meaning.
const (
	// CodeMismatch: a replayed call differs from the history event with the
	// same id (kind, name or input).
	CodeMismatch = "DW1001"
	// CodeMissingCall: history records a call the orchestrator did not make
	// on replay.
	CodeMissingCall = "DW1002"
	// CodeUnexpectedCall: on replay the orchestrator made a call that history
	// does not record.
	CodeUnexpectedCall = "DW1003"
	// CodeStuck: the orchestrator blocked outside the SDK's await.
	CodeStuck = "DW2001"
	// CodeGuestTrap: the guest trapped or exceeded its step deadline.
	CodeGuestTrap = "DW2002"
	// CodeUnknownOrchestrator: the module registers no orchestrator of that
	// name.
	CodeUnknownOrchestrator = "DW2003"
	// CodeLimit: a payload or history limit was exceeded.
	CodeLimit = "DW2004"
	// CodeInvalidJSON: the guest passed a payload that is not valid JSON
	// (abi.InvalidJSONFailure).
	CodeInvalidJSON = abi.CodeInvalidJSON
	// CodeQuarantined: a message for the instance could not be processed
	// (its step or commit kept failing) and was quarantined as a dead
	// letter; the instance was failed so that its partition goes on.
	CodeQuarantined = "DW3001"
)

// TaskKind is the kind of a task issued to the guest.
type TaskKind uint8

// Task kinds.
const (
	KindActivity TaskKind = iota + 1
	KindTimer
	KindSubOrchestration
	KindEvent
	KindEventSent
)

var kindEvent = map[TaskKind]abi.EventType{
	KindActivity:         abi.EventTaskScheduled,
	KindTimer:            abi.EventTimerCreated,
	KindSubOrchestration: abi.EventSubOrchestrationInstanceCreated,
	KindEventSent:        abi.EventEventSent,
}

type task struct {
	kind     TaskKind
	name     string
	instance string // sub-orchestration instance id
	resolved bool
	canceled bool
	order    uint64
	result   string
	failure  *abi.FailureDetails
}

type bufferedEvent struct {
	data string
}

// Action is a new side effect recorded during a step: the scheduling event and
// what the worker must do for it.
type Action struct {
	// Event is the scheduling event (TaskScheduled, TimerCreated,
	// SubOrchestrationInstanceCreated, EventSent) appended to history.
	Event abi.HistoryEvent
}

// Outcome is how an orchestration generation ended, if it did in this step.
type Outcome struct {
	// Status is Completed, Failed, Terminated or ContinuedAsNew.
	Status abi.RuntimeStatus
	// Output is the JSON output (Completed) or the reason (Terminated).
	Output string
	// Failure is set for Failed.
	Failure *abi.FailureDetails
	// NewInput and KeepEvents describe a ContinueAsNew.
	NewInput   string
	KeepEvents bool
	// Carried are the unconsumed external events kept by ContinueAsNew.
	Carried []abi.HistoryEvent
	// NoCascade is set when a termination must not reach the running
	// sub-orchestrations.
	NoCascade bool
}

// Limits bound what a guest may record. Zero fields take the defaults.
type Limits struct {
	// MaxPayloadBytes bounds inputs, outputs, event data and custom status
	// (default 1 MiB).
	MaxPayloadBytes int
	// MaxHistoryEvents bounds a generation's history (default 100,000).
	MaxHistoryEvents int
}

// WithDefaults returns l with zero fields set to their defaults.
func (l Limits) WithDefaults() Limits { return l.withDefaults() }

func (l Limits) withDefaults() Limits {
	if l.MaxPayloadBytes <= 0 {
		l.MaxPayloadBytes = 1 << 20
	}
	if l.MaxHistoryEvents <= 0 {
		l.MaxHistoryEvents = 100_000
	}
	return l
}

// State is the in-memory state of one orchestration generation. It is not
// safe for concurrent use.
type State struct {
	InstanceID  string
	ExecutionID string
	Name        string
	Input       string
	ParentID    string
	ParentTask  int32

	limits Limits

	nextSeq      int32
	historySched map[int32]abi.HistoryEvent
	tasks        map[int32]*task
	resolveSeq   uint64
	waiters      map[string][]int32
	buffered     map[string][]bufferedEvent
	bufferedSeq  []string // names in arrival order, for ContinueAsNew carry-over

	replaying        bool
	suspended        bool
	started          bool
	guestStarted     bool
	outcomeCommitted bool
	now              int64
	guidSeq          uint32

	customStatus    string
	customStatusSet bool

	historyLen int
	step       []abi.HistoryEvent
	actions    []Action
	outcome    *Outcome
	aborted    *abi.FailureDetails
}

// New returns an empty state for an instance.
func New(instanceID string, limits Limits) *State {
	return &State{
		InstanceID:   instanceID,
		limits:       limits.withDefaults(),
		historySched: map[int32]abi.HistoryEvent{},
		tasks:        map[int32]*task{},
		waiters:      map[string][]int32{},
		buffered:     map[string][]bufferedEvent{},
	}
}

// Started reports whether the generation's ExecutionStarted was applied.
func (s *State) Started() bool { return s.started }

// Suspended reports whether the orchestration is suspended.
func (s *State) Suspended() bool { return s.suspended }

// Finished reports whether the generation has an outcome or was aborted.
func (s *State) Finished() bool { return s.outcome != nil }

// Outcome returns the generation's outcome, or nil while it runs.
func (s *State) Outcome() *Outcome { return s.outcome }

// CustomStatus returns the custom status JSON and whether it was ever set.
func (s *State) CustomStatus() (string, bool) { return s.customStatus, s.customStatusSet }

// HistoryLen is the number of events in the generation's committed history
// plus the current step's.
func (s *State) HistoryLen() int { return s.historyLen + len(s.step) }

// Aborted returns the failure that stopped the guest (nondeterminism, limit),
// or nil.
func (s *State) Aborted() *abi.FailureDetails { return s.aborted }

func (s *State) abort(f *abi.FailureDetails) {
	if s.aborted == nil {
		s.aborted = f
		s.fail(f)
	}
}

func (s *State) fail(f *abi.FailureDetails) {
	if s.outcome == nil {
		s.outcome = &Outcome{Status: abi.StatusFailed, Failure: f}
	}
}

// --- calls from the guest -------------------------------------------------

func describe(e abi.HistoryEvent) string {
	s := fmt.Sprintf("%s %q", e.Type, e.Name)
	switch e.Type {
	case abi.EventTimerCreated:
		s = fmt.Sprintf("%s at %d", e.Type, e.FireAt)
	case abi.EventSubOrchestrationInstanceCreated, abi.EventEventSent:
		s += fmt.Sprintf(" for instance %q", e.InstanceID)
	}
	if e.Input != "" {
		in := e.Input
		if len(in) > 64 {
			in = in[:64] + "…"
		}
		s += " with input " + in
	}
	return s
}

// record registers a scheduling call. It returns the task id, or an ABI error
// code when the call contradicts history.
func (s *State) record(kind TaskKind, e abi.HistoryEvent) int32 {
	if s.aborted != nil || s.outcome != nil {
		return abi.ErrNotInStep
	}
	id := s.nextSeq
	s.nextSeq++
	e.EventID = id
	e.Type = kindEvent[kind]
	if old, ok := s.historySched[id]; ok {
		if old.Type != e.Type || old.Name != e.Name || old.Input != e.Input || old.FireAt != e.FireAt || old.InstanceID != e.InstanceID {
			s.abort(&abi.FailureDetails{Type: "Nondeterminism", Code: CodeMismatch,
				Message: fmt.Sprintf("nondeterministic orchestration: event %d: history has %s but the orchestrator now calls %s", id, describe(old), describe(e))})
			return abi.ErrNondeterminism
		}
	} else {
		if s.replaying {
			s.abort(&abi.FailureDetails{Type: "Nondeterminism", Code: CodeUnexpectedCall,
				Message: fmt.Sprintf("nondeterministic orchestration: event %d: the orchestrator calls %s while replaying, but history has no event %d", id, describe(e), id)})
			return abi.ErrNondeterminism
		}
		if s.HistoryLen()+1 > s.limits.MaxHistoryEvents {
			s.abort(&abi.FailureDetails{Type: "LimitExceeded", Code: CodeLimit,
				Message: fmt.Sprintf("history limit of %d events reached at event %d (%s)", s.limits.MaxHistoryEvents, id, describe(e))})
			return abi.ErrLimit
		}
		e.Timestamp = s.now
		s.step = append(s.step, e)
		s.actions = append(s.actions, Action{Event: e})
	}
	if t, ok := s.tasks[id]; !ok { // a completion applied before the call keeps its result
		s.tasks[id] = &task{kind: kind, name: e.Name, instance: e.InstanceID}
	} else if t.kind != kind {
		s.abort(&abi.FailureDetails{Type: "Nondeterminism", Code: CodeMismatch,
			Message: fmt.Sprintf("nondeterministic orchestration: event %d: history completes a different kind of task there than the orchestrator's %s", id, describe(e))})
		return abi.ErrNondeterminism
	}
	return id
}

// checkPayload checks a JSON payload the guest passed: its size, and, for
// calls not replayed from history (whose payloads were checked when first
// recorded), that it is valid JSON. It fails the orchestration and returns
// the abi error code when the payload is refused, 0 otherwise.
func (s *State) checkPayload(what string, p string) int32 {
	if len(p) > s.limits.MaxPayloadBytes {
		s.abort(&abi.FailureDetails{Type: "LimitExceeded", Code: CodeLimit,
			Message: fmt.Sprintf("%s is %d bytes, over the payload limit of %d bytes", what, len(p), s.limits.MaxPayloadBytes)})
		return abi.ErrLimit
	}
	if !s.replaying && p != "" && !json.Valid([]byte(p)) {
		s.abort(abi.InvalidJSONFailure(what, p))
		return abi.ErrInvalidJSON
	}
	return 0
}

// ScheduleActivity records a call of activity name with JSON input.
func (s *State) ScheduleActivity(name, input string) int32 {
	if code := s.checkPayload("input of activity "+name, input); code != 0 {
		return code
	}
	return s.record(KindActivity, abi.HistoryEvent{Name: name, Input: input})
}

// CreateTimer records a durable timer firing at fireAt (unix nanoseconds).
func (s *State) CreateTimer(fireAt int64) int32 {
	return s.record(KindTimer, abi.HistoryEvent{FireAt: fireAt})
}

// ScheduleSubOrchestration records a sub-orchestration call. An empty
// instanceID is replaced by "<parent id>:<task id>".
func (s *State) ScheduleSubOrchestration(name, instanceID, input string) int32 {
	if code := s.checkPayload("input of sub-orchestration "+name, input); code != 0 {
		return code
	}
	if instanceID == "" {
		instanceID = fmt.Sprintf("%s:%d", s.InstanceID, s.nextSeq)
	}
	return s.record(KindSubOrchestration, abi.HistoryEvent{Name: name, InstanceID: instanceID, Input: input})
}

// SendEvent records an event raised on another instance. Its task resolves at
// once.
func (s *State) SendEvent(instanceID, name, data string) int32 {
	if code := s.checkPayload("data of event "+name, data); code != 0 {
		return code
	}
	id := s.record(KindEventSent, abi.HistoryEvent{Name: name, InstanceID: instanceID, Input: data})
	if id >= 0 {
		s.resolve(s.tasks[id], "", nil)
	}
	return id
}

// WaitEvent issues a task resolved by the next external event named name;
// an event that arrived earlier and is still unconsumed resolves it at once.
func (s *State) WaitEvent(name string) int32 {
	if s.aborted != nil || s.outcome != nil {
		return abi.ErrNotInStep
	}
	id := s.nextSeq
	s.nextSeq++
	if old, ok := s.historySched[id]; ok {
		s.abort(&abi.FailureDetails{Type: "Nondeterminism", Code: CodeMismatch,
			Message: fmt.Sprintf("nondeterministic orchestration: event %d: history has %s but the orchestrator now waits for external event %q", id, describe(old), name)})
		return abi.ErrNondeterminism
	}
	t, exists := s.tasks[id]
	if exists && t.kind != KindEvent {
		s.abort(&abi.FailureDetails{Type: "Nondeterminism", Code: CodeMismatch,
			Message: fmt.Sprintf("nondeterministic orchestration: event %d: history completes a task there, but the orchestrator now waits for external event %q", id, name)})
		return abi.ErrNondeterminism
	}
	t = &task{kind: KindEvent, name: name}
	s.tasks[id] = t
	if q := s.buffered[name]; len(q) > 0 {
		s.buffered[name] = q[1:]
		s.dropBufferedName(name)
		s.resolve(t, q[0].data, nil)
	} else {
		s.waiters[name] = append(s.waiters[name], id)
	}
	return id
}

func (s *State) dropBufferedName(name string) {
	for i, n := range s.bufferedSeq {
		if n == name {
			s.bufferedSeq = append(s.bufferedSeq[:i:i], s.bufferedSeq[i+1:]...)
			return
		}
	}
}

// CancelTask withdraws an unresolved event wait. It returns 0, or
// abi.ErrUnknownTask.
func (s *State) CancelTask(id int32) int32 {
	t, ok := s.tasks[id]
	if !ok {
		return abi.ErrUnknownTask
	}
	if t.kind == KindEvent && !t.resolved {
		t.canceled = true
		q := s.waiters[t.name]
		for i, w := range q {
			if w == id {
				s.waiters[t.name] = append(q[:i:i], q[i+1:]...)
				break
			}
		}
	}
	return 0
}

// Poll returns the index in ids of the task resolved first, or abi.PollNone
// when none is resolved. An unknown id yields abi.ErrUnknownTask.
func (s *State) Poll(ids []int32) int32 {
	best, bestOrder := int32(abi.PollNone), uint64(0)
	for i, id := range ids {
		t, ok := s.tasks[id]
		if !ok {
			return abi.ErrUnknownTask
		}
		if t.resolved && (best < 0 || t.order < bestOrder) {
			best, bestOrder = int32(i), t.order
		}
	}
	return best
}

// TaskResult returns the result kind (abi.Result*) and payload of a task:
// JSON output for ResultOK, FailureDetails JSON for ResultFailed.
func (s *State) TaskResult(id int32) (int32, string) {
	t, ok := s.tasks[id]
	if !ok {
		return abi.ErrUnknownTask, ""
	}
	if !t.resolved {
		return abi.ResultPending, ""
	}
	if t.failure != nil {
		return abi.ResultFailed, string(encodeFailure(t.failure))
	}
	return abi.ResultOK, t.result
}

// Now returns the step's replay-safe time in unix nanoseconds.
func (s *State) Now() int64 { return s.now }

// IsReplaying reports whether the guest is re-running recorded history.
func (s *State) IsReplaying() bool { return s.replaying }

// NewGUID returns a deterministic name-based (version 5 style) UUID derived
// from the instance, the generation and a per-generation counter.
func (s *State) NewGUID() string {
	h := sha1.New()
	h.Write([]byte(s.InstanceID))
	h.Write([]byte{0})
	h.Write([]byte(s.ExecutionID))
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], s.guidSeq)
	s.guidSeq++
	h.Write(b[:])
	u := h.Sum(nil)[:16]
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// SetCustomStatus sets the custom status (JSON text).
func (s *State) SetCustomStatus(v string) int32 {
	if code := s.checkPayload("custom status", v); code != 0 {
		return code
	}
	s.customStatus, s.customStatusSet = v, true
	return 0
}

// ContinueAsNew ends the generation; the worker starts a new one with input.
func (s *State) ContinueAsNew(input string, keepEvents bool) int32 {
	if s.outcome != nil {
		return abi.ErrNotInStep
	}
	if code := s.checkPayload("continue-as-new input", input); code != 0 {
		return code
	}
	s.outcome = &Outcome{Status: abi.StatusContinuedAsNew, NewInput: input, KeepEvents: keepEvents}
	return 0
}

// Complete records the guest's result: abi.CompleteOK with JSON output or
// abi.CompleteFailed with FailureDetails JSON.
func (s *State) Complete(status int32, payload string) int32 {
	if s.outcome != nil {
		return abi.ErrNotInStep
	}
	switch status {
	case abi.CompleteOK:
		if code := s.checkPayload("orchestrator output", payload); code != 0 {
			return code
		}
		s.outcome = &Outcome{Status: abi.StatusCompleted, Output: payload}
	case abi.CompleteFailed:
		f := abi.DecodeFailure([]byte(payload))
		if f.Source == "" {
			f.Source = "orchestrator " + s.Name
		}
		s.outcome = &Outcome{Status: abi.StatusFailed, Failure: f}
	default:
		return abi.ErrBadArgument
	}
	return 0
}

// FailGuest fails the generation for a reason found outside the state (trap,
// stuck guest, unknown orchestrator), unless it already has an outcome.
func (s *State) FailGuest(f *abi.FailureDetails) { s.fail(f) }

// --- events ---------------------------------------------------------------

func (s *State) resolve(t *task, result string, f *abi.FailureDetails) {
	s.resolveSeq++
	t.resolved, t.order, t.result, t.failure = true, s.resolveSeq, result, f
}

// apply applies one event to the state. It returns false when the event is a
// duplicate or does not belong (and so is not recorded in history).
func (s *State) apply(e *abi.HistoryEvent) bool {
	if !s.replaying && (e.Type == abi.EventExecutionStarted || e.Type == abi.EventEventRaised) && len(e.Input) > s.limits.MaxPayloadBytes {
		what := "the orchestration's input"
		if e.Type == abi.EventEventRaised {
			what = fmt.Sprintf("the data of event %q", e.Name)
		}
		s.fail(&abi.FailureDetails{Type: "LimitExceeded", Code: CodeLimit,
			Message: fmt.Sprintf("%s is %d bytes, over the payload limit of %d bytes", what, len(e.Input), s.limits.MaxPayloadBytes)})
		if e.Type == abi.EventEventRaised {
			return true // recorded, but never delivered
		}
	}
	switch e.Type {
	case abi.EventExecutionStarted:
		if s.started {
			return false
		}
		s.started = true
		s.Name, s.Input, s.ExecutionID = e.Name, e.Input, e.ExecutionID
		s.ParentID, s.ParentTask = e.ParentInstanceID, e.ParentTaskID
	case abi.EventTaskCompleted, abi.EventTaskFailed, abi.EventTimerFired,
		abi.EventSubOrchestrationInstanceCompleted, abi.EventSubOrchestrationInstanceFailed:
		t, ok := s.tasks[e.TaskScheduledID]
		if ok && !t.resolved && t.kind != kindOf(completionOf(e.Type)) {
			if s.replaying {
				s.abort(&abi.FailureDetails{Type: "Nondeterminism", Code: CodeMismatch,
					Message: fmt.Sprintf("nondeterministic orchestration: history has %s for event %d, but the orchestrator made a different kind of call there", e.Type, e.TaskScheduledID)})
			}
			return false
		}
		if !ok || t.resolved {
			sched, inHistory := s.historySched[e.TaskScheduledID]
			if ok || !inHistory || sched.Type != completionOf(e.Type) {
				return false
			}
			// Scheduled in history but not yet re-issued during replay: keep
			// it until the guest issues the call again.
			t = &task{kind: kindOf(sched.Type), name: sched.Name}
			s.tasks[e.TaskScheduledID] = t
		}
		switch e.Type {
		case abi.EventTaskFailed, abi.EventSubOrchestrationInstanceFailed:
			f := e.Failure
			if f == nil {
				f = &abi.FailureDetails{Message: "failed"}
			}
			s.resolve(t, "", f)
		default:
			s.resolve(t, e.Result, nil)
		}
	case abi.EventEventRaised:
		if q := s.waiters[e.Name]; len(q) > 0 {
			s.waiters[e.Name] = q[1:]
			s.resolve(s.tasks[q[0]], e.Input, nil)
		} else {
			s.buffered[e.Name] = append(s.buffered[e.Name], bufferedEvent{data: e.Input})
			s.bufferedSeq = append(s.bufferedSeq, e.Name)
		}
	case abi.EventExecutionSuspended:
		s.suspended = true
	case abi.EventExecutionResumed:
		s.suspended = false
	case abi.EventExecutionTerminated:
		if s.outcome == nil {
			s.outcome = &Outcome{Status: abi.StatusTerminated, Output: e.Reason, NoCascade: e.NoCascade}
		}
	case abi.EventOrchestratorStarted:
		s.now = e.Timestamp
	case abi.EventTaskScheduled, abi.EventTimerCreated, abi.EventSubOrchestrationInstanceCreated,
		abi.EventEventSent, abi.EventOrchestratorCompleted, abi.EventExecutionCompleted,
		abi.EventContinueAsNew, abi.EventGenericEvent, abi.EventExecutionRewound:
	default:
		return false
	}
	return true
}

func completionOf(t abi.EventType) abi.EventType {
	switch t {
	case abi.EventTaskCompleted, abi.EventTaskFailed:
		return abi.EventTaskScheduled
	case abi.EventTimerFired:
		return abi.EventTimerCreated
	default:
		return abi.EventSubOrchestrationInstanceCreated
	}
}

func kindOf(t abi.EventType) TaskKind {
	for k, v := range kindEvent {
		if v == t {
			return k
		}
	}
	return 0
}

// carried returns the unconsumed external events, in arrival order.
func (s *State) carried() []abi.HistoryEvent {
	idx := map[string]int{}
	var out []abi.HistoryEvent
	for _, name := range s.bufferedSeq {
		q := s.buffered[name]
		i := idx[name]
		if i < len(q) {
			out = append(out, abi.HistoryEvent{EventID: -1, Type: abi.EventEventRaised, Name: name, Input: q[i].data})
			idx[name] = i + 1
		}
	}
	return out
}

// OpenTasks returns the ids of unresolved activity, timer and
// sub-orchestration tasks, sorted; for diagnostics and invariant checks.
func (s *State) OpenTasks() []int32 {
	var out []int32
	for id, t := range s.tasks {
		if !t.resolved && t.kind != KindEvent {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// OpenSubOrchestrations returns the instance ids of the sub-orchestrations
// the orchestration started and that have not completed, sorted by task id.
func (s *State) OpenSubOrchestrations() []string {
	var out []string
	for _, id := range s.OpenTasks() {
		if t := s.tasks[id]; t.kind == KindSubOrchestration && t.instance != "" {
			out = append(out, t.instance)
		}
	}
	return out
}

// WaitingFor returns the event names the orchestration waits for, sorted.
func (s *State) WaitingFor() []string {
	var out []string
	for name, q := range s.waiters {
		if len(q) > 0 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
