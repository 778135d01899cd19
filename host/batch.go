package host

// Batches: the messages one read returns are grouped by instance, each
// group is stepped (step.go), and all the steps' commits go to the store in
// one pipelined round trip; failures count toward quarantine.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/durablewasm/durablewasm/abi"
)

type group struct {
	id   string
	msgs []ControlMessage
	// pre, when set, is the instance as read by the batch's LoadInstances,
	// or as assumed from a fresh start message (then fresh is its
	// execution id).
	pre   *LoadedInstance
	fresh string
}

// processBatch steps every instance that has messages in msgs and commits
// all steps in one pipelined round trip. It returns the earliest new timer.
// local allows local activities; it is false for messages that were
// pending before (claimed after a crash, a takeover or a failed batch):
// their activities go through the activity stream, whose delivery count
// dead-letters an activity that keeps taking its worker down.
func (w *Worker) processBatch(ctx context.Context, p int, epoch int64, msgs []ControlMessage, local bool) (time.Time, error) {
	// Elapsed real time bounds the batch's local activities (a budget of
	// work, not a point on the orchestrations' clock).
	started := time.Now()
	var groups []*group
	byID := map[string]*group{}
	for _, m := range msgs {
		g := byID[m.InstanceID]
		if g == nil {
			g = &group{id: m.InstanceID}
			byID[m.InstanceID] = g
			groups = append(groups, g)
		}
		g.msgs = append(g.msgs, m)
	}
	w.preload(ctx, groups)
	var commits []Commit
	var entries []*warm
	var drops []string
	var earliest time.Time
	var firstErr error
	var failures []groupFailure
	for _, g := range groups {
		c, e, err := w.step(ctx, p, epoch, g)
		if err != nil {
			w.log.Warn("step failed", "instanceId", g.id, "err", err)
			if firstErr == nil {
				firstErr = err
			}
			failures = append(failures, groupFailure{g, err})
			continue
		}
		if c == nil {
			for _, m := range g.msgs {
				drops = append(drops, m.ID)
			}
			continue
		}
		commits = append(commits, *c)
		entries = append(entries, e)
	}
	if len(commits) > 0 && local && w.localActivitiesEnabled() {
		w.runLocalActivities(ctx, p, epoch, commits, entries, started)
	}
	for i := range commits {
		for _, t := range commits[i].Timers {
			if earliest.IsZero() || t.FireAt.Before(earliest) {
				earliest = t.FireAt
			}
		}
	}
	if len(drops) > 0 {
		if err := w.store.AckControl(ctx, p, epoch, drops); err != nil {
			if errors.Is(err, ErrStaleEpoch) {
				return earliest, errLeaseLost
			}
			firstErr = err
		}
	}
	if len(commits) == 0 {
		return earliest, w.settleFailures(ctx, p, epoch, groups, failures, firstErr)
	}
	errs, err := w.store.Commit(ctx, commits)
	outbox, reload := false, false
	for i, e := range entries {
		cerr := err
		if cerr == nil {
			cerr = errs[i]
		}
		if cerr != nil {
			// The warm state ran ahead of what is stored: rebuild it later.
			w.cache.remove(e)
			if errors.Is(cerr, ErrStaleEpoch) {
				return earliest, errLeaseLost
			}
			if errors.Is(cerr, ErrStateChanged) {
				// Its first step assumed a fresh instance that was
				// terminated, purged or replaced meanwhile: read it next
				// time (its messages are still pending).
				w.log.Debug("instance changed before its first step; reading it", "instanceId", e.id)
				w.distrust(e.id)
				reload = true
				continue
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("commit %s: %w", e.id, cerr)
			}
			if err == nil {
				failures = append(failures, groupFailure{byID[e.id], fmt.Errorf("commit: %w", cerr)})
			}
			continue
		}
		outbox = outbox || len(commits[i].Outbox) > 0
		if e.stale || e.state.Finished() {
			w.cache.remove(e)
		} else {
			w.cache.put(e)
		}
	}
	if outbox {
		if _, err := w.store.DeliverOutbox(ctx, p, epoch); err != nil {
			w.log.Warn("deliver outbox", "partition", p, "err", err)
		}
	}
	if firstErr == nil && reload {
		firstErr = errReload
	}
	return earliest, w.settleFailures(ctx, p, epoch, groups, failures, firstErr)
}

// groupFailure is a group whose step or commit failed, and why.
type groupFailure struct {
	g   *group
	err error
}

// settleFailures counts the batch's failures toward quarantine (which may
// park a group's messages) and forgets the counts of the groups that went
// through. It returns errLeaseLost if the lease moved on, else batchErr.
func (w *Worker) settleFailures(ctx context.Context, p int, epoch int64, groups []*group, failures []groupFailure, batchErr error) error {
	if len(failures) == 0 && w.failing.empty() {
		return batchErr
	}
	bad := map[*group]bool{}
	for _, f := range failures {
		bad[f.g] = true
		if err := w.failed(ctx, p, epoch, f.g, f.err); err != nil {
			return err
		}
	}
	for _, g := range groups {
		if !bad[g] {
			w.failing.forget(p, g.msgs)
		}
	}
	return batchErr
}

// errReload asks the partition loop to re-read its pending messages (a step
// must be redone after reading its instance).
var errReload = errors.New("re-read pending messages")

// distrust makes the next step of id read the instance even for a fresh
// start message; trust undoes it once it was read.
func (w *Worker) distrust(id string) { w.noFresh.Store(id, struct{}{}) }
func (w *Worker) trust(id string)    { w.noFresh.Delete(id) }
func (w *Worker) distrusted(id string) bool {
	_, ok := w.noFresh.Load(id)
	return ok
}

// preload reads, in one round trip, the instances of groups that are not
// warm and will be loaded by step.
func (w *Worker) preload(ctx context.Context, groups []*group) {
	var ids []string
	var cold []*group
	for _, g := range groups {
		if w.cache.has(g.id) || len(g.msgs) == 0 {
			continue
		}
		if m := g.msgs[0]; len(g.msgs) == 1 && m.Fresh != nil && m.Event.Type == abi.EventExecutionStarted &&
			m.ExecutionID != "" && m.Event.ExecutionID == m.ExecutionID && !w.distrusted(g.id) {
			// A new instance: what its creator stored is in the message.
			// The commit checks that it is still that Pending instance.
			ev := m.Event
			g.pre = &LoadedInstance{State: &InstanceState{InstanceID: g.id, Name: ev.Name, ExecutionID: m.ExecutionID,
				Status: abi.StatusPending, Input: ev.Input, CreatedAt: m.Fresh.CreatedAt, UpdatedAt: m.Fresh.CreatedAt,
				App: m.Fresh.App, Digest: m.Fresh.Digest, ParentInstanceID: ev.ParentInstanceID, ParentTaskID: ev.ParentTaskID,
				Depth: m.Fresh.Depth}}
			g.fresh = m.ExecutionID
			continue
		}
		special := false
		for _, m := range g.msgs {
			special = special || m.Event.Type == abi.EventExecutionRewound || isMigrate(m)
		}
		if !special {
			ids = append(ids, g.id)
			cold = append(cold, g)
		}
	}
	if len(ids) < 2 {
		return // step's own load is as good
	}
	res, err := w.store.LoadInstances(ctx, ids)
	if err != nil {
		w.log.Debug("batched load failed; loading one by one", "err", err)
		return
	}
	for i, g := range cold {
		g.pre = &res[i]
	}
}
