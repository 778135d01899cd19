package replay

// The calls a guest makes during a step (the host functions of
// abi/README.md): scheduling, waiting, results, time and ids, completion.

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/durablewasm/durablewasm/abi"
)

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
			s.abort(&abi.FailureDetails{Type: abi.FailureNondeterminism, Code: CodeMismatch,
				Message: fmt.Sprintf("nondeterministic orchestration: event %d: history has %s but the orchestrator now calls %s", id, describe(old), describe(e))})
			return abi.ErrNondeterminism
		}
	} else {
		if s.replaying {
			s.abort(&abi.FailureDetails{Type: abi.FailureNondeterminism, Code: CodeUnexpectedCall,
				Message: fmt.Sprintf("nondeterministic orchestration: event %d: the orchestrator calls %s while replaying, but history has no event %d", id, describe(e), id)})
			return abi.ErrNondeterminism
		}
		if s.HistoryLen()+1 > s.limits.MaxHistoryEvents {
			s.abort(&abi.FailureDetails{Type: abi.FailureLimitExceeded, Code: CodeLimit,
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
		s.abort(&abi.FailureDetails{Type: abi.FailureNondeterminism, Code: CodeMismatch,
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
		s.abort(&abi.FailureDetails{Type: abi.FailureLimitExceeded, Code: CodeLimit,
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
		s.abort(&abi.FailureDetails{Type: abi.FailureNondeterminism, Code: CodeMismatch,
			Message: fmt.Sprintf("nondeterministic orchestration: event %d: history has %s but the orchestrator now waits for external event %q", id, describe(old), name)})
		return abi.ErrNondeterminism
	}
	t, exists := s.tasks[id]
	if exists && t.kind != KindEvent {
		s.abort(&abi.FailureDetails{Type: abi.FailureNondeterminism, Code: CodeMismatch,
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
