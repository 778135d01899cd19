package worker

// Batches: the messages one read returns are grouped by instance, each
// group is stepped (step.go), and all the steps' commits go to the store in
// one pipelined round trip; failures count toward quarantine.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
)

type group struct {
	id   string
	msgs []host.ControlMessage
	// pre, when set, is the instance as read by the batch's LoadInstances,
	// or as assumed from a fresh start message (then fresh is its
	// execution id).
	pre   *host.LoadedInstance
	fresh string
}

// processBatch steps every instance that has messages in msgs and commits
// all steps in one pipelined round trip. It returns the earliest new timer.
// local allows local activities; it is false for messages that were
// pending before (claimed after a crash, a takeover or a failed batch):
// their activities go through the activity stream, whose delivery count
// dead-letters an activity that keeps taking its worker down.
func (w *Worker) processBatch(ctx context.Context, p int, epoch int64, msgs []host.ControlMessage, local bool) (time.Time, error) {
	// Elapsed real time bounds the batch's local activities (a budget of
	// work, not a point on the orchestrations' clock).
	started := time.Now()
	b := newBatch(p, epoch, msgs)
	w.preload(ctx, b.groups)
	w.stepAll(ctx, b)
	if len(b.commits) > 0 && local && w.localActivitiesEnabled() {
		w.runLocalActivities(ctx, p, epoch, b.commits, b.entries, started)
	}
	earliest := b.earliestTimer()
	if len(b.drops) > 0 {
		if err := w.store.AckControl(ctx, p, epoch, b.drops); err != nil {
			if errors.Is(err, host.ErrStaleEpoch) {
				return earliest, errLeaseLost
			}
			b.fail(err)
		}
	}
	if len(b.commits) > 0 {
		if err := w.commitAll(ctx, b); err != nil {
			return earliest, err
		}
	}
	return earliest, w.settleFailures(ctx, p, epoch, b.groups, b.failures, b.err)
}

// batch is one processBatch: the messages grouped by instance, and what
// stepping them gave.
type batch struct {
	p     int
	epoch int64
	// groups in the order of their first message; byID indexes them.
	groups []*group
	byID   map[string]*group
	// commits[i] is the step of entries[i]'s instance.
	commits []host.Commit
	entries []*warm
	// drops are the ids of messages acknowledged without a commit.
	drops []string
	// failures are the groups whose step or commit failed; err is the
	// batch's first error.
	failures []groupFailure
	err      error
}

// newBatch groups msgs by instance.
func newBatch(p int, epoch int64, msgs []host.ControlMessage) *batch {
	b := &batch{p: p, epoch: epoch, byID: map[string]*group{}}
	for _, m := range msgs {
		g := b.byID[m.InstanceID]
		if g == nil {
			g = &group{id: m.InstanceID}
			b.byID[m.InstanceID] = g
			b.groups = append(b.groups, g)
		}
		g.msgs = append(g.msgs, m)
	}
	return b
}

// fail records err as the batch's error unless it has one.
func (b *batch) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// earliestTimer is the fire time of the earliest timer the batch's commits
// set (zero if none).
func (b *batch) earliestTimer() time.Time {
	var earliest time.Time
	for i := range b.commits {
		for _, t := range b.commits[i].Timers {
			if earliest.IsZero() || t.FireAt.Before(earliest) {
				earliest = t.FireAt
			}
		}
	}
	return earliest
}

// stepAll steps every group of b.
func (w *Worker) stepAll(ctx context.Context, b *batch) {
	for _, g := range b.groups {
		c, e, err := w.step(ctx, b.p, b.epoch, g)
		switch {
		case err != nil:
			w.log.Warn("step failed", "instanceId", g.id, "err", err)
			b.fail(err)
			b.failures = append(b.failures, groupFailure{g, err})
		case c == nil:
			for _, m := range g.msgs {
				b.drops = append(b.drops, m.ID)
			}
		default:
			b.commits = append(b.commits, *c)
			b.entries = append(b.entries, e)
		}
	}
}

// commitAll writes b's commits in one round trip and settles each entry:
// a committed one is kept warm (or dropped when finished or stale), one
// whose commit failed is forgotten and rebuilt from the store later. It
// returns errLeaseLost if the lease moved on.
func (w *Worker) commitAll(ctx context.Context, b *batch) error {
	errs, err := w.store.Commit(ctx, b.commits)
	outbox, reload := false, false
	for i, e := range b.entries {
		cerr := err
		if cerr == nil {
			cerr = errs[i]
		}
		if cerr != nil {
			// The warm state ran ahead of what is stored: rebuild it later.
			w.cache.remove(e)
			switch {
			case errors.Is(cerr, host.ErrStaleEpoch):
				return errLeaseLost
			case errors.Is(cerr, host.ErrStateChanged):
				// Its first step assumed a fresh instance that was
				// terminated, purged or replaced meanwhile: read it next
				// time (its messages are still pending).
				w.log.Debug("instance changed before its first step; reading it", "instanceId", e.id)
				w.distrust(e.id)
				reload = true
			default:
				b.fail(fmt.Errorf("commit %s: %w", e.id, cerr))
				if err == nil {
					b.failures = append(b.failures, groupFailure{b.byID[e.id], fmt.Errorf("commit: %w", cerr)})
				}
			}
			continue
		}
		outbox = outbox || len(b.commits[i].Outbox) > 0
		if e.stale || e.state.Finished() {
			w.cache.remove(e)
		} else {
			w.cache.put(e)
		}
	}
	if outbox {
		if _, err := w.store.DeliverOutbox(ctx, b.p, b.epoch); err != nil {
			w.log.Warn("deliver outbox", "partition", b.p, "err", err)
		}
	}
	if reload {
		b.fail(errReload)
	}
	return nil
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
			g.pre = &host.LoadedInstance{State: &host.InstanceState{InstanceID: g.id, Name: ev.Name, ExecutionID: m.ExecutionID,
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
