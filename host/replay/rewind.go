package replay

import "github.com/durablewasm/durablewasm/abi"

// RewindPlan is how to put a failed orchestration back to running: its
// rewritten history and the work to re-issue.
type RewindPlan struct {
	// History is the generation's history without the final failure and
	// without the failures of activities and sub-orchestrations, followed by
	// a new episode recording the rewind.
	History []abi.HistoryEvent
	// Activities are the TaskScheduled events whose activities must run
	// again (they failed, or their result was lost while the instance was
	// failed).
	Activities []abi.HistoryEvent
	// Timers are the TimerCreated events that have not fired.
	Timers []abi.HistoryEvent
	// SubOrchestrations are the SubOrchestrationInstanceCreated events that
	// have no completion: failed ones, and ones still running or whose
	// completion arrived while the parent was failed.
	SubOrchestrations []abi.HistoryEvent
}

// PlanRewind computes the rewind of a failed generation at time now. Every
// successful result stays in history; only what failed (or never completed)
// is re-issued. extra events (e.g. completions of sub-orchestrations that
// finished while the parent was failed) are recorded in the rewind episode.
func PlanRewind(history []abi.HistoryEvent, reason string, now int64, extra ...abi.HistoryEvent) *RewindPlan {
	lastSched := -1
	for i, e := range history {
		if kindOf(e.Type) != 0 {
			lastSched = i
		}
	}
	done := map[int32]bool{}
	for i, e := range history {
		switch e.Type {
		case abi.EventTaskCompleted, abi.EventTimerFired, abi.EventSubOrchestrationInstanceCompleted:
			done[e.TaskScheduledID] = true
		case abi.EventTaskFailed, abi.EventSubOrchestrationInstanceFailed:
			done[e.TaskScheduledID] = i < lastSched
		}
	}
	for _, e := range extra {
		if e.Type == abi.EventSubOrchestrationInstanceCompleted || e.Type == abi.EventTaskCompleted {
			done[e.TaskScheduledID] = true
		}
	}
	// Failures the orchestration handled (it scheduled more work after
	// them, e.g. a retry) stay; the ones after its last scheduling call are
	// what made it fail, and are removed so their tasks run again.
	p := &RewindPlan{}
	for i, e := range history {
		switch e.Type {
		case abi.EventExecutionCompleted:
			continue
		case abi.EventTaskFailed, abi.EventSubOrchestrationInstanceFailed:
			if i > lastSched {
				continue
			}
		case abi.EventTaskScheduled:
			if !done[e.EventID] {
				p.Activities = append(p.Activities, e)
			}
		case abi.EventTimerCreated:
			if !done[e.EventID] {
				p.Timers = append(p.Timers, e)
			}
		case abi.EventSubOrchestrationInstanceCreated:
			if !done[e.EventID] {
				p.SubOrchestrations = append(p.SubOrchestrations, e)
			}
		}
		p.History = append(p.History, e)
	}
	p.History = append(p.History, abi.HistoryEvent{EventID: -1, Type: abi.EventOrchestratorStarted, Timestamp: now},
		abi.HistoryEvent{EventID: -1, Type: abi.EventExecutionRewound, Timestamp: now, Reason: reason})
	for _, e := range extra {
		e.EventID, e.Timestamp = -1, now
		p.History = append(p.History, e)
	}
	p.History = append(p.History, abi.HistoryEvent{EventID: -1, Type: abi.EventOrchestratorCompleted, Timestamp: now})
	return p
}
