// Package invariant checks a task hub's durable state for the invariants the
// runtime promises (see docs/reliability.md): no stuck instance, well-formed
// histories, no pending stream entry that points at a deleted message, no
// undecodable entries. The fault tests run it after every scenario and
// `durablewasm doctor` runs it for operators.
//
// The check reads the hub with many commands while workers may be running, so
// a message can move between two lists while it reads. Problems that can be
// such a transient (an instance that looks stuck) are therefore confirmed by a
// second look (CheckStable) before they are reported.
package invariant

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/redisstore"
)

// Problem is one violated invariant.
type Problem struct {
	// Kind is a stable short name: "stuck", "history", "dangling-pending",
	// "undecodable", "dead-letter", "orphan-message".
	Kind string
	// Partition and Instance locate it (Instance may be "").
	Partition int
	Instance  string
	Detail    string
}

// String renders the problem as one line naming its instance, if any.
func (p Problem) String() string {
	if p.Instance != "" {
		return fmt.Sprintf("%s: partition %d instance %q: %s", p.Kind, p.Partition, p.Instance, p.Detail)
	}
	return fmt.Sprintf("%s: partition %d: %s", p.Kind, p.Partition, p.Detail)
}

// Report is the result of a check.
type Report struct {
	// Instances counts instances by runtime status.
	Instances map[abi.RuntimeStatus]int
	// Waiting lists running instances whose only open work is an external
	// event wait (no queued message, activity, timer or sub-orchestration):
	// legitimate for an orchestration that waits for an event, but what a lost
	// message would look like too. Suspended instances are listed as well.
	Waiting []string
	// Problems are the violated invariants, sorted.
	Problems []Problem
	// Queued counts what is in flight: control messages, activity items,
	// timers and outbox messages.
	Control, Activities, Timers, Outbox int
}

// OK reports whether no invariant is violated.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Total returns the number of instances.
func (r *Report) Total() int {
	n := 0
	for _, c := range r.Instances {
		n += c
	}
	return n
}

// String summarises the report over several lines.
func (r *Report) String() string {
	var b strings.Builder
	var sts []string
	for s, n := range r.Instances {
		sts = append(sts, fmt.Sprintf("%s=%d", s, n))
	}
	sort.Strings(sts)
	fmt.Fprintf(&b, "instances: %d (%s)\n", r.Total(), strings.Join(sts, " "))
	fmt.Fprintf(&b, "in flight: %d control messages, %d activities, %d timers, %d outbox messages\n", r.Control, r.Activities, r.Timers, r.Outbox)
	if len(r.Waiting) > 0 {
		fmt.Fprintf(&b, "waiting for an external event or resume: %d (%s)\n", len(r.Waiting), strings.Join(head(r.Waiting, 10), ", "))
	}
	if len(r.Problems) == 0 {
		b.WriteString("no problems found\n")
	}
	for _, p := range r.Problems {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func head(s []string, n int) []string {
	if len(s) > n {
		return append(append([]string(nil), s[:n]...), "…")
	}
	return s
}

// Check reads every partition of the hub and checks the invariants once.
func Check(ctx context.Context, st *redisstore.Store) (*Report, error) {
	snaps, err := inspectAll(ctx, st)
	if err != nil {
		return nil, err
	}
	c := &checker{ctx: ctx, st: st, byID: map[string]*carriers{}, r: &Report{Instances: map[abi.RuntimeStatus]int{}}}
	for _, s := range snaps {
		c.checkQueues(s)
	}
	if c.r.hasDeadLetters() {
		if err := c.checkQuarantined(); err != nil {
			return nil, err
		}
	}
	for _, s := range snaps {
		for _, id := range s.Instances {
			c.checkInstance(s.Partition, id)
		}
	}
	r := c.r
	sort.Strings(r.Waiting)
	sort.Slice(r.Problems, func(i, j int) bool { return r.Problems[i].String() < r.Problems[j].String() })
	return r, nil
}

// inspectAll reads a snapshot of every partition of the hub, in partition
// order; it fails with the first partition's error.
func inspectAll(ctx context.Context, st *redisstore.Store) ([]*redisstore.PartitionSnapshot, error) {
	n := st.Partitions()
	snaps := make([]*redisstore.PartitionSnapshot, n)
	for p := 0; p < n; p++ {
		s, err := st.InspectPartition(ctx, p)
		if err != nil {
			return nil, err
		}
		snaps[p] = s
	}
	return snaps, nil
}

// carriers are the messages in flight to one instance.
type carriers struct {
	ctl       []host.ControlMessage
	acts      []host.ActivityItem
	timers    []host.TimerItem
	outbox    []host.ControlMessage
	hasCreate bool
}

// checker is one run of Check: the report it builds and the messages in
// flight, by target instance.
type checker struct {
	ctx  context.Context
	st   *redisstore.Store
	r    *Report
	byID map[string]*carriers
}

// get returns the carriers of instance id, creating them.
func (c *checker) get(id string) *carriers {
	cs := c.byID[id]
	if cs == nil {
		cs = &carriers{}
		c.byID[id] = cs
	}
	return cs
}

// checkQueues counts what is in flight in partition snapshot s, files it
// under its target instance and reports the partition's dangling pending
// entries, undecodable entries and dead letters.
func (c *checker) checkQueues(s *redisstore.PartitionSnapshot) {
	r := c.r
	r.Control += len(s.Control)
	r.Activities += len(s.Activities)
	r.Timers += len(s.Timers)
	r.Outbox += len(s.Outbox)
	for _, m := range s.Control {
		c.get(m.InstanceID).ctl = append(c.get(m.InstanceID).ctl, m)
	}
	for _, a := range s.Activities {
		c.get(a.InstanceID).acts = append(c.get(a.InstanceID).acts, a)
	}
	for _, t := range s.Timers {
		c.get(t.Message.InstanceID).timers = append(c.get(t.Message.InstanceID).timers, t)
	}
	for _, o := range s.Outbox {
		cs := c.get(o.Message.InstanceID)
		cs.outbox = append(cs.outbox, o.Message)
		cs.hasCreate = cs.hasCreate || o.Message.Event.Type == abi.EventExecutionStarted
	}
	r.Problems = append(r.Problems, danglingPending(s.Partition, "control", s.ControlPending, controlIDs(s.Control))...)
	r.Problems = append(r.Problems, danglingPending(s.Partition, "activity", s.ActivityPending, activityIDs(s.Activities))...)
	for _, u := range s.Undecodable {
		r.Problems = append(r.Problems, Problem{Kind: "undecodable", Partition: s.Partition, Detail: u})
	}
	if s.DeadLetters > 0 {
		r.Problems = append(r.Problems, Problem{Kind: "dead-letter", Partition: s.Partition, Detail: fmt.Sprintf("%d entries in the dead-letter stream (see `durablewasm dead-letters list`)", s.DeadLetters)})
	}
}

// checkQuarantined reports each control message among the first 100 dead
// letters as quarantined; it fails when the dead letters cannot be listed.
func (c *checker) checkQuarantined() error {
	dls, err := c.st.ListDeadLetters(c.ctx, 100)
	if err != nil {
		return err
	}
	for _, d := range dls {
		if d.Kind == host.DeadLetterControl {
			c.r.Problems = append(c.r.Problems, Problem{Kind: "quarantined", Partition: d.Partition, Instance: d.InstanceID,
				Detail: fmt.Sprintf("%s message quarantined as dead letter %d/%s: %s; fix the cause, then `durablewasm dead-letters replay %d/%s` (or `remove`)",
					d.Event, d.Partition, d.ID, d.Reason, d.Partition, d.ID)})
		}
	}
	return nil
}

// checkInstance loads instance id of partition p, counts it by status and
// checks its history; an unfinished instance is checked by checkUnfinished.
// An instance that cannot be loaded is an orphan index entry unless it was
// purged meanwhile.
func (c *checker) checkInstance(p int, id string) {
	r := c.r
	meta, hist, err := c.st.LoadInstance(c.ctx, id)
	if err != nil {
		// Purged between the index read and now, or an index entry
		// without its instance.
		if _, gerr := c.st.GetInstance(c.ctx, id); gerr != nil {
			r.Problems = append(r.Problems, Problem{Kind: "orphan-index", Partition: p, Instance: id, Detail: fmt.Sprintf("in the created index but cannot be loaded: %v", err)})
		}
		return
	}
	r.Instances[meta.Status]++
	for _, d := range CheckHistory(hist) {
		r.Problems = append(r.Problems, Problem{Kind: "history", Partition: p, Instance: id, Detail: d})
	}
	if meta.Status.Terminal() {
		if d := terminalHistory(meta, hist); d != "" {
			r.Problems = append(r.Problems, Problem{Kind: "history", Partition: p, Instance: id, Detail: d})
		}
		return
	}
	c.checkUnfinished(p, id, meta, hist)
}

// checkUnfinished checks an instance that is not finished: it is fine with
// a message queued to step it; otherwise a suspended instance, or one whose
// only open work is an event wait, is listed as waiting, and one that is
// pending without its start message, or with open work nothing in flight
// can complete, is reported stuck.
func (c *checker) checkUnfinished(p int, id string, meta *host.InstanceState, hist []abi.HistoryEvent) {
	r := c.r
	cs := c.byID[id]
	if cs == nil {
		cs = &carriers{}
	}
	if len(cs.ctl) > 0 || len(cs.outbox) > 0 {
		return // a message will step it
	}
	if meta.Status == abi.StatusSuspended {
		r.Waiting = append(r.Waiting, id)
		return
	}
	if meta.Status == abi.StatusPending || meta.Status == abi.StatusContinuedAsNew {
		r.Problems = append(r.Problems, Problem{Kind: "stuck", Partition: p, Instance: id,
			Detail: fmt.Sprintf("%s with no start message queued", meta.Status)})
		return
	}
	lost, open := openWork(c.ctx, c.st, meta, hist, cs.acts, cs.timers)
	switch {
	case len(lost) > 0:
		r.Problems = append(r.Problems, Problem{Kind: "stuck", Partition: p, Instance: id,
			Detail: "open work with nothing in flight to complete it: " + strings.Join(lost, "; ")})
	case open == 0:
		r.Waiting = append(r.Waiting, id)
	}
}

// CheckStable runs Check until two consecutive runs report the same
// problems (at most tries times) and returns the last report, so that work
// moving between queues while the hub is read is not reported as a problem.
func CheckStable(ctx context.Context, st *redisstore.Store, tries int) (*Report, error) {
	var prev *Report
	for i := 0; i < max(tries, 2); i++ {
		r, err := Check(ctx, st)
		if err != nil {
			return nil, err
		}
		if prev != nil && fmt.Sprint(prev.Problems) == fmt.Sprint(r.Problems) {
			return r, nil
		}
		prev = r
	}
	return prev, nil
}

func controlIDs(ms []host.ControlMessage) map[string]bool {
	out := make(map[string]bool, len(ms))
	for _, m := range ms {
		out[m.ID] = true
	}
	return out
}

func activityIDs(as []host.ActivityItem) map[string]bool {
	out := make(map[string]bool, len(as))
	for _, a := range as {
		out[a.ID] = true
	}
	return out
}

func danglingPending(p int, stream string, pend []redisstore.PendingEntry, present map[string]bool) []Problem {
	var out []Problem
	for _, e := range pend {
		if !present[e.ID] {
			out = append(out, Problem{Kind: "dangling-pending", Partition: p,
				Detail: fmt.Sprintf("%s stream entry %s is pending for %s (%d deliveries) but its message was deleted", stream, e.ID, e.Consumer, e.Deliveries)})
		}
	}
	return out
}

// openWork returns the open tasks of a running instance that nothing in
// flight can complete (lost work), and how many tasks are open in all.
func openWork(ctx context.Context, st client.Store, meta *host.InstanceState, hist []abi.HistoryEvent, acts []host.ActivityItem, timers []host.TimerItem) (lost []string, open int) {
	scheduled := map[int32]abi.HistoryEvent{}
	var order []int32
	for _, ev := range hist {
		switch ev.Type {
		case abi.EventTaskScheduled, abi.EventTimerCreated, abi.EventSubOrchestrationInstanceCreated:
			scheduled[ev.EventID] = ev
			order = append(order, ev.EventID)
		case abi.EventTaskCompleted, abi.EventTaskFailed, abi.EventTimerFired,
			abi.EventSubOrchestrationInstanceCompleted, abi.EventSubOrchestrationInstanceFailed:
			delete(scheduled, ev.TaskScheduledID)
		}
	}
	for _, id := range order {
		ev, ok := scheduled[id]
		if !ok {
			continue
		}
		open++
		switch ev.Type {
		case abi.EventTaskScheduled:
			found := false
			for _, a := range acts {
				found = found || a.TaskID == id && (a.ExecutionID == "" || a.ExecutionID == meta.ExecutionID)
			}
			if !found {
				lost = append(lost, fmt.Sprintf("activity %s (task %d) has no work item", ev.Name, id))
			}
		case abi.EventTimerCreated:
			found := false
			for _, t := range timers {
				found = found || t.Message.Event.TaskScheduledID == id
			}
			if !found {
				lost = append(lost, fmt.Sprintf("timer %d has no entry in the timer set", id))
			}
		case abi.EventSubOrchestrationInstanceCreated:
			child, err := st.GetInstance(ctx, ev.InstanceID)
			if err != nil {
				lost = append(lost, fmt.Sprintf("sub-orchestration %s (task %d) does not exist and no message creates it: %v", ev.InstanceID, id, err))
			} else if child.Status.Terminal() {
				lost = append(lost, fmt.Sprintf("sub-orchestration %s (task %d) is %s but its result is not queued", ev.InstanceID, id, child.Status))
			}
		}
	}
	return lost, open
}

// CheckHistory checks that one generation's history is well formed: task ids
// of scheduled work increase, each completion matches one scheduled task of
// its kind, at most one completion per task, at most one ExecutionStarted,
// and at most one ExecutionCompleted, followed by nothing but
// OrchestratorCompleted. It returns one line per violation.
func CheckHistory(hist []abi.HistoryEvent) []string {
	var out []string
	kinds := map[int32]abi.EventType{}
	done := map[int32]int{}
	last := int32(-1)
	started, completed := 0, -1
	for i, ev := range hist {
		if completed >= 0 && ev.Type != abi.EventOrchestratorCompleted {
			out = append(out, fmt.Sprintf("event %d (%s) after ExecutionCompleted at %d", i, ev.Type, completed))
		}
		switch ev.Type {
		case abi.EventExecutionStarted:
			started++
			if started > 1 {
				out = append(out, fmt.Sprintf("event %d: a second ExecutionStarted", i))
			}
		case abi.EventExecutionCompleted:
			if completed >= 0 {
				out = append(out, fmt.Sprintf("event %d: a second ExecutionCompleted (first at %d)", i, completed))
			}
			completed = i
		case abi.EventTaskScheduled, abi.EventTimerCreated, abi.EventSubOrchestrationInstanceCreated:
			if ev.EventID <= last {
				out = append(out, fmt.Sprintf("event %d: %s has task id %d, not above the previous %d", i, ev.Type, ev.EventID, last))
			}
			if _, dup := kinds[ev.EventID]; dup {
				out = append(out, fmt.Sprintf("event %d: task id %d scheduled twice", i, ev.EventID))
			}
			kinds[ev.EventID] = ev.Type
			last = max(last, ev.EventID)
		case abi.EventTaskCompleted, abi.EventTaskFailed, abi.EventTimerFired,
			abi.EventSubOrchestrationInstanceCompleted, abi.EventSubOrchestrationInstanceFailed:
			want := map[abi.EventType]abi.EventType{
				abi.EventTaskCompleted: abi.EventTaskScheduled, abi.EventTaskFailed: abi.EventTaskScheduled,
				abi.EventTimerFired:                        abi.EventTimerCreated,
				abi.EventSubOrchestrationInstanceCompleted: abi.EventSubOrchestrationInstanceCreated,
				abi.EventSubOrchestrationInstanceFailed:    abi.EventSubOrchestrationInstanceCreated,
			}[ev.Type]
			k, ok := kinds[ev.TaskScheduledID]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("event %d: %s for task %d, which was never scheduled", i, ev.Type, ev.TaskScheduledID))
			case k != want:
				out = append(out, fmt.Sprintf("event %d: %s for task %d, which is a %s", i, ev.Type, ev.TaskScheduledID, k))
			}
			done[ev.TaskScheduledID]++
			if done[ev.TaskScheduledID] == 2 {
				out = append(out, fmt.Sprintf("event %d: a second completion (%s) of task %d", i, ev.Type, ev.TaskScheduledID))
			}
		}
	}
	return out
}

// terminalHistory checks that a finished instance's history ends its
// generation with ExecutionCompleted carrying the instance's status.
func terminalHistory(meta *host.InstanceState, hist []abi.HistoryEvent) string {
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].Type == abi.EventExecutionCompleted {
			return ""
		}
	}
	if len(hist) == 0 && meta.Status == abi.StatusTerminated {
		return "" // terminated before it ever ran
	}
	return fmt.Sprintf("status %s but no ExecutionCompleted in its %d-event history", meta.Status, len(hist))
}

// hasDeadLetters reports whether a dead-letter problem was found.
func (r *Report) hasDeadLetters() bool {
	for _, p := range r.Problems {
		if p.Kind == "dead-letter" {
			return true
		}
	}
	return false
}
