package worker

// Rewind and migrate: steps that rebuild an instance from a rewritten
// history or on another module before they run.

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/decide"
	"github.com/durablewasm/durablewasm/host/replay"
)

// rewind puts a Failed instance back to Running: it rewrites the history
// without the failures that ended it, replays it, and re-issues the work
// that failed or whose result was lost, keeping every successful result.
// Failed sub-orchestrations are rewound too.
func (w *Worker) rewind(ctx context.Context, p int, epoch int64, g *group, reason string) (*host.Commit, *warm, error) {
	if old := w.cache.take(g.id); old != nil {
		w.cache.remove(old)
	}
	meta, hist, err := w.store.LoadInstance(ctx, g.id)
	if errors.Is(err, host.ErrInstanceNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if meta.Status != abi.StatusFailed {
		w.log.Info("ignoring rewind of an instance that is not Failed", "instanceId", g.id, "status", meta.Status)
		if meta.Status.Terminal() {
			return nil, nil, nil
		}
		// Process the other messages normally; the rewind is acknowledged.
		var rest []host.ControlMessage
		for _, m := range g.msgs {
			if m.Event.Type != abi.EventExecutionRewound {
				rest = append(rest, m)
			}
		}
		c, e, err := w.step(ctx, p, epoch, &group{id: g.id, msgs: rest})
		if c != nil {
			c.Acks = nil
			for _, m := range g.msgs {
				c.Acks = append(c.Acks, m.ID)
			}
		}
		return c, e, err
	}
	env := w.stepEnv(ctx, meta.Digest)
	// Sub-orchestrations without a completion in history: their result may
	// have been dropped while this instance was failed, or they failed.
	plan := replay.PlanRewind(hist, reason, env.Now.UnixNano())
	subs := append([]abi.HistoryEvent(nil), plan.SubOrchestrations...)
	children := make([]*host.InstanceState, len(subs))
	for i, sub := range subs {
		child, err := w.store.GetInstance(ctx, sub.InstanceID)
		if err != nil && !errors.Is(err, host.ErrInstanceNotFound) {
			return nil, nil, err
		}
		children[i] = child
	}
	extra, rewindChildren := decide.RewindChildren(subs, children)
	plan.Record(extra...)
	e, err := w.bindWarm(ctx, p, g.id, *meta, meta.Digest, plan.History, env.Limits)
	if err != nil {
		return nil, nil, err
	}
	e.meta.Failure, e.meta.Output = nil, ""
	res, err := w.stepWarm(ctx, e, env.Now, eventsFor(e, g.msgs))
	if err != nil {
		return nil, nil, err
	}
	st := e.state
	d := decide.DecideRewind(env, p, epoch, g.id, e.meta, decide.GenerationOf(st, res), res, plan, rewindChildren, reason)
	w.noteDecision(g.id, d)
	e.meta = d.Commit.State
	c := &d.Commit
	for _, m := range g.msgs {
		c.Acks = append(c.Acks, m.ID)
	}
	w.log.Info("rewound instance", "instanceId", g.id, "activities", len(plan.Activities), "timers", len(plan.Timers), "subOrchestrations", len(rewindChildren))
	return c, e, nil
}

// isMigrate reports whether m is a migration request (Client.Migrate).
func isMigrate(m host.ControlMessage) bool {
	return m.Event.Type == abi.EventGenericEvent && m.Event.Name == host.MigrateEventName
}

// migrate moves a running instance to another module digest: it forgets the
// warm state (which runs on the old module), rebuilds the state by replaying
// the committed history on the new module, records the move in history (a
// GenericEvent named MigrateEventName whose input is {"from":…,"to":…}) and
// processes the group's other messages. If the new module's orchestrator no
// longer matches the history, Rebuild aborts with the nondeterminism failure
// (DW100x) and the step commits the instance as Failed, on the new digest.
// A migration to the digest the instance already runs on, or of an
// instance that has finished, is acknowledged and ignored; so is one to a
// module that is not stored (logged).
func (w *Worker) migrate(ctx context.Context, p int, epoch int64, g *group) (*host.Commit, *warm, error) {
	if old := w.cache.take(g.id); old != nil {
		w.cache.remove(old)
	}
	to, rest := w.migrationTarget(g)
	// ackAll makes c acknowledge every message of the group, the migration
	// requests included.
	ackAll := func(c *host.Commit, e *warm, err error) (*host.Commit, *warm, error) {
		if c != nil {
			c.Acks = c.Acks[:0]
			for _, m := range g.msgs {
				c.Acks = append(c.Acks, m.ID)
			}
		}
		return c, e, err
	}
	meta, hist, err := w.store.LoadInstance(ctx, g.id)
	if errors.Is(err, host.ErrInstanceNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if meta.Status.Terminal() {
		w.log.Info("ignoring migration of a finished instance", "instanceId", g.id, "status", meta.Status)
		return nil, nil, nil
	}
	if to != "" && to != meta.Digest {
		if err := w.module(ctx, to); errors.Is(err, host.ErrModuleNotFound) {
			w.log.Warn("ignoring migration to a module that is not stored", "instanceId", g.id, "digest", to)
			to = ""
		} else if err != nil {
			return nil, nil, err
		}
	}
	if to == "" || to == meta.Digest {
		if len(rest) == 0 {
			return nil, nil, nil
		}
		return ackAll(w.step(ctx, p, epoch, &group{id: g.id, msgs: rest}))
	}
	from := meta.Digest
	meta.Digest = to
	limits := w.limits(ctx, to)
	e, err := w.bindWarm(ctx, p, g.id, *meta, to, hist, limits)
	if err != nil {
		return nil, nil, err
	}
	now := w.opts.Now()
	info, _ := json.Marshal(map[string]string{"from": from, "to": to})
	events := eventsFor(e, rest)
	started := e.state.Started()
	for _, ev := range events {
		started = started || ev.Type == abi.EventExecutionStarted
	}
	if started {
		// Not before the generation starts: history begins with it.
		events = append(events, abi.HistoryEvent{EventID: -1, Type: abi.EventGenericEvent, Timestamp: now.UnixNano(),
			Name: host.MigrateEventName, Input: string(info)})
	}
	res, err := w.stepWarm(ctx, e, now, events)
	if err != nil {
		return nil, nil, err
	}
	c := w.buildCommit(ctx, p, epoch, e, res)
	if f := e.state.Aborted(); f != nil {
		w.log.Warn("migrated instance does not replay on the new module; it failed", "instanceId", g.id, "from", from, "to", to, "failure", f.Message)
	} else {
		w.log.Info("migrated instance", "instanceId", g.id, "from", from, "to", to)
	}
	return ackAll(c, e, nil)
}

// migrationTarget returns the digest g's migration requests ask for (the
// last one wins; "" if none names one) and g's other messages.
func (w *Worker) migrationTarget(g *group) (to string, rest []host.ControlMessage) {
	for _, m := range g.msgs {
		if !isMigrate(m) {
			rest = append(rest, m)
			continue
		}
		var d string
		if err := json.Unmarshal([]byte(m.Event.Input), &d); err != nil || d == "" {
			w.log.Warn("ignoring a migration message without a digest", "instanceId", g.id, "input", m.Event.Input)
			continue
		}
		to = d
	}
	return to, rest
}
