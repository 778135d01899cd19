package replay

// Applying history events to the state, and what the state says about
// open tasks.

import (
	"fmt"
	"sort"

	"github.com/durablewasm/durablewasm/abi"
)

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
		s.fail(&abi.FailureDetails{Type: abi.FailureLimitExceeded, Code: CodeLimit,
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
				s.abort(&abi.FailureDetails{Type: abi.FailureNondeterminism, Code: CodeMismatch,
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
