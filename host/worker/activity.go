package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
	"github.com/durablewasm/durablewasm/host/sandbox"
)

// The activity instances.
//
// Each module digest has its own activity instances, at most
// Options.ActivityInstances. A module that takes asynchronous activities
// (sandbox.Instance.AsyncActivities) runs many activities on one instance:
// while one waits on I/O it is parked and costs no instance, so a new
// activity goes to an instance that is not in a call (waiting up to
// longCall for one), and a new instance is made only when every one is in
// a long call: CPU-bound activities spread over as many instances as cores
// (and one more per instance whose call seems hung), I/O-bound ones share
// one or two. A module without them needs an instance per running
// activity. Instances idle for idleInstanceTTL are closed, the last one of
// a module after lastInstanceTTL (checked as activities come and go, and by
// the liveness loop). While the activity instances' memory is over
// Options.ActivityMemoryBytes, no instance is made and no activity is
// added to an asynchronous instance; new activities wait for running ones
// to end.

// idleInstanceTTL is how long an activity instance with no activity is
// kept; lastInstanceTTL the same for a module's last instance.
const (
	idleInstanceTTL = 30 * time.Second
	lastInstanceTTL = 5 * time.Minute
)

// activityPool holds the activity instances per digest and bounds how many
// activities run at once (slots).
type activityPool struct {
	engine    *sandbox.Engine
	slots     *activitySlots
	max       int    // instances per digest
	cores     int    // GOMAXPROCS
	memBudget uint64 // bytes of linear memory over all instances
	mu        sync.Mutex
	mods      map[string]*modulePool
	mem       uint64 // sum of the instances' last known memory
	// changed is closed and replaced when an activity ends or an instance
	// goes, for get's waiters.
	changed chan struct{}
	// lastTrim is when trim last ran.
	lastTrim time.Time
}

// modulePool is one digest's activity instances.
type modulePool struct {
	insts    []*pooled
	creating int // instances being made
}

// pooled is one activity instance and the activities on it.
type pooled struct {
	g         *sandbox.Instance
	active    int
	idleSince time.Time
	mem       uint64
}

func newActivityPool(engine *sandbox.Engine, concurrency, instances int, memBudget uint64) *activityPool {
	return &activityPool{engine: engine, slots: newActivitySlots(concurrency), max: instances, cores: runtime.GOMAXPROCS(0), memBudget: memBudget,
		mods: map[string]*modulePool{}, changed: make(chan struct{})}
}

// get returns an instance of digest for one more activity, waiting while
// the module has as many as it may and none can take it, or the memory
// budget is spent. The caller gives it back with put.
func (a *activityPool) get(ctx context.Context, digest string, st *host.AppSettings) (*pooled, error) {
	for {
		a.mu.Lock()
		a.trim(time.Now())
		mp := a.mods[digest]
		if mp == nil {
			mp = &modulePool{}
			a.mods[digest] = mp
		}
		p, create, retry := a.choose(mp)
		ch := a.changed
		if create {
			mp.creating++
		}
		a.mu.Unlock()
		if p != nil {
			return p, nil
		}
		if create {
			return a.create(ctx, mp, digest, st)
		}
		if retry <= 0 {
			retry = time.Hour // until an activity ends
		}
		t := time.NewTimer(retry)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
	}
}

// choose picks the instance of mp for a new activity, or tells get to make
// one (create), or to look again after retry, or neither (wait for an
// activity to end). The caller holds a.mu.
//
// An asynchronous module's instance that is not in a call takes the
// activity. When every one is in a call, get looks again once the shortest
// of those calls has run longCall (most end long before); only when every
// instance is in a long call — activities computing, or hung — is a new
// one made, up to the module's limit; past it, the activity waits for an
// instance to be free.
func (a *activityPool) choose(mp *modulePool) (p *pooled, create bool, retry time.Duration) {
	var free *pooled
	async := false
	shortest := time.Duration(0)
	hung := 0 // instances in a call over hungCall
	for _, q := range mp.insts {
		if q.active == 0 {
			q.active++
			return q, false, 0
		}
		if !q.g.AsyncActivities() {
			continue
		}
		async = true
		d := q.g.BusyFor()
		if d == 0 && (free == nil || q.active < free.active) {
			free = q
		}
		if d > 0 && (shortest == 0 || d < shortest) {
			shortest = d
		}
		if d > hungCall {
			hung++
		}
	}
	if a.memBudget > 0 && a.mem >= a.memBudget && a.running() > 0 {
		return nil, false, 0
	}
	if free != nil {
		free.active++
		return free, false, 0
	}
	if async && shortest > 0 && shortest < longCall {
		return nil, false, longCall - shortest
	}
	n := len(mp.insts) + mp.creating
	if n == 0 || n < a.max && (!async || n < a.cores+hung) {
		return nil, true, 0
	}
	if async {
		// Every instance is in a long call: look again in a while (a
		// call's end does not notify the pool). An activity never queues
		// behind a call that may not end.
		return nil, false, asyncRecheck
	}
	return nil, false, 0
}

// asyncRecheck is how often an activity waiting for an asynchronous
// module's instance looks again while every one is in a long call.
const asyncRecheck = 10 * time.Millisecond

// longCall is how long an asynchronous instance's call must have run for
// the pool to make another instance rather than queue behind it. Beyond
// one instance per core (activities computing at once), it makes one only
// for each instance in a call over hungCall (an activity spinning or
// blocked): more would only share the cores.
const (
	longCall = 2 * time.Millisecond
	hungCall = time.Second
)

// running counts the activities on every instance. The caller holds a.mu.
func (a *activityPool) running() int {
	n := 0
	for _, mp := range a.mods {
		for _, q := range mp.insts {
			n += q.active
		}
		n += mp.creating
	}
	return n
}

// create makes an instance of digest for one activity.
func (a *activityPool) create(ctx context.Context, mp *modulePool, digest string, st *host.AppSettings) (*pooled, error) {
	g, err := a.engine.NewInstance(ctx, digest, false, st)
	a.mu.Lock()
	defer a.mu.Unlock()
	mp.creating--
	a.notify()
	if err != nil {
		return nil, err
	}
	p := &pooled{g: g, active: 1, mem: g.MemoryBytes()}
	a.mem += p.mem
	mp.insts = append(mp.insts, p)
	return p, nil
}

// put gives back p after one activity ended on it.
func (a *activityPool) put(p *pooled) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p.active--
	if p.active == 0 {
		p.idleSince = time.Now()
	}
	mem := p.g.MemoryBytes()
	a.mem += mem - p.mem
	p.mem = mem
	if p.g.Dead() {
		a.remove(p)
	}
	a.notify()
}

// remove forgets p, which is dead or being closed. The caller holds a.mu.
func (a *activityPool) remove(p *pooled) {
	mp := a.mods[p.g.Digest()]
	if mp == nil {
		return
	}
	for i, q := range mp.insts {
		if q == p {
			mp.insts = append(mp.insts[:i], mp.insts[i+1:]...)
			a.mem -= p.mem
			p.mem = 0
			return
		}
	}
}

// trim closes the instances idle for too long, at most once a second. The
// caller holds a.mu.
func (a *activityPool) trim(now time.Time) {
	if now.Sub(a.lastTrim) < time.Second {
		return
	}
	a.lastTrim = now
	for digest, mp := range a.mods {
		for i := 0; i < len(mp.insts); i++ {
			q := mp.insts[i]
			ttl := idleInstanceTTL
			if len(mp.insts) == 1 {
				ttl = lastInstanceTTL
			}
			if q.active == 0 && (q.g.Dead() || now.Sub(q.idleSince) > ttl) {
				a.remove(q)
				q.g.Close(context.Background())
				i--
			}
		}
		if len(mp.insts) == 0 && mp.creating == 0 {
			delete(a.mods, digest)
		}
	}
}

// sweep closes the instances idle for too long (trim), for a worker whose
// activities have stopped coming.
func (a *activityPool) sweep() {
	a.mu.Lock()
	a.trim(time.Now())
	a.mu.Unlock()
}

// notify wakes get's waiters. The caller holds a.mu.
func (a *activityPool) notify() {
	close(a.changed)
	a.changed = make(chan struct{})
}

func (a *activityPool) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, mp := range a.mods {
		for _, q := range mp.insts {
			q.g.Close(context.Background())
		}
	}
	a.mods = map[string]*modulePool{}
	a.mem = 0
}

// Fair activity slots.
//
// A worker runs at most ActivityConcurrency activities at once, over all the
// modules (apps) whose activities it reads. So that one app with slow or
// hung activities cannot take every slot from the others, a module may hold
// at most ActivityConcurrency minus a reserve of max(1, ActivityConcurrency/4)
// slots (at least one) while another module is active on this worker: it has
// an activity running or waiting for a slot here, or had one within
// fairWindow. A module alone on the worker may use every slot.
//
// Activity streams are per partition and read in order, so a reader cannot
// skip the items it has not read. Among the items of one read, those of
// modules under their cap start first; an item of a module at its cap waits,
// without holding a slot, for one of that module's activities to end, and
// its partition's reader waits with it: later items of that partition wait
// behind it (the reserve serves the other partitions' items). A reader that
// finds every slot held by one module reads one item anyway after
// fairProbeAfter, so that a module new to the worker becomes known and the
// cap applies; that item waits for its slot like any other (delivered, so its
// visibility timeout runs meanwhile). Running activities are never stopped:
// a module over its cap when another one appears keeps its slots until its
// activities end.

// fairWindow is how long a module counts as active on a worker after its
// last activity there.
const fairWindow = time.Minute

// fairProbeAfter is how long a reader waits for a slot held, like all
// others, by one module before it reads one item anyway.
const fairProbeAfter = time.Second

// activitySlots is the worker's activity slots with the per-module cap. sem
// holds a token per slot taken, by a reader about to read or by a running
// activity; waiting senders on a channel are served in order, so no reader
// starves. running and waiting, guarded by mu, apply the cap.
type activitySlots struct {
	sem     chan struct{}
	total   int
	mu      sync.Mutex
	running map[string]int // running activities per module digest
	waiting map[string]int // items waiting for a slot per module digest
	seen    map[string]time.Time
	// changed is closed and replaced whenever a module's count changes.
	changed chan struct{}
}

func newActivitySlots(total int) *activitySlots {
	return &activitySlots{sem: make(chan struct{}, total), total: total, running: map[string]int{}, waiting: map[string]int{},
		seen: map[string]time.Time{}, changed: make(chan struct{})}
}

// notify wakes every waiter. The caller holds s.mu.
func (s *activitySlots) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// capFor is how many slots digest may hold now. The caller holds s.mu.
func (s *activitySlots) capFor(digest string, now time.Time) int {
	for d, at := range s.seen {
		if d == digest {
			continue
		}
		if s.running[d] > 0 || s.waiting[d] > 0 || now.Sub(at) < fairWindow {
			return max(1, s.total-max(1, s.total/4))
		}
		delete(s.seen, d)
	}
	return s.total
}

// free returns how many slots are free.
func (s *activitySlots) free() int { return s.total - len(s.sem) }

// reserve waits for a free slot and takes it, for no module yet. It returns
// false when ctx ends, or after probe (when not zero).
func (s *activitySlots) reserve(ctx context.Context, probe time.Duration) bool {
	if s.tryReserve() {
		return true
	}
	var timeout <-chan time.Time
	if probe > 0 {
		t := time.NewTimer(probe)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case s.sem <- struct{}{}:
		return true
	case <-ctx.Done():
	case <-timeout:
	}
	return false
}

// tryReserve takes a free slot if there is one.
func (s *activitySlots) tryReserve() bool {
	select {
	case s.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

// release gives back n reserved slots.
func (s *activitySlots) release(n int) {
	for ; n > 0; n-- {
		<-s.sem
	}
}

// heldByOne reports whether every slot is held by running activities of a
// single module.
func (s *activitySlots) heldByOne() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.running {
		return len(s.running) == 1 && n == s.total
	}
	return false
}

// admit turns a reserved slot into a running slot of digest if digest is
// under its cap, and reports whether it did.
func (s *activitySlots) admit(digest string) bool {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[digest] = now
	if s.running[digest] >= s.capFor(digest, now) {
		return false
	}
	s.running[digest]++
	return true
}

// acquire waits until digest is under its cap and a slot is free, and takes
// the slot for digest. It returns false when ctx ends.
func (s *activitySlots) acquire(ctx context.Context, digest string) bool {
	s.mu.Lock()
	s.waiting[digest]++
	s.seen[digest] = time.Now()
	s.notify() // the caps of the other modules may have changed
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.waiting[digest]--; s.waiting[digest] == 0 {
			delete(s.waiting, digest)
		}
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		under := s.running[digest] < s.capFor(digest, time.Now())
		ch := s.changed
		s.mu.Unlock()
		if !under {
			// Caps also change as fairWindow passes: look again each
			// second.
			t := time.NewTimer(time.Second)
			select {
			case <-ch:
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return false
			}
			t.Stop()
			continue
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		if s.admit(digest) {
			return true
		}
		s.release(1) // another item of digest came first
	}
}

// done releases a running slot of digest.
func (s *activitySlots) done(digest string) {
	s.mu.Lock()
	if s.running[digest]--; s.running[digest] <= 0 {
		delete(s.running, digest)
	}
	s.seen[digest] = time.Now()
	s.notify()
	s.mu.Unlock()
	<-s.sem
}

// activityLoop reads the activity items of partition p and runs them until
// ctx ends, then waits for the running ones to return.
func (w *Worker) activityLoop(ctx context.Context, p int) {
	// Activities run to completion when ctx ends, until the shutdown grace
	// passes and w.guests is aborted (see Run).
	l := &activityReader{w: w, ctx: ctx, p: p, work: w.guests.With(context.WithoutCancel(ctx)), slots: w.acts.slots}
	defer l.wg.Wait()
	for ctx.Err() == nil {
		reserved, probe, ok := l.reserve()
		if !ok {
			continue // no slot yet; the loop ends if ctx ended
		}
		items, ok := l.next(reserved, probe)
		if !ok {
			continue
		}
		if !l.start(items, reserved) {
			return // unstarted items stay pending and are reclaimed later
		}
	}
}

// activityReader is one activityLoop: it reads the activity items of
// partition p while ctx lasts and runs them, with work as their context,
// within the worker's slots.
type activityReader struct {
	w     *Worker
	ctx   context.Context
	p     int
	work  context.Context
	slots *activitySlots
	// wg counts the running activities.
	wg sync.WaitGroup
	// lastClaim is when the reader last claimed expired items; lastReclaim
	// when it last reclaimed the items of dead workers.
	lastClaim, lastReclaim time.Time
}

// run runs item in its own goroutine; it holds a running slot of its module,
// which it gives back when done.
func (l *activityReader) run(item host.ActivityItem) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer l.slots.done(item.Digest)
		defer l.w.touchWhileRunning(l.work, item)()
		l.w.runActivity(l.work, &item)
	}()
}

// reserve waits for a free slot before work is taken off the stream, and
// returns how many it reserved (0 or 1) and whether the read is a probe:
// when one module holds every slot past fairProbeAfter, one item is read
// anyway (see fairProbeAfter). It returns false, with nothing reserved,
// when ctx ended or the slots are held by several modules.
func (l *activityReader) reserve() (reserved int, probe bool, ok bool) {
	if l.slots.reserve(l.ctx, fairProbeAfter) {
		return 1, false, true
	}
	if l.ctx.Err() != nil || !l.slots.heldByOne() {
		return 0, false, false
	}
	return 0, true, true
}

// next reads the next items, as many as there are free slots (one for a
// probe). When there are none, or the read fails (logged, then a pause), it
// gives back the reserved slots and returns false.
func (l *activityReader) next(reserved int, probe bool) ([]host.ActivityItem, bool) {
	free := reserved + l.slots.free()
	if probe {
		free = 1
	}
	items, err := l.fetch(free, probe)
	if err != nil || len(items) == 0 {
		l.slots.release(reserved)
		if err != nil && l.ctx.Err() == nil {
			l.w.log.Warn("read activities", "partition", l.p, "err", err)
			sleepCtx(l.ctx, 200*time.Millisecond)
		}
		return nil, false
	}
	return items, true
}

// fetch returns up to free items of the partition: expired items claimed
// from other workers (at most every quarter visibility timeout, never for a
// probe), else new items read from the stream.
func (l *activityReader) fetch(free int, probe bool) ([]host.ActivityItem, error) {
	w := l.w
	var items []host.ActivityItem
	var err error
	if live := w.liveWorkers(); !probe && live != nil && time.Since(l.lastReclaim) > w.opts.LeaseTTL/2 {
		l.lastReclaim = time.Now()
		items, err = w.store.ReclaimActivities(l.ctx, l.p, w.opts.ID, live, w.opts.LeaseTTL, free)
		if len(items) > 0 {
			w.log.Info("reclaimed the activities of a worker that is gone", "partition", l.p, "items", len(items))
		}
	}
	if err == nil && len(items) == 0 && !probe && time.Since(l.lastClaim) > w.opts.VisibilityTimeout/4 {
		l.lastClaim = time.Now()
		items, err = w.store.ClaimActivities(l.ctx, l.p, w.opts.ID, w.opts.VisibilityTimeout, free)
	}
	if err == nil && len(items) == 0 {
		// A reader holding the last free slot blocks on its stream
		// briefly, so that the slot goes round the partitions rather
		// than waiting a second on each empty one.
		block := time.Second
		if free <= 1 {
			block = 100 * time.Millisecond
		}
		items, err = w.store.ReadActivities(l.ctx, l.p, w.opts.ID, min(free, 32), block)
	}
	return items, err
}

// start runs items, using the reserved slots (0 or 1) first: the items
// whose module is under its cap start at once; the others wait for a slot
// of their module, in order. It returns false when ctx ended before every
// item started.
func (l *activityReader) start(items []host.ActivityItem, reserved int) bool {
	slots := l.slots
	var blocked []host.ActivityItem
	for _, item := range items {
		if reserved == 0 {
			if !slots.tryReserve() {
				blocked = append(blocked, item)
				continue
			}
			reserved = 1
		}
		if slots.admit(item.Digest) {
			reserved--
			l.run(item)
		} else {
			blocked = append(blocked, item)
		}
	}
	slots.release(reserved)
	for _, item := range blocked {
		if !slots.acquire(l.ctx, item.Digest) {
			return false
		}
		l.run(item)
	}
	return true
}

// runActivity executes one work item and posts its result. An item whose
// worker could not run it (shutdown, store error) stays pending and is
// redelivered after the visibility timeout.
func (w *Worker) runActivity(ctx context.Context, item *host.ActivityItem) {
	al := &activityLog{base: w.log, item: item}
	if item.Deliveries > w.opts.MaxDeliveries {
		log := al.logger()
		// Give up: the orchestration sees the failure, and the item is parked
		// in the dead-letter stream (`durablewasm dead-letters`), in one
		// store operation.
		reason := fmt.Sprintf("activity delivered %d times without completing (its worker crashed or timed out each time); giving up after %d", item.Deliveries, w.opts.MaxDeliveries)
		f := &abi.FailureDetails{Type: abi.FailurePoisonMessage, Message: reason, Source: activitySource(item)}
		msg := host.ControlMessage{InstanceID: item.InstanceID, ExecutionID: item.ExecutionID, Event: abi.HistoryEvent{EventID: -1,
			Type: abi.EventTaskFailed, Timestamp: w.opts.Now().UnixNano(), TaskScheduledID: item.TaskID, Failure: f}}
		if err := w.store.DeadLetterActivity(ctx, *item, reason, msg); err != nil {
			log.Error("cannot dead-letter activity; it will be redelivered", "err", err)
			return
		}
		log.Warn("activity dead-lettered", "deliveries", item.Deliveries)
		return
	}
	ev, err := w.execActivity(ctx, item, al)
	if err != nil {
		al.logger().Warn("activity could not run; it will be redelivered", "err", err)
		return
	}
	msg := host.ControlMessage{InstanceID: item.InstanceID, ExecutionID: item.ExecutionID, Event: ev}
	for attempt := 0; ; attempt++ {
		var err error
		if attempt == 0 {
			err = w.completions.complete(ctx, *item, msg)
		} else {
			err = w.store.CompleteActivity(ctx, *item, msg)
		}
		if err == nil {
			return
		}
		if attempt >= 5 {
			al.logger().Error("cannot post activity result; it will be redelivered", "err", err)
			return
		}
		time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
	}
}

// execActivity runs one activity and returns its TaskCompleted or TaskFailed
// event. An error means the activity could not run at all (module not
// loadable, instance not creatable, guest unusable): nothing is to be
// reported for it, and it must be run again.
func (w *Worker) execActivity(ctx context.Context, item *host.ActivityItem, log *activityLog) (abi.HistoryEvent, error) {
	if item.Name == abi.ActivityHTTP {
		return w.execHTTP(ctx, item), nil
	}
	if err := w.module(ctx, item.Digest); err != nil {
		return abi.HistoryEvent{}, fmt.Errorf("load module: %w", err)
	}
	ctx = w.guests.With(ctx)
	var ok bool
	var payload string
	var gf *replay.GuestFailure
	var err error
	for attempt := 1; ; attempt++ {
		var p *pooled
		p, err = w.acts.get(ctx, item.Digest, w.settings(ctx, item.Digest))
		if errors.As(err, &gf) {
			// The module's start function or _initialize trapped or
			// overran, now or within the engine's InstantiateRetryAfter:
			// the activity fails with that failure, at once, and the
			// orchestration sees it (rather than the item being
			// redelivered, and failing again, after every visibility
			// timeout).
			break
		} else if err != nil {
			return abi.HistoryEvent{}, fmt.Errorf("instantiate module: %w", err)
		}
		began := time.Now()
		ok, payload, err = p.g.RunActivity(ctx, item, log.logger, w.opts.ManagementPayload)
		aborted := p.g.Aborted()
		w.acts.put(p)
		if aborted {
			// The shutdown interrupted it (or what it waited for): not
			// its result.
			return abi.HistoryEvent{}, fmt.Errorf("activity: %w", sandbox.ErrAborted)
		}
		if errors.Is(err, sandbox.ErrDiscarded) && attempt < 3 {
			// Another activity's call broke the instance this one was
			// parked on: run it again, from the start, on another.
			continue
		}
		w.stats.observe(item.Digest, item.Name, time.Since(began))
		break
	}
	if errors.As(err, &gf) {
		ok, payload = false, failurePayload(gf.Failure)
	} else if err != nil {
		return abi.HistoryEvent{}, err
	}
	if limit := w.limits(ctx, item.Digest).MaxPayloadBytes; len(payload) > limit {
		ok, payload = false, failurePayload(&abi.FailureDetails{Type: abi.FailureLimitExceeded, Code: replay.CodeLimit,
			Message: fmt.Sprintf("the activity's result is %d bytes, over the payload limit of %d bytes", len(payload), limit)})
	}
	ev := abi.HistoryEvent{EventID: -1, Type: abi.EventTaskCompleted, Timestamp: w.opts.Now().UnixNano(), TaskScheduledID: item.TaskID, Result: payload}
	if !ok {
		f := abi.DecodeFailure([]byte(payload))
		if f.Source == "" {
			f.Source = activitySource(item)
		}
		ev.Type, ev.Result, ev.Failure = abi.EventTaskFailed, "", f
	}
	return ev, nil
}

// activitySource names an activity run in failure details.
func activitySource(item *host.ActivityItem) string {
	return fmt.Sprintf("activity %s (task %d)", item.Name, item.TaskID)
}

// activityLog is the logger of one activity run, with the run's attributes,
// made on first use: most runs log nothing, and slog.Logger.With allocates.
type activityLog struct {
	base  *slog.Logger
	item  *host.ActivityItem
	local bool
	l     *slog.Logger
}

func (a *activityLog) logger() *slog.Logger {
	if a.l == nil {
		a.l = a.base.With("instanceId", a.item.InstanceID, "activity", a.item.Name, "taskId", a.item.TaskID)
		if a.local {
			a.l = a.l.With("local", true)
		}
	}
	return a.l
}

// activityStats keeps, per module digest and activity name, a moving
// average of how long the activity took on this worker. Local activities
// are chosen from it.
type activityStats struct {
	mu sync.Mutex
	m  map[activityKey]time.Duration
}

type activityKey struct{ digest, name string }

// observe records one run of d.
func (s *activityStats) observe(digest, name string, d time.Duration) {
	k := activityKey{digest, name}
	s.mu.Lock()
	if s.m == nil {
		s.m = map[activityKey]time.Duration{}
	}
	if old, ok := s.m[k]; ok {
		d = (old*7 + d) / 8
	}
	s.m[k] = d
	s.mu.Unlock()
}

// average returns the moving average of name's runs and whether there is one.
func (s *activityStats) average(digest, name string) (time.Duration, bool) {
	s.mu.Lock()
	d, ok := s.m[activityKey{digest, name}]
	s.mu.Unlock()
	return d, ok
}

// fast reports whether the activity has run on this worker and its average
// run time is at most limit.
func (s *activityStats) fast(digest, name string, limit time.Duration) bool {
	s.mu.Lock()
	d, ok := s.m[activityKey{digest, name}]
	s.mu.Unlock()
	return ok && d <= limit
}

// failurePayload is f as the JSON of a failed activity's result.
func failurePayload(f *abi.FailureDetails) string {
	b, _ := json.Marshal(f) // a FailureDetails always encodes
	return string(b)
}
