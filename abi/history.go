package abi

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// EventType names a history event. The names are Durable Functions'
// (DurableTask.Core) event type names, as shown by get-history.
type EventType string

// History event types.
const (
	EventExecutionStarted                  EventType = "ExecutionStarted"
	EventExecutionCompleted                EventType = "ExecutionCompleted"
	EventExecutionTerminated               EventType = "ExecutionTerminated"
	EventExecutionSuspended                EventType = "ExecutionSuspended"
	EventExecutionResumed                  EventType = "ExecutionResumed"
	EventExecutionRewound                  EventType = "ExecutionRewound"
	EventContinueAsNew                     EventType = "ContinueAsNew"
	EventOrchestratorStarted               EventType = "OrchestratorStarted"
	EventOrchestratorCompleted             EventType = "OrchestratorCompleted"
	EventTaskScheduled                     EventType = "TaskScheduled"
	EventTaskCompleted                     EventType = "TaskCompleted"
	EventTaskFailed                        EventType = "TaskFailed"
	EventTimerCreated                      EventType = "TimerCreated"
	EventTimerFired                        EventType = "TimerFired"
	EventSubOrchestrationInstanceCreated   EventType = "SubOrchestrationInstanceCreated"
	EventSubOrchestrationInstanceCompleted EventType = "SubOrchestrationInstanceCompleted"
	EventSubOrchestrationInstanceFailed    EventType = "SubOrchestrationInstanceFailed"
	EventEventRaised                       EventType = "EventRaised"
	EventEventSent                         EventType = "EventSent"
	EventGenericEvent                      EventType = "GenericEvent"
)

var knownEventTypes = map[EventType]bool{
	EventExecutionStarted: true, EventExecutionCompleted: true, EventExecutionTerminated: true,
	EventExecutionSuspended: true, EventExecutionResumed: true, EventExecutionRewound: true,
	EventContinueAsNew: true, EventOrchestratorStarted: true, EventOrchestratorCompleted: true,
	EventTaskScheduled: true, EventTaskCompleted: true, EventTaskFailed: true,
	EventTimerCreated: true, EventTimerFired: true, EventSubOrchestrationInstanceCreated: true,
	EventSubOrchestrationInstanceCompleted: true, EventSubOrchestrationInstanceFailed: true,
	EventEventRaised: true, EventEventSent: true, EventGenericEvent: true,
}

// Valid reports whether t is one of the defined event types.
func (t EventType) Valid() bool { return knownEventTypes[t] }

// HistoryEvent is one entry of an orchestration's history. Fields that do not
// apply to an event type are zero and omitted from the JSON encoding.
//
// Payload fields (Input, Result) hold JSON text exactly as the guest produced
// it; they are never re-encoded.
type HistoryEvent struct {
	// EventID is the task id for scheduling events (TaskScheduled,
	// TimerCreated, SubOrchestrationInstanceCreated, EventSent) and -1 for all
	// others.
	EventID int32 `json:"id"`
	// Type is the event type.
	Type EventType `json:"type"`
	// Timestamp is when the event was recorded, in unix nanoseconds.
	Timestamp int64 `json:"ts"`
	// Name is the orchestrator, activity, sub-orchestrator or event name.
	Name string `json:"name,omitempty"`
	// Input is the JSON input of ExecutionStarted, TaskScheduled,
	// SubOrchestrationInstanceCreated, EventRaised and EventSent.
	Input string `json:"input,omitempty"`
	// Result is the JSON output of TaskCompleted,
	// SubOrchestrationInstanceCompleted and ExecutionCompleted.
	Result string `json:"result,omitempty"`
	// TaskScheduledID links a completion (TaskCompleted, TaskFailed,
	// TimerFired, SubOrchestrationInstance{Completed,Failed}) to the EventID
	// of its scheduling event.
	TaskScheduledID int32 `json:"taskId,omitempty"`
	// FireAt is the fire time of TimerCreated and TimerFired, unix nanoseconds.
	FireAt int64 `json:"fireAt,omitempty"`
	// InstanceID is the target of SubOrchestrationInstanceCreated and
	// EventSent, and the instance of ExecutionStarted.
	InstanceID string `json:"instanceId,omitempty"`
	// ExecutionID identifies the generation of ExecutionStarted (a new one
	// after each ContinueAsNew).
	ExecutionID string `json:"executionId,omitempty"`
	// ParentInstanceID and ParentTaskID are set on ExecutionStarted of a
	// sub-orchestration.
	ParentInstanceID string `json:"parentInstanceId,omitempty"`
	ParentTaskID     int32  `json:"parentTaskId,omitempty"`
	// Status is the final runtime status of ExecutionCompleted.
	Status RuntimeStatus `json:"status,omitempty"`
	// Reason is the reason of ExecutionTerminated, Suspended, Resumed and
	// Rewound.
	Reason string `json:"reason,omitempty"`
	// NoCascade on ExecutionTerminated leaves the instance's running
	// sub-orchestrations alone (by default they are terminated too).
	NoCascade bool `json:"noCascade,omitempty"`
	// Failure describes TaskFailed, SubOrchestrationInstanceFailed and a
	// failed ExecutionCompleted.
	Failure *FailureDetails `json:"failure,omitempty"`
}

// FailureDetails describes an error raised by guest code or by the host on
// the guest's behalf. Guests report failures to ImportComplete as its JSON.
type FailureDetails struct {
	// Message is the human-readable error message.
	Message string `json:"message"`
	// Type classifies the error, e.g. "ActivityFailed", "Nondeterminism",
	// "Panic", "Timeout", or a guest-defined type name.
	Type string `json:"type,omitempty"`
	// Code is a stable error code such as "DW1001" for host-detected errors.
	Code string `json:"code,omitempty"`
	// Stack is the guest's stack trace, when it has one.
	Stack string `json:"stack,omitempty"`
	// Source names where the failure came from, e.g. "activity E1_SayHello
	// (task 2)". Set by the host when it propagates a failure.
	Source string `json:"source,omitempty"`
	// Inner is the failure that caused this one, if any.
	Inner *FailureDetails `json:"inner,omitempty"`
	// Details is application data about the failure (JSON), set by the
	// guest (the Go SDK's ApplicationError.Details); the host passes it on
	// unchanged.
	Details json.RawMessage `json:"details,omitempty"`
	// NonRetryable marks a failure that retrying cannot fix: SDK retry
	// policies do not retry it. Set by the guest; the host passes it on.
	NonRetryable bool `json:"nonRetryable,omitempty"`
}

// CodeInvalidJSON is the failure code of InvalidJSONFailure.
const CodeInvalidJSON = "DW2005"

// InvalidJSONFailure is the failure of a payload a guest passed that is not
// valid JSON (type InvalidJSON, code CodeInvalidJSON), as the host and the
// SDK's test host report it; what names the payload.
func InvalidJSONFailure(what, payload string) *FailureDetails {
	return &FailureDetails{Type: FailureInvalidJSON, Code: CodeInvalidJSON,
		Message: fmt.Sprintf("%s is not valid JSON: %.60q", what, payload)}
}

// Error renders the failure as "Type: Message".
func (f *FailureDetails) Error() string {
	if f == nil {
		return "<nil failure>"
	}
	s := f.Message
	if f.Code != "" {
		s = "[" + f.Code + "] " + s
	}
	if f.Type != "" {
		s = f.Type + ": " + s
	}
	return s
}

// DecodeFailure parses FailureDetails JSON as produced by a guest. A payload
// that is not a JSON object is kept whole as the message, so no guest output
// is lost.
func DecodeFailure(b []byte) *FailureDetails {
	var f FailureDetails
	if err := json.Unmarshal(b, &f); err != nil || f.Message == "" && f.Type == "" {
		return &FailureDetails{Message: string(b), Type: FailureGuestError}
	}
	return &f
}

// EncodeEvent returns the JSON encoding of e used in storage: the bytes
// json.Marshal(e) returns, written without reflection (every commit encodes
// its events; this is about five times faster).
func EncodeEvent(e *HistoryEvent) []byte {
	return AppendEvent(make([]byte, 0, 96+len(e.Name)+len(e.Input)+len(e.Result)+len(e.InstanceID)+len(e.ExecutionID)), e)
}

// AppendEvent appends EncodeEvent(e) to b.
func AppendEvent(b []byte, e *HistoryEvent) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, int64(e.EventID), 10)
	b = append(b, `,"type":`...)
	b = AppendJSONString(b, string(e.Type))
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, e.Timestamp, 10)
	b = appendStringField(b, `,"name":`, e.Name)
	b = appendStringField(b, `,"input":`, e.Input)
	b = appendStringField(b, `,"result":`, e.Result)
	if e.TaskScheduledID != 0 {
		b = append(b, `,"taskId":`...)
		b = strconv.AppendInt(b, int64(e.TaskScheduledID), 10)
	}
	if e.FireAt != 0 {
		b = append(b, `,"fireAt":`...)
		b = strconv.AppendInt(b, e.FireAt, 10)
	}
	b = appendStringField(b, `,"instanceId":`, e.InstanceID)
	b = appendStringField(b, `,"executionId":`, e.ExecutionID)
	b = appendStringField(b, `,"parentInstanceId":`, e.ParentInstanceID)
	if e.ParentTaskID != 0 {
		b = append(b, `,"parentTaskId":`...)
		b = strconv.AppendInt(b, int64(e.ParentTaskID), 10)
	}
	b = appendStringField(b, `,"status":`, string(e.Status))
	b = appendStringField(b, `,"reason":`, e.Reason)
	if e.NoCascade {
		b = append(b, `,"noCascade":true`...)
	}
	if e.Failure != nil {
		b = append(b, `,"failure":`...)
		b = appendFailure(b, e.Failure)
	}
	return append(b, '}')
}

func appendFailure(b []byte, f *FailureDetails) []byte {
	b = append(b, `{"message":`...)
	b = AppendJSONString(b, f.Message)
	b = appendStringField(b, `,"type":`, f.Type)
	b = appendStringField(b, `,"code":`, f.Code)
	b = appendStringField(b, `,"stack":`, f.Stack)
	b = appendStringField(b, `,"source":`, f.Source)
	if f.Inner != nil {
		b = append(b, `,"inner":`...)
		b = appendFailure(b, f.Inner)
	}
	if len(f.Details) > 0 {
		// Rare: encoded as json.Marshal does (compacted, HTML-escaped);
		// details that are not JSON are kept as a JSON string.
		d, err := json.Marshal(f.Details)
		if err != nil {
			d = AppendJSONString(nil, string(f.Details))
		}
		b = append(append(b, `,"details":`...), d...)
	}
	if f.NonRetryable {
		b = append(b, `,"nonRetryable":true`...)
	}
	return append(b, '}')
}

// appendStringField appends key and s as an omitempty string field.
func appendStringField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return AppendJSONString(append(b, key...), s)
}

// AppendJSONString appends s as a JSON string exactly as encoding/json writes
// it (HTML characters escaped, invalid UTF-8 replaced, U+2028/U+2029
// escaped).
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// DecodeEvent parses an event written by EncodeEvent. It fails on malformed
// JSON and on unknown event types.
func DecodeEvent(b []byte) (HistoryEvent, error) {
	var e HistoryEvent
	if err := json.Unmarshal(b, &e); err != nil {
		return HistoryEvent{}, fmt.Errorf("decode history event: %w", err)
	}
	if !e.Type.Valid() {
		return HistoryEvent{}, fmt.Errorf("decode history event: unknown event type %q", e.Type)
	}
	return e, nil
}

// RuntimeStatus is an orchestration's runtime status, named as in Durable
// Functions.
type RuntimeStatus string

// Runtime statuses. Their numeric values (Durable Functions' enum) are given by
// RuntimeStatus.Value.
const (
	StatusRunning        RuntimeStatus = "Running"
	StatusCompleted      RuntimeStatus = "Completed"
	StatusContinuedAsNew RuntimeStatus = "ContinuedAsNew"
	StatusFailed         RuntimeStatus = "Failed"
	StatusCanceled       RuntimeStatus = "Canceled"
	StatusTerminated     RuntimeStatus = "Terminated"
	StatusPending        RuntimeStatus = "Pending"
	StatusSuspended      RuntimeStatus = "Suspended"
)

// AllStatuses lists every runtime status in Durable Functions' numeric order.
var AllStatuses = []RuntimeStatus{StatusRunning, StatusCompleted, StatusContinuedAsNew,
	StatusFailed, StatusCanceled, StatusTerminated, StatusPending, StatusSuspended}

// Value returns Durable Functions' numeric value of s (Running=0 …
// Suspended=7), or -1 for an unknown status.
func (s RuntimeStatus) Value() int {
	for i, v := range AllStatuses {
		if v == s {
			return i
		}
	}
	return -1
}

// Terminal reports whether s is a final status (Completed, Failed, Canceled,
// Terminated).
func (s RuntimeStatus) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCanceled || s == StatusTerminated
}

// ParseRuntimeStatus parses a status name case-insensitively, or its numeric
// value ("1" is Completed). The error lists the accepted names.
func ParseRuntimeStatus(s string) (RuntimeStatus, error) {
	t := strings.TrimSpace(s)
	for i, v := range AllStatuses {
		if strings.EqualFold(t, string(v)) || t == fmt.Sprint(i) {
			return v, nil
		}
	}
	names := make([]string, len(AllStatuses))
	for i, v := range AllStatuses {
		names[i] = string(v)
	}
	return "", fmt.Errorf("unknown runtime status %q: accepted are %s (any case) or their numbers 0-7", s, strings.Join(names, ", "))
}
