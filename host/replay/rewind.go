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
// is re-issued. What became of the sub-orchestrations (p.SubOrchestrations)
// is recorded with Record.
func PlanRewind(history []abi.HistoryEvent, reason string, now int64) *RewindPlan {
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
		abi.HistoryEvent{EventID: -1, Type: abi.EventExecutionRewound, Timestamp: now, Reason: reason},
		abi.HistoryEvent{EventID: -1, Type: abi.EventOrchestratorCompleted, Timestamp: now})
	return p
}

// Record adds extra events (completions or failures of sub-orchestrations
// that ended while the instance was failed) to the rewind episode, at its
// time, and drops the sub-orchestrations they complete from
// p.SubOrchestrations.
func (p *RewindPlan) Record(extra ...abi.HistoryEvent) {
	if len(extra) == 0 {
		return
	}
	end := p.History[len(p.History)-1] // the episode's OrchestratorCompleted
	p.History = p.History[:len(p.History)-1]
	completed := map[int32]bool{}
	for _, e := range extra {
		if e.Type == abi.EventSubOrchestrationInstanceCompleted {
			completed[e.TaskScheduledID] = true
		}
		e.EventID, e.Timestamp = -1, end.Timestamp
		p.History = append(p.History, e)
	}
	p.History = append(p.History, end)
	open := p.SubOrchestrations[:0]
	for _, s := range p.SubOrchestrations {
		if !completed[s.EventID] {
			open = append(open, s)
		}
	}
	p.SubOrchestrations = open
}
