package host

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
)

// warm is one orchestration kept alive between steps.
type warm struct {
	id        string
	partition int
	meta      InstanceState
	state     *replay.State
	inst      *guestInstance
	handle    uint32
	elem      *list.Element
	busy      bool
	// stale is set when the guest ran ahead of what will be committed (a
	// failed step after local activities): the entry is dropped after the
	// commit and rebuilt from history.
	stale bool
	// fresh is the execution id the first step assumed from the start
	// message instead of reading the instance (Commit.ExpectFresh).
	fresh string
}

// warmCache is an LRU of warm orchestrations bounded by count.
type warmCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*warm
	lru *list.List
}

func newWarmCache(max int) *warmCache {
	return &warmCache{max: max, m: map[string]*warm{}, lru: list.New()}
}

func (c *warmCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// take returns the warm entry for id marked busy, or nil.
func (c *warmCache) take(id string) *warm {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if e != nil {
		e.busy = true
		c.lru.MoveToFront(e.elem)
	}
	return e
}

// has reports whether id is warm.
func (c *warmCache) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id] != nil
}

// put inserts or refreshes e (no longer busy) and evicts beyond the bound.
func (c *warmCache) put(e *warm) {
	var evict []*warm
	c.mu.Lock()
	e.busy = false
	if e.elem == nil {
		e.elem = c.lru.PushFront(e)
		c.m[e.id] = e
	}
	for el := c.lru.Back(); len(c.m) > c.max && el != nil; {
		v := el.Value.(*warm)
		prev := el.Prev()
		if !v.busy {
			c.lru.Remove(el)
			delete(c.m, v.id)
			evict = append(evict, v)
		}
		el = prev
	}
	c.mu.Unlock()
	for _, v := range evict {
		v.release()
	}
}

// remove forgets e and ends its guest orchestration.
func (c *warmCache) remove(e *warm) {
	c.mu.Lock()
	if e.elem != nil && c.m[e.id] == e {
		c.lru.Remove(e.elem)
		delete(c.m, e.id)
	}
	e.elem = nil
	c.mu.Unlock()
	e.release()
}

func (c *warmCache) dropPartition(p int) {
	var drop []*warm
	c.mu.Lock()
	for id, e := range c.m {
		if e.partition == p {
			c.lru.Remove(e.elem)
			delete(c.m, id)
			drop = append(drop, e)
		}
	}
	c.mu.Unlock()
	for _, e := range drop {
		e.release()
	}
}

func (e *warm) release() {
	if e.inst == nil {
		return
	}
	e.inst.mu.Lock()
	e.inst.drop(context.Background(), e.handle)
	e.inst.mu.Unlock()
	e.inst = nil
}

// --- the partition loop ------------------------------------------------------

func (w *Worker) partitionLoop(ctx context.Context, p int, epoch int64) {
	log := w.log.With("partition", p, "epoch", epoch)
	// Steps and commits run to completion even when ctx ends, so a shutdown
	// never cuts a guest call or a commit in half.
	work := context.WithoutCancel(ctx)
	reclaim := true
	var nextTimer time.Time
	timersChecked := time.Time{}
	lastReclaim := w.opts.Now()
	for ctx.Err() == nil {
		var msgs []ControlMessage
		var err error
		// A former owner that is paused (or cut off) with a blocking read
		// still outstanding on the server can be handed new messages after
		// the takeover; they sit in its pending list. Claim such entries
		// again every lease period.
		if w.opts.Now().Sub(lastReclaim) > w.opts.LeaseTTL {
			reclaim = true
		}
		claimed := reclaim
		if reclaim {
			lastReclaim = w.opts.Now()
			msgs, err = w.store.ClaimControl(ctx, p, w.opts.ID)
			if err == nil {
				reclaim = false
				if n, err := w.store.DeliverOutbox(work, p, epoch); err != nil {
					log.Warn("deliver outbox", "err", err)
				} else if n > 0 {
					log.Debug("delivered outbox messages", "count", n)
				}
			}
		} else {
			now := w.opts.Now()
			if nextTimer.IsZero() && now.Sub(timersChecked) > time.Second || !nextTimer.IsZero() && !now.Before(nextTimer) {
				fired, next, ferr := w.store.FireDueTimers(work, p, epoch, now, 1000)
				if errors.Is(ferr, ErrStaleEpoch) {
					log.Warn("lease lost while firing timers")
					return
				}
				if ferr == nil {
					nextTimer, timersChecked = next, now
					if fired == 0 && !next.IsZero() && !now.Before(next) {
						// Due by this worker's clock but not by Redis' (the
						// store never fires early): check again shortly.
						nextTimer = now.Add(50 * time.Millisecond)
					}
				}
			}
			block := time.Second
			if !nextTimer.IsZero() {
				if d := nextTimer.Sub(now); d < block {
					block = max(d, time.Millisecond)
				}
			}
			msgs, err = w.store.ReadControl(ctx, p, w.opts.ID, w.opts.MaxBatch, block)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("read control stream", "err", err)
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		earliest, err := w.processBatch(work, p, epoch, msgs, !claimed)
		if errors.Is(err, errLeaseLost) {
			log.Warn("lease lost: a newer owner holds the partition")
			return
		}
		if errors.Is(err, errReload) {
			reclaim = true
			continue
		}
		if err != nil {
			log.Warn("batch failed; re-reading pending messages", "err", err)
			reclaim = true
			sleepCtx(ctx, 100*time.Millisecond)
		}
		if !earliest.IsZero() && (nextTimer.IsZero() || earliest.Before(nextTimer)) {
			nextTimer = earliest
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

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

// step runs one instance's messages. A nil commit means the messages are to
// be acknowledged and dropped (unknown or finished instance, stale
// generation).
func (w *Worker) step(ctx context.Context, p int, epoch int64, g *group) (*Commit, *warm, error) {
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
	if e != nil && (e.inst == nil || e.inst.dead.Load()) {
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
	guest := &orchGuest{ctx: ctx, inst: e.inst, handle: e.handle}
	e.inst.mu.Lock()
	res, err := e.state.Step(w.opts.Now().UnixNano(), events, guest)
	e.inst.mu.Unlock()
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
func eventsFor(e *warm, msgs []ControlMessage) []abi.HistoryEvent {
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

// rewind puts a Failed instance back to Running: it rewrites the history
// without the failures that ended it, replays it, and re-issues the work
// that failed or whose result was lost, keeping every successful result.
// Failed sub-orchestrations are rewound too.
func (w *Worker) rewind(ctx context.Context, p int, epoch int64, g *group, reason string) (*Commit, *warm, error) {
	if old := w.cache.take(g.id); old != nil {
		w.cache.remove(old)
	}
	meta, hist, err := w.store.LoadInstance(ctx, g.id)
	if errors.Is(err, ErrInstanceNotFound) {
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
		var rest []ControlMessage
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
	subs := replay.PlanRewind(hist, reason, env.Now.UnixNano()).SubOrchestrations
	children := make([]*InstanceState, len(subs))
	for i, sub := range subs {
		child, err := w.store.GetInstance(ctx, sub.InstanceID)
		if err != nil && !errors.Is(err, ErrInstanceNotFound) {
			return nil, nil, err
		}
		children[i] = child
	}
	extra, rewindChildren := rewindChildren(subs, children)
	plan := replay.PlanRewind(hist, reason, env.Now.UnixNano(), extra...)
	inst, err := w.orchInstance(ctx, meta.Digest, g.id)
	if err != nil {
		return nil, nil, err
	}
	e := &warm{id: g.id, partition: p, meta: *meta, inst: inst}
	e.meta.Failure, e.meta.Output = nil, ""
	inst.mu.Lock()
	inst.nextHandle++
	e.handle = inst.nextHandle
	guest := &orchGuest{ctx: ctx, inst: inst, handle: e.handle}
	st, err := replay.Rebuild(g.id, env.Limits, plan.History, guest)
	var res *replay.StepResult
	if err == nil {
		e.state = st
		res, err = st.Step(env.Now.UnixNano(), eventsFor(e, g.msgs), guest)
	}
	if err != nil {
		inst.drop(ctx, e.handle)
	}
	inst.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	d := decideRewind(env, p, epoch, g.id, e.meta, generationOf(st, res), res, plan, rewindChildren, reason)
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
func isMigrate(m ControlMessage) bool {
	return m.Event.Type == abi.EventGenericEvent && m.Event.Name == MigrateEventName
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
func (w *Worker) migrate(ctx context.Context, p int, epoch int64, g *group) (*Commit, *warm, error) {
	if old := w.cache.take(g.id); old != nil {
		w.cache.remove(old)
	}
	var rest []ControlMessage
	to := ""
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
		to = d // the last request wins
	}
	// ackAll makes c acknowledge every message of the group, the migration
	// requests included.
	ackAll := func(c *Commit, e *warm, err error) (*Commit, *warm, error) {
		if c != nil {
			c.Acks = c.Acks[:0]
			for _, m := range g.msgs {
				c.Acks = append(c.Acks, m.ID)
			}
		}
		return c, e, err
	}
	meta, hist, err := w.store.LoadInstance(ctx, g.id)
	if errors.Is(err, ErrInstanceNotFound) {
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
		if err := w.module(ctx, to); errors.Is(err, ErrModuleNotFound) {
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
	inst, err := w.orchInstance(ctx, to, g.id)
	if err != nil {
		return nil, nil, err
	}
	e := &warm{id: g.id, partition: p, meta: *meta, inst: inst}
	e.meta.Digest = to
	now := w.opts.Now()
	info, _ := json.Marshal(map[string]string{"from": from, "to": to})
	events := eventsFor(e, rest)
	inst.mu.Lock()
	inst.nextHandle++
	e.handle = inst.nextHandle
	guest := &orchGuest{ctx: ctx, inst: inst, handle: e.handle}
	var res *replay.StepResult
	if len(hist) == 0 {
		e.state = replay.New(g.id, w.limits(ctx, to))
	} else {
		e.state, err = replay.Rebuild(g.id, w.limits(ctx, to), hist, guest)
	}
	if err == nil {
		started := e.state.Started()
		for _, ev := range events {
			started = started || ev.Type == abi.EventExecutionStarted
		}
		if started {
			// Not before the generation starts: history begins with it.
			events = append(events, abi.HistoryEvent{EventID: -1, Type: abi.EventGenericEvent, Timestamp: now.UnixNano(),
				Name: MigrateEventName, Input: string(info)})
		}
		res, err = e.state.Step(now.UnixNano(), events, guest)
	}
	if err != nil {
		inst.drop(ctx, e.handle)
	}
	inst.mu.Unlock()
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

// load reads an instance from the store and rebuilds its state.
func (w *Worker) load(ctx context.Context, p int, g *group) (*warm, error) {
	var meta *InstanceState
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
	if errors.Is(err, ErrInstanceNotFound) {
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
	inst, err := w.orchInstance(ctx, meta.Digest, g.id)
	if err != nil {
		return nil, err
	}
	e := &warm{id: g.id, partition: p, meta: *meta, inst: inst, fresh: fresh}
	inst.mu.Lock()
	defer inst.mu.Unlock()
	inst.nextHandle++
	e.handle = inst.nextHandle
	if len(hist) == 0 {
		e.state = replay.New(g.id, w.limits(ctx, meta.Digest))
		return e, nil
	}
	st, err := replay.Rebuild(g.id, w.limits(ctx, meta.Digest), hist, &orchGuest{ctx: ctx, inst: inst, handle: e.handle})
	if err != nil {
		inst.drop(ctx, e.handle)
		return nil, err
	}
	e.state = st
	return e, nil
}

// stepEnv is the environment of a step on the module with digest.
func (w *Worker) stepEnv(ctx context.Context, digest string) stepEnv {
	return stepEnv{Now: w.opts.Now(), NewID: NewInstanceID, Partitions: w.store.Partitions(), Limits: w.limits(ctx, digest)}
}

// buildCommit decides the commit of a step's result (decide) and moves e's
// state to the one it commits.
func (w *Worker) buildCommit(ctx context.Context, p int, epoch int64, e *warm, res *replay.StepResult) *Commit {
	d := decide(w.stepEnv(ctx, e.meta.Digest), p, epoch, e.id, e.meta, generationOf(e.state, res), res)
	w.noteDecision(e.id, d)
	e.meta = d.Commit.State
	return &d.Commit
}

// noteDecision logs what a decision asks to be told.
func (w *Worker) noteDecision(id string, d decision) {
	if d.HistoryWarning {
		w.log.Warn("orchestration history is at 80% of its limit; it fails when it reaches the limit (use ContinueAsNew to start a fresh history)",
			"instanceId", id, "events", d.Commit.State.HistoryLength)
	}
}
