package decide

import (
	"fmt"
	"strconv"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
)

// The decisions of a step, without I/O: given an instance's state, what its
// replayed Generation did in the step (a replay.StepResult) and an
// environment (the step's time, an id source, the partition count, the
// module's limits), decide returns the complete commit that applies the
// step: the new events and instance state, the activities, timers, local
// messages and outbox messages with their de-dup ids, ContinueAsNew's
// restart, a terminate's cascade to sub-orchestrations and a
// sub-orchestration's completion message to its parent. The worker reads,
// runs the guest, calls decide and writes what it returns.

// De-dup ids of outbox messages. Each names the sending Generation and what
// the message is, so that a redelivered outbox entry is recognised.

// taskMessageID is the id of the message a task of a Generation sends: the
// start of a sub-orchestration, or an event sent to another instance.
func taskMessageID(instance, execution string, eventID int32) string {
	return instance + "/" + execution + "/" + strconv.FormatInt(int64(eventID), 10)
}

// terminateMessageID is the id of a terminate cascaded to child.
func terminateMessageID(instance, execution, child string) string {
	return instance + "/" + execution + "/terminate/" + child
}

// completionMessageID is the id of a sub-orchestration's completion sent to
// its parent. The history length makes it unique per completion: a rewound
// child completes again under a new id.
func completionMessageID(instance, execution string, historyLen int64) string {
	return fmt.Sprintf("%s/%s/done/%d", instance, execution, historyLen)
}

// rewindMessageID is the id of a rewind cascaded to a failed child.
func rewindMessageID(instance, execution string, at int64, child string) string {
	return fmt.Sprintf("%s/%s/rewind/%d/%s", instance, execution, at, child)
}

// Env is everything a Decision needs from outside.
type Env struct {
	// Now is the step's time.
	Now time.Time
	// NewID returns a new random id (commit ids, execution ids).
	NewID func() string
	// Partitions is the hub's partition count.
	Partitions int
	// Limits are the module's limits.
	Limits replay.Limits
}

// Generation is what decide reads of a replayed Generation.
type Generation struct {
	Started, Suspended       bool
	Name, Input, ExecutionID string
	ParentID                 string
	ParentTask               int32
	CustomStatus             string
	CustomStatusSet          bool
	HistoryLen               int
	OpenSubOrchestrations    []string
}

// GenerationOf reads what decide needs of s after the step that gave res.
// The open sub-orchestrations are listed only when res terminates the
// Generation with a cascade (the only Decision that needs them).
func GenerationOf(s *replay.State, res *replay.StepResult) Generation {
	g := Generation{Started: s.Started(), Suspended: s.Suspended(), Name: s.Name, Input: s.Input,
		ExecutionID: s.ExecutionID, ParentID: s.ParentID, ParentTask: s.ParentTask, HistoryLen: s.HistoryLen()}
	g.CustomStatus, g.CustomStatusSet = s.CustomStatus()
	if o := res.Outcome; o != nil && o.Status == abi.StatusTerminated && !o.NoCascade {
		g.OpenSubOrchestrations = s.OpenSubOrchestrations()
	}
	return g
}

// Decision is the record of a step's effects.
type Decision struct {
	// Commit applies the step; Commit.State is the instance's new state.
	Commit host.Commit
	// HistoryWarning: the step took the history past 80 % of its limit.
	HistoryWarning bool
}

// decide turns a step's result into the commit that applies it. meta is the
// instance's state before the step; the returned commit's State is its state
// after. It does no I/O.
func Decide(env Env, p int, epoch int64, id string, meta host.InstanceState, g Generation, res *replay.StepResult) Decision {
	now := env.Now.UTC()
	m := meta
	c := host.Commit{Partition: p, Epoch: epoch, CommitID: env.NewID(), NewEvents: res.NewEvents}
	var d Decision
	if len(res.NewEvents) > 0 {
		m.UpdatedAt = now
	}
	if g.Started {
		m.Name, m.Input, m.ExecutionID = g.Name, g.Input, g.ExecutionID
		m.ParentInstanceID, m.ParentTaskID = g.ParentID, g.ParentTask
		m.Status = abi.StatusRunning
		if g.Suspended {
			m.Status = abi.StatusSuspended
		}
	}
	if g.CustomStatusSet {
		m.CustomStatus = g.CustomStatus
	}
	before := m.HistoryLength
	m.HistoryLength = int64(g.HistoryLen)
	if limit := int64(env.Limits.MaxHistoryEvents); limit > 0 && before < limit*8/10 && m.HistoryLength >= limit*8/10 {
		d.HistoryWarning = true
	}
	for _, a := range res.Actions {
		decideAction(env, &c, id, &m, g, a.Event)
	}
	if o := res.Outcome; o != nil {
		decideOutcome(env, &c, id, &m, g, o)
	}
	c.State = m
	d.Commit = c
	return d
}

// decideAction adds what scheduling ev (a new history event of the step)
// makes happen: an activity item, a timer, a sub-orchestration start or an
// event for another instance.
func decideAction(env Env, c *host.Commit, id string, m *host.InstanceState, g Generation, ev abi.HistoryEvent) {
	now := env.Now.UTC()
	switch ev.Type {
	case abi.EventTaskScheduled:
		c.Activities = append(c.Activities, host.ActivityItem{Partition: c.Partition, InstanceID: id, ExecutionID: g.ExecutionID,
			TaskID: ev.EventID, Name: ev.Name, Input: ev.Input, Digest: m.Digest})
	case abi.EventTimerCreated:
		c.Timers = append(c.Timers, timerFor(id, g.ExecutionID, ev.EventID, ev.FireAt))
	case abi.EventSubOrchestrationInstanceCreated:
		if m.Depth+1 > host.MaxNestingDepth {
			// Not created: the orchestration sees the sub-orchestration
			// fail (an orchestrator that starts itself without end stops
			// here instead of creating instances forever).
			c.Local = append(c.Local, host.ControlMessage{InstanceID: id, ExecutionID: g.ExecutionID, Event: abi.HistoryEvent{EventID: -1,
				Type: abi.EventSubOrchestrationInstanceFailed, Timestamp: now.UnixNano(), TaskScheduledID: ev.EventID,
				Failure: &abi.FailureDetails{Type: abi.FailureLimitExceeded, Code: replay.CodeLimit, Source: fmt.Sprintf("sub-orchestration %s (%s)", ev.Name, ev.InstanceID),
					Message: fmt.Sprintf("sub-orchestration %s was not started: it would nest %d deep, over the limit of %d (does an orchestrator start itself without end?)",
						ev.InstanceID, m.Depth+1, host.MaxNestingDepth)}}})
			return
		}
		execID := env.NewID()
		child := &host.InstanceState{InstanceID: ev.InstanceID, Name: ev.Name, ExecutionID: execID, Status: abi.StatusPending,
			Input: ev.Input, CreatedAt: now, UpdatedAt: now, App: m.App, Digest: m.Digest,
			ParentInstanceID: id, ParentTaskID: ev.EventID, Depth: m.Depth + 1}
		c.Outbox = append(c.Outbox, host.OutboxMessage{Partition: host.PartitionFor(ev.InstanceID, env.Partitions), Create: child,
			Message: host.ControlMessage{InstanceID: ev.InstanceID, ExecutionID: execID, MessageID: taskMessageID(id, g.ExecutionID, ev.EventID),
				Fresh: &host.FreshInstance{App: child.App, Digest: child.Digest, CreatedAt: now, Depth: child.Depth},
				Event: abi.HistoryEvent{EventID: -1, Type: abi.EventExecutionStarted, Timestamp: now.UnixNano(), Name: ev.Name,
					Input: ev.Input, InstanceID: ev.InstanceID, ExecutionID: execID, ParentInstanceID: id, ParentTaskID: ev.EventID}}})
	case abi.EventEventSent:
		c.Outbox = append(c.Outbox, host.OutboxMessage{Partition: host.PartitionFor(ev.InstanceID, env.Partitions),
			Message: host.ControlMessage{InstanceID: ev.InstanceID, MessageID: taskMessageID(id, g.ExecutionID, ev.EventID),
				Event: abi.HistoryEvent{EventID: -1, Type: abi.EventEventRaised, Timestamp: now.UnixNano(), Name: ev.Name, Input: ev.Input}}})
	}
}

// timerFor is the durable timer of task eventID firing at fireAt (unix ns).
func timerFor(id, execution string, eventID int32, fireAt int64) host.TimerItem {
	return host.TimerItem{FireAt: time.Unix(0, fireAt).UTC(), Message: host.ControlMessage{InstanceID: id, ExecutionID: execution,
		Event: abi.HistoryEvent{EventID: -1, Type: abi.EventTimerFired, TaskScheduledID: eventID, FireAt: fireAt}}}
}

// decideOutcome applies the end of a Generation: ContinueAsNew starts the
// next one (carrying events if asked); any other end records the status,
// cascades a terminate to open sub-orchestrations unless told not to, and
// tells a parent.
func decideOutcome(env Env, c *host.Commit, id string, m *host.InstanceState, g Generation, o *replay.Outcome) {
	now := env.Now.UTC()
	m.UpdatedAt = now
	if o.Status == abi.StatusContinuedAsNew {
		execID := env.NewID()
		m.Status, m.Input, m.Output, m.Failure = abi.StatusContinuedAsNew, o.NewInput, "", nil
		m.ExecutionID = execID
		// The new Generation's history starts with the carried events, so
		// they stay ahead of events that arrive later.
		c.ResetHistory, c.NewEvents = true, nil
		if len(o.Carried) > 0 {
			c.NewEvents = append(c.NewEvents, abi.HistoryEvent{EventID: -1, Type: abi.EventOrchestratorStarted, Timestamp: now.UnixNano()})
			for _, ev := range o.Carried {
				ev.Timestamp = now.UnixNano()
				c.NewEvents = append(c.NewEvents, ev)
			}
			c.NewEvents = append(c.NewEvents, abi.HistoryEvent{EventID: -1, Type: abi.EventOrchestratorCompleted, Timestamp: now.UnixNano()})
		}
		m.HistoryLength = int64(len(c.NewEvents))
		c.Local = append(c.Local, host.ControlMessage{InstanceID: id, ExecutionID: execID,
			Event: abi.HistoryEvent{EventID: -1, Type: abi.EventExecutionStarted, Timestamp: now.UnixNano(), Name: g.Name,
				Input: o.NewInput, InstanceID: id, ExecutionID: execID, ParentInstanceID: g.ParentID, ParentTaskID: g.ParentTask}})
		return
	}
	m.Status, m.Output, m.Failure = o.Status, o.Output, o.Failure
	if o.Status == abi.StatusTerminated && !o.NoCascade {
		for _, child := range g.OpenSubOrchestrations {
			c.Outbox = append(c.Outbox, host.OutboxMessage{Partition: host.PartitionFor(child, env.Partitions), Message: host.ControlMessage{InstanceID: child,
				MessageID: terminateMessageID(id, g.ExecutionID, child),
				Event: abi.HistoryEvent{EventID: -1, Type: abi.EventExecutionTerminated, Timestamp: now.UnixNano(),
					Reason: fmt.Sprintf("parent %s was terminated: %s", id, o.Output)}}})
		}
	}
	if g.ParentID != "" {
		c.Outbox = append(c.Outbox, ParentCompletion(env, id, g.Name, g.ExecutionID, g.ParentID, g.ParentTask, int64(g.HistoryLen), o.Status, o.Output, o.Failure))
	}
}

// Fail is the commit that fails instance st (not finished) with f without
// running its orchestrator: the history records the end of the generation in
// an episode of its own, and a parent is told. The worker uses it for an
// instance whose messages cannot be processed (quarantine).
func Fail(env Env, p int, epoch int64, st host.InstanceState, f *abi.FailureDetails) host.Commit {
	now := env.Now.UTC()
	c := host.Commit{Partition: p, Epoch: epoch, CommitID: env.NewID(), State: st,
		NewEvents: []abi.HistoryEvent{
			{EventID: -1, Type: abi.EventOrchestratorStarted, Timestamp: now.UnixNano()},
			{EventID: -1, Type: abi.EventExecutionCompleted, Timestamp: now.UnixNano(), Status: abi.StatusFailed, Failure: f},
			{EventID: -1, Type: abi.EventOrchestratorCompleted, Timestamp: now.UnixNano()},
		}}
	c.State.Status, c.State.Failure, c.State.Output, c.State.UpdatedAt = abi.StatusFailed, f, "", now
	c.State.HistoryLength += int64(len(c.NewEvents))
	if st.ParentInstanceID != "" {
		c.Outbox = append(c.Outbox, ParentCompletion(env, st.InstanceID, st.Name, st.ExecutionID, st.ParentInstanceID, st.ParentTaskID,
			c.State.HistoryLength, abi.StatusFailed, "", f))
	}
	return c
}

// ParentCompletion is the message that tells parent that its
// sub-orchestration id (named name, of generation execution) ended with
// status, output and failure.
func ParentCompletion(env Env, id, name, execution, parent string, parentTask int32, historyLen int64, status abi.RuntimeStatus, output string, f *abi.FailureDetails) host.OutboxMessage {
	now := env.Now.UTC()
	ev := abi.HistoryEvent{EventID: -1, Type: abi.EventSubOrchestrationInstanceCompleted, Timestamp: now.UnixNano(),
		TaskScheduledID: parentTask, Result: output}
	if status != abi.StatusCompleted {
		if f == nil {
			f = childEndedFailure(id, status, output)
		}
		ev.Type, ev.Result = abi.EventSubOrchestrationInstanceFailed, ""
		ev.Failure = &abi.FailureDetails{Type: f.Type, Message: f.Message, Code: f.Code, Stack: f.Stack,
			Source: fmt.Sprintf("sub-orchestration %s (%s)", name, id), Inner: f.Inner}
	}
	return host.OutboxMessage{Partition: host.PartitionFor(parent, env.Partitions),
		Message: host.ControlMessage{InstanceID: parent, MessageID: completionMessageID(id, execution, historyLen), Event: ev}}
}

// childEndedFailure is the failure a parent sees for sub-orchestration id
// that ended with status (Terminated, …) without failure details.
func childEndedFailure(id string, status abi.RuntimeStatus, output string) *abi.FailureDetails {
	return &abi.FailureDetails{Type: abi.FailureSubOrchestrationPrefix + string(status),
		Message: fmt.Sprintf("sub-orchestration %s was %s: %s", id, status, output)}
}

// rewindChildren decides what a rewind does about the rewound instance's
// sub-orchestrations without a completion in history (subs, from
// replay.PlanRewind), given each one's current state (children[i], nil when
// it no longer exists): a completed child's result and an ended child's
// failure are recorded (extra events for the rewind episode); a failed
// child is rewound too (rewind).
func RewindChildren(subs []abi.HistoryEvent, children []*host.InstanceState) (extra []abi.HistoryEvent, rewind []string) {
	for i, sub := range subs {
		child := children[i]
		switch {
		case child == nil:
			extra = append(extra, abi.HistoryEvent{Type: abi.EventSubOrchestrationInstanceFailed, TaskScheduledID: sub.EventID,
				Failure: &abi.FailureDetails{Type: abi.FailureSubOrchestrationMissing, Message: fmt.Sprintf("sub-orchestration %s no longer exists (purged?)", sub.InstanceID)}})
		case child.Status == abi.StatusCompleted:
			extra = append(extra, abi.HistoryEvent{Type: abi.EventSubOrchestrationInstanceCompleted, TaskScheduledID: sub.EventID, Result: child.Output})
		case child.Status == abi.StatusFailed:
			rewind = append(rewind, sub.InstanceID)
		case child.Status.Terminal():
			extra = append(extra, abi.HistoryEvent{Type: abi.EventSubOrchestrationInstanceFailed, TaskScheduledID: sub.EventID,
				Failure: childEndedFailure(sub.InstanceID, child.Status, child.Output)})
		}
	}
	return extra, rewind
}

// decideRewind is decide for the step that rewinds an instance: the history
// is replaced by the plan's (and the step's new events), the plan's
// activities and timers are issued again, and failed children are rewound.
func DecideRewind(env Env, p int, epoch int64, id string, meta host.InstanceState, g Generation, res *replay.StepResult,
	plan *replay.RewindPlan, rewind []string, reason string) Decision {
	d := Decide(env, p, epoch, id, meta, g, res)
	c := &d.Commit
	c.ResetHistory = true
	c.NewEvents = append(append([]abi.HistoryEvent(nil), plan.History...), res.NewEvents...)
	c.State.HistoryLength = int64(len(c.NewEvents))
	for _, a := range plan.Activities {
		c.Activities = append(c.Activities, host.ActivityItem{Partition: p, InstanceID: id, ExecutionID: g.ExecutionID,
			TaskID: a.EventID, Name: a.Name, Input: a.Input, Digest: meta.Digest})
	}
	for _, t := range plan.Timers {
		c.Timers = append(c.Timers, timerFor(id, g.ExecutionID, t.EventID, t.FireAt))
	}
	now := env.Now.UnixNano()
	for _, child := range rewind {
		c.Outbox = append(c.Outbox, host.OutboxMessage{Partition: host.PartitionFor(child, env.Partitions), Message: host.ControlMessage{InstanceID: child,
			MessageID: rewindMessageID(id, g.ExecutionID, now, child),
			Event:     abi.HistoryEvent{EventID: -1, Type: abi.EventExecutionRewound, Timestamp: now, Reason: "parent " + id + " rewound: " + reason}}})
	}
	return d
}
