package replay

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/durablewasm/durablewasm/abi"
)

// Guest runs orchestration code for one State. While Start or Resume run, the
// guest calls the State's methods (through host functions); they return when
// the orchestration awaits an unresolved task or has finished.
type Guest interface {
	// Start begins the orchestrator s.Name with s.Input.
	Start(s *State) error
	// Resume lets a parked orchestration re-check its awaited tasks.
	Resume(s *State) error
}

// GuestFailure is returned by a Guest when the orchestration itself failed
// outside its own code path (trap, deadline, stuck, unknown orchestrator): the
// generation fails with Failure. Any other error from a Guest means the guest
// could not run (e.g. shutting down): the step is abandoned, nothing changes.
type GuestFailure struct {
	Failure *abi.FailureDetails
}

// Error renders the failure as its FailureDetails does.
func (g *GuestFailure) Error() string { return g.Failure.Error() }

// StepResult is what one step produced, to be committed atomically.
type StepResult struct {
	// NewEvents are appended to history; empty when every incoming event was
	// a duplicate (nothing to commit but acknowledgements).
	NewEvents []abi.HistoryEvent
	// Actions are the new scheduling calls, in call order.
	Actions []Action
	// Outcome is set when the generation ended in this step.
	Outcome *Outcome
}

func encodeFailure(f *abi.FailureDetails) []byte {
	b, _ := json.Marshal(f)
	return b
}

// runGuest starts or resumes the guest when the orchestration can run.
func (s *State) runGuest(g Guest, wake bool) error {
	if s.outcome != nil || s.suspended || !s.started {
		return nil
	}
	var err error
	if !s.guestStarted {
		s.guestStarted = true
		err = g.Start(s)
	} else if wake {
		err = g.Resume(s)
	} else {
		return nil
	}
	var gf *GuestFailure
	if errors.As(err, &gf) {
		s.FailGuest(gf.Failure)
		return nil
	}
	return err
}

// wakes reports whether applying e can let a parked orchestration proceed.
func wakes(t abi.EventType) bool {
	switch t {
	case abi.EventTaskCompleted, abi.EventTaskFailed, abi.EventTimerFired,
		abi.EventSubOrchestrationInstanceCompleted, abi.EventSubOrchestrationInstanceFailed,
		abi.EventEventRaised, abi.EventExecutionResumed, abi.EventExecutionStarted:
		return true
	}
	return false
}

// Step applies incoming events at time now (unix nanoseconds), runs the guest
// and returns the events and actions to commit. Duplicate incoming events
// (a completion for a task already resolved, a second ExecutionStarted) are
// dropped. A non-nil error means the guest could not run; the state must then
// be discarded and rebuilt from committed history.
func (s *State) Step(now int64, incoming []abi.HistoryEvent, g Guest) (*StepResult, error) {
	s.now = now
	s.step = s.step[:0]
	s.actions = nil
	s.step = append(s.step, abi.HistoryEvent{EventID: -1, Type: abi.EventOrchestratorStarted, Timestamp: now})
	applied, wake := 0, false
	hadOutcome := s.outcome != nil && s.outcomeCommitted
	if !hadOutcome {
		for i := range incoming {
			e := incoming[i]
			if e.Type == abi.EventOrchestratorStarted || e.Type == abi.EventOrchestratorCompleted {
				continue
			}
			e.EventID = -1
			if e.Timestamp == 0 {
				e.Timestamp = now
			}
			if !s.apply(&e) {
				continue
			}
			applied++
			wake = wake || wakes(e.Type)
			s.step = append(s.step, e)
		}
		if err := s.runGuest(g, wake); err != nil {
			return nil, err
		}
	}
	if applied == 0 && (s.outcome == nil || s.outcomeCommitted) && len(s.actions) == 0 {
		s.step = s.step[:0]
		return &StepResult{}, nil
	}
	res := &StepResult{Actions: s.actions}
	if s.outcome != nil && !s.outcomeCommitted {
		s.outcomeCommitted = true
		o := s.outcome
		switch o.Status {
		case abi.StatusContinuedAsNew:
			if o.KeepEvents {
				o.Carried = s.carried()
			}
			s.step = append(s.step, abi.HistoryEvent{EventID: -1, Type: abi.EventContinueAsNew, Timestamp: now, Input: o.NewInput})
		default:
			s.step = append(s.step, abi.HistoryEvent{EventID: -1, Type: abi.EventExecutionCompleted, Timestamp: now,
				Status: o.Status, Result: o.Output, Failure: o.Failure})
		}
		res.Outcome = o
	}
	s.step = append(s.step, abi.HistoryEvent{EventID: -1, Type: abi.EventOrchestratorCompleted, Timestamp: now})
	res.NewEvents = append([]abi.HistoryEvent(nil), s.step...)
	s.historyLen += len(s.step)
	s.step = s.step[:0]
	return res, nil
}

// Rebuild reconstructs the state of a running generation by replaying its
// committed history through a fresh guest. Calls the guest makes are matched
// against history by task id; a mismatch aborts the generation with a
// nondeterminism failure (see Aborted) that the next Step commits. A non-nil
// error means the guest could not run.
func Rebuild(instanceID string, limits Limits, history []abi.HistoryEvent, g Guest) (*State, error) {
	s := New(instanceID, limits)
	for _, e := range history {
		if _, sched := kindOfScheduling(e.Type); sched {
			s.historySched[e.EventID] = e
		}
	}
	s.replaying = true
	wake := false
	flush := func() error {
		err := s.runGuest(g, wake)
		wake = false
		return err
	}
	for i := range history {
		e := history[i]
		if e.Type == abi.EventOrchestratorStarted && i > 0 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		if _, sched := kindOfScheduling(e.Type); sched {
			continue
		}
		if e.Type == abi.EventExecutionCompleted || e.Type == abi.EventContinueAsNew {
			// A finished generation: nothing to replay further.
			s.outcomeCommitted = true
			if s.outcome == nil {
				s.outcome = &Outcome{Status: e.Status, Output: e.Result, Failure: e.Failure}
			}
			continue
		}
		if s.apply(&e) {
			wake = wake || wakes(e.Type)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	s.historyLen = len(history)
	if s.aborted == nil && !s.outcomeCommitted {
		for id, e := range s.historySched {
			if id >= s.nextSeq {
				s.abort(&abi.FailureDetails{Type: abi.FailureNondeterminism, Code: CodeMissingCall,
					Message: fmt.Sprintf("nondeterministic orchestration: event %d: history has %s but the orchestrator no longer makes that call (it made %d calls on replay)", id, describe(e), s.nextSeq)})
				break
			}
		}
	}
	s.replaying = false
	return s, nil
}

func kindOfScheduling(t abi.EventType) (TaskKind, bool) {
	k := kindOf(t)
	return k, k != 0
}
