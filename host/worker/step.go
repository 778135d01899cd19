package worker

// One instance's step: take its warm state or load and rebuild it, run
// the guest with the group's events, and turn the result into a commit with
// decide (decide.go).

import (
	"context"
	"errors"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/decide"
	"github.com/durablewasm/durablewasm/host/replay"
)

// step runs one instance's messages. A nil commit means the messages are to
// be acknowledged and dropped (unknown or finished instance, stale
// generation).
func (w *Worker) step(ctx context.Context, p int, epoch int64, g *group) (*host.Commit, *warm, error) {
	for _, m := range g.msgs {
		if m.Event.Type == abi.EventExecutionRewound {
			return w.rewind(ctx, p, epoch, g, m.Event.Reason)
		}
	}
	for _, m := range g.msgs {
		if isMigrate(m) {
			return w.migrate(ctx, p, epoch, g)
		}
	}
	e := w.cache.take(g.id)
	if e != nil && (e.inst == nil || e.inst.Dead()) {
		w.cache.remove(e)
		e = nil
	}
	// A new generation (ContinueAsNew, or a replaced instance) starts fresh.
	for _, m := range g.msgs {
		if m.Event.Type == abi.EventExecutionStarted && e != nil && m.Event.ExecutionID != e.state.ExecutionID {
			w.cache.remove(e)
			e = nil
		}
	}
	if e == nil {
		var err error
		e, err = w.load(ctx, p, g)
		if err != nil || e == nil {
			return nil, nil, err
		}
	}
	events := eventsFor(e, g.msgs)
	if len(events) < len(g.msgs) {
		w.log.Debug("dropping messages of another generation", "instanceId", g.id, "execution", e.meta.ExecutionID, "messages", len(g.msgs), "kept", len(events))
	}
	var res *replay.StepResult
	guest := e.inst.Orchestration(ctx, e.handle)
	err := guest.Locked(func() (err error) {
		res, err = e.state.Step(w.opts.Now().UnixNano(), events, guest)
		return err
	})
	if err != nil {
		w.cache.remove(e)
		return nil, nil, err
	}
	c := w.buildCommit(ctx, p, epoch, e, res)
	c.ExpectFresh, e.fresh = e.fresh, ""
	for _, m := range g.msgs {
		c.Acks = append(c.Acks, m.ID)
	}
	return c, e, nil
}

// eventsFor returns the events of msgs that belong to e's generation.
func eventsFor(e *warm, msgs []host.ControlMessage) []abi.HistoryEvent {
	var events []abi.HistoryEvent
	for _, m := range msgs {
		switch {
		case m.Event.Type == abi.EventExecutionRewound:
			continue // handled by rewind
		case m.ExecutionID != "" && m.ExecutionID != e.meta.ExecutionID && m.Event.Type != abi.EventExecutionStarted:
			continue // for an older generation
		case m.Event.Type == abi.EventExecutionStarted && m.Event.ExecutionID != e.meta.ExecutionID:
			continue // superseded start
		}
		events = append(events, m.Event)
	}
	return events
}

// load reads an instance from the store and rebuilds its state.
func (w *Worker) load(ctx context.Context, p int, g *group) (*warm, error) {
	var meta *host.InstanceState
	var hist []abi.HistoryEvent
	var err error
	fresh := ""
	if g.pre != nil {
		meta, hist, err = g.pre.State, g.pre.History, g.pre.Err
		fresh = g.fresh
		g.pre, g.fresh = nil, ""
	} else {
		meta, hist, err = w.store.LoadInstance(ctx, g.id)
		w.trust(g.id)
	}
	if errors.Is(err, host.ErrInstanceNotFound) {
		w.log.Warn("dropping messages for an unknown instance", "instanceId", g.id, "count", len(g.msgs))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if meta.Status.Terminal() {
		w.log.Debug("dropping messages for a finished instance", "instanceId", g.id, "status", meta.Status, "count", len(g.msgs))
		return nil, nil
	}
	e, err := w.bindWarm(ctx, p, g.id, *meta, meta.Digest, hist, w.limits(ctx, meta.Digest))
	if err != nil {
		return nil, err
	}
	e.fresh = fresh
	return e, nil
}

// bindWarm makes the warm entry of instance id (state meta) on a new
// orchestration of the module with digest: a fresh generation when hist is
// empty, else one rebuilt by replaying hist. On an error nothing is left
// in the guest.
func (w *Worker) bindWarm(ctx context.Context, p int, id string, meta host.InstanceState, digest string, hist []abi.HistoryEvent, limits replay.Limits) (*warm, error) {
	inst, err := w.orchInstance(ctx, digest, id)
	if err != nil {
		return nil, err
	}
	guest := inst.Bind(ctx)
	e := &warm{id: id, partition: p, meta: meta, inst: inst, handle: guest.Handle()}
	if len(hist) == 0 {
		e.state = replay.New(id, limits)
		return e, nil
	}
	err = guest.Locked(func() (err error) {
		e.state, err = replay.Rebuild(id, limits, hist, guest)
		if err != nil {
			guest.DropLocked()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// stepWarm runs one step of e's generation with events at now. On an error
// the orchestration is ended in the guest.
func (w *Worker) stepWarm(ctx context.Context, e *warm, now time.Time, events []abi.HistoryEvent) (*replay.StepResult, error) {
	var res *replay.StepResult
	guest := e.inst.Orchestration(ctx, e.handle)
	err := guest.Locked(func() (err error) {
		res, err = e.state.Step(now.UnixNano(), events, guest)
		if err != nil {
			guest.DropLocked()
		}
		return err
	})
	return res, err
}

// stepEnv is the environment of a step on the module with digest.
func (w *Worker) stepEnv(ctx context.Context, digest string) decide.Env {
	return decide.Env{Now: w.opts.Now(), NewID: host.NewInstanceID, Partitions: w.store.Partitions(), Limits: w.limits(ctx, digest)}
}

// buildCommit decides the commit of a step's result (decide) and moves e's
// state to the one it commits.
func (w *Worker) buildCommit(ctx context.Context, p int, epoch int64, e *warm, res *replay.StepResult) *host.Commit {
	d := decide.Decide(w.stepEnv(ctx, e.meta.Digest), p, epoch, e.id, e.meta, decide.GenerationOf(e.state, res), res)
	w.noteDecision(e.id, d)
	e.meta = d.Commit.State
	return &d.Commit
}

// noteDecision logs what a decision asks to be told.
func (w *Worker) noteDecision(id string, d decide.Decision) {
	if d.HistoryWarning {
		w.log.Warn("orchestration history is at 80% of its limit; it fails when it reaches the limit (use ContinueAsNew to start a fresh history)",
			"instanceId", id, "events", d.Commit.State.HistoryLength)
	}
}
