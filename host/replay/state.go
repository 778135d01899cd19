// Package replay is the pure decision core of an orchestration: it answers the
// guest's host calls from the instance's history, records new actions, resolves
// tasks from incoming events and detects nondeterminism. It does no I/O, reads
// no clock and starts no goroutines: time arrives with each step and the guest
// is driven through the Guest interface.
package replay

import (
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
