// Package dfjson is the Durable Functions JSON of instance statuses and
// histories, shared by the CLI and the HTTP API: the field names, time
// formats and event shapes of the Durable Functions extension.
package dfjson

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
)

// StatusPayload is Durable Functions' instance status object, with its keys in
// Durable Functions' order. Every key is always present (null allowed) except
// HistoryEvents, which appears only when requested.
type StatusPayload struct {
	Name            string            `json:"name"`
	InstanceID      string            `json:"instanceId"`
	RuntimeStatus   string            `json:"runtimeStatus"`
	Input           json.RawMessage   `json:"input"`
	CustomStatus    json.RawMessage   `json:"customStatus"`
	Output          json.RawMessage   `json:"output"`
	CreatedTime     string            `json:"createdTime"`
	LastUpdatedTime string            `json:"lastUpdatedTime"`
	HistoryEvents   []json.RawMessage `json:"historyEvents,omitempty"`
}

// StatusOptions select the optional parts of a StatusPayload.
type StatusOptions struct {
	ShowInput         bool
	ShowOutput        bool
	ShowHistory       bool
	ShowHistoryOutput bool
}

// DFTime formats t as Durable Functions does in status payloads:
// yyyy-MM-ddTHH:mm:ssZ in UTC.
func DFTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// jsonValue returns stored JSON text as a JSON value: null when empty, the
// text itself when it is valid JSON, else the text as a JSON string (as
// Durable Functions does for raw reasons and messages).
func jsonValue(s string) json.RawMessage {
	if s == "" {
		return json.RawMessage("null")
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

// FailureText renders a failure as one line: where it came from and why.
func FailureText(f *abi.FailureDetails) string {
	if f == nil {
		return ""
	}
	var b strings.Builder
	if f.Source != "" {
		b.WriteString(f.Source + " failed: ")
	}
	b.WriteString(f.Error())
	if f.Inner != nil {
		b.WriteString(" (caused by " + FailureText(f.Inner) + ")")
	}
	return b.String()
}

// NewStatusPayload builds the status object of st; history is used only with
// ShowHistory.
func NewStatusPayload(st *host.InstanceState, history []abi.HistoryEvent, o StatusOptions) *StatusPayload {
	p := &StatusPayload{Name: st.Name, InstanceID: st.InstanceID, RuntimeStatus: string(st.Status),
		Input: json.RawMessage("null"), CustomStatus: jsonValue(st.CustomStatus), Output: json.RawMessage("null"),
		CreatedTime: DFTime(st.CreatedAt), LastUpdatedTime: DFTime(st.UpdatedAt)}
	if o.ShowInput {
		p.Input = jsonValue(st.Input)
	}
	if o.ShowOutput {
		switch {
		case st.Status == abi.StatusFailed && st.Failure != nil:
			p.Output = jsonValue(FailureText(st.Failure))
		default:
			p.Output = jsonValue(st.Output)
		}
	}
	if o.ShowHistory && st.Status != abi.StatusPending {
		p.HistoryEvents = HistoryPayload(history, o.ShowInput, o.ShowHistoryOutput)
	}
	return p
}

// DFTimestamp formats t with seven fractional digits, as Durable Functions
// does for history event timestamps.
func DFTimestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }

// HistoryPayload converts history to Durable Functions' historyEvents form:
// OrchestratorStarted/Completed removed, scheduling events merged into their
// completions (which gain ScheduledTime and FunctionName), results only with
// showOutput, inputs only with showInput.
func HistoryPayload(history []abi.HistoryEvent, showInput, showOutput bool) []json.RawMessage {
	sched := map[int32]abi.HistoryEvent{}
	for _, e := range history {
		switch e.Type {
		case abi.EventTaskScheduled, abi.EventSubOrchestrationInstanceCreated, abi.EventTimerCreated:
			sched[e.EventID] = e
		}
	}
	var out []json.RawMessage
	for _, e := range history {
		var fields [][2]any
		add := func(k string, v any) { fields = append(fields, [2]any{k, v}) }
		add("EventType", string(e.Type))
		switch e.Type {
		case abi.EventOrchestratorStarted, abi.EventOrchestratorCompleted, abi.EventTaskScheduled, abi.EventSubOrchestrationInstanceCreated:
			continue
		case abi.EventExecutionStarted:
			add("FunctionName", e.Name)
			if showInput {
				add("Input", jsonValue(e.Input))
			}
		case abi.EventExecutionCompleted:
			add("OrchestrationStatus", string(e.Status))
			if showOutput {
				if e.Failure != nil {
					add("Result", FailureText(e.Failure))
				} else {
					add("Result", jsonValue(e.Result))
				}
			}
		case abi.EventTaskCompleted, abi.EventTaskFailed, abi.EventSubOrchestrationInstanceCompleted, abi.EventSubOrchestrationInstanceFailed:
			s := sched[e.TaskScheduledID]
			add("FunctionName", s.Name)
			if s.Type == abi.EventSubOrchestrationInstanceCreated {
				add("InstanceId", s.InstanceID)
			}
			if showInput {
				add("Input", jsonValue(s.Input))
			}
			if e.Failure != nil {
				add("Reason", e.Failure.Message)
				add("Details", FailureText(e.Failure))
			} else if showOutput {
				add("Result", jsonValue(e.Result))
			}
			add("ScheduledTime", DFTimestamp(time.Unix(0, s.Timestamp)))
		case abi.EventTimerCreated, abi.EventTimerFired:
			add("FireAt", DFTimestamp(time.Unix(0, e.FireAt)))
		case abi.EventEventRaised, abi.EventEventSent:
			add("Name", e.Name)
			if e.InstanceID != "" {
				add("InstanceId", e.InstanceID)
			}
			if showInput {
				add("Input", jsonValue(e.Input))
			}
		case abi.EventExecutionTerminated, abi.EventExecutionSuspended, abi.EventExecutionResumed, abi.EventExecutionRewound:
			add("Reason", e.Reason)
		case abi.EventContinueAsNew:
			if showInput {
				add("Input", jsonValue(e.Input))
			}
		}
		add("Timestamp", DFTimestamp(time.Unix(0, e.Timestamp)))
		out = append(out, orderedJSON(fields))
	}
	return out
}

// orderedJSON encodes key/value pairs as a JSON object in the given order.
func orderedJSON(fields [][2]any) json.RawMessage {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f[0])
		v, err := json.Marshal(f[1])
		if err != nil {
			v = []byte(fmt.Sprintf("%q", fmt.Sprint(f[1])))
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return json.RawMessage(b.String())
}
