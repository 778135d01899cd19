package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
)

// activityPool holds idle activity instances per digest and bounds how many
// activities run at once.
type activityPool struct {
	engine *Engine
	sem    chan struct{}
	mu     sync.Mutex
	idle   map[string][]*guestInstance
}

func newActivityPool(engine *Engine, concurrency int) *activityPool {
	return &activityPool{engine: engine, sem: make(chan struct{}, concurrency), idle: map[string][]*guestInstance{}}
}

func (a *activityPool) get(ctx context.Context, digest string, st *AppSettings) (*guestInstance, error) {
	a.mu.Lock()
	if l := a.idle[digest]; len(l) > 0 {
		g := l[len(l)-1]
		a.idle[digest] = l[:len(l)-1]
		a.mu.Unlock()
		return g, nil
	}
	a.mu.Unlock()
	return a.engine.newInstance(ctx, digest, false, st)
}

func (a *activityPool) put(g *guestInstance) {
	if g.dead.Load() {
		return
	}
	a.mu.Lock()
	a.idle[g.digest] = append(a.idle[g.digest], g)
	a.mu.Unlock()
}

func (a *activityPool) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.idle {
		for _, g := range l {
			g.close(context.Background())
		}
	}
	a.idle = map[string][]*guestInstance{}
}

func (w *Worker) activityLoop(ctx context.Context, p int) {
	var wg sync.WaitGroup
	defer wg.Wait()
	work := context.WithoutCancel(ctx)
	lastClaim := time.Time{}
	for ctx.Err() == nil {
		// Wait for a free slot before taking work off the stream.
		select {
		case w.acts.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		free := 1 + cap(w.acts.sem) - len(w.acts.sem)
		var items []ActivityItem
		var err error
		if time.Since(lastClaim) > w.opts.VisibilityTimeout/4 {
			lastClaim = time.Now()
			items, err = w.store.ClaimActivities(ctx, p, w.opts.ID, w.opts.VisibilityTimeout, free)
		}
		if err == nil && len(items) == 0 {
			items, err = w.store.ReadActivities(ctx, p, w.opts.ID, min(free, 32), time.Second)
		}
		if err != nil || len(items) == 0 {
			<-w.acts.sem
			if err != nil && ctx.Err() == nil {
				w.log.Warn("read activities", "partition", p, "err", err)
				sleepCtx(ctx, 200*time.Millisecond)
			}
			continue
		}
		for i := range items {
			if i > 0 {
				select {
				case w.acts.sem <- struct{}{}:
				case <-ctx.Done():
					return // unread items stay pending and are reclaimed later
				}
			}
			item := items[i]
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-w.acts.sem }()
				w.runActivity(work, &item)
			}()
		}
	}
}

// runActivity executes one work item and posts its result. An item whose
// worker could not run it (shutdown, store error) stays pending and is
// redelivered after the visibility timeout.
func (w *Worker) runActivity(ctx context.Context, item *ActivityItem) {
	al := &activityLog{base: w.log, item: item}
	if item.Deliveries > w.opts.MaxDeliveries {
		log := al.logger()
		// Give up: the orchestration sees the failure, and the item is parked
		// in the dead-letter stream (`durablewasm dead-letters`), in one
		// store operation.
		reason := fmt.Sprintf("activity delivered %d times without completing (its worker crashed or timed out each time); giving up after %d", item.Deliveries, w.opts.MaxDeliveries)
		f := &abi.FailureDetails{Type: "PoisonMessage", Message: reason, Source: activitySource(item)}
		msg := ControlMessage{InstanceID: item.InstanceID, ExecutionID: item.ExecutionID, Event: abi.HistoryEvent{EventID: -1,
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
	msg := ControlMessage{InstanceID: item.InstanceID, ExecutionID: item.ExecutionID, Event: ev}
	for attempt := 0; ; attempt++ {
		err := w.store.CompleteActivity(ctx, *item, msg)
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
func (w *Worker) execActivity(ctx context.Context, item *ActivityItem, log *activityLog) (abi.HistoryEvent, error) {
	if err := w.module(ctx, item.Digest); err != nil {
		return abi.HistoryEvent{}, fmt.Errorf("load module: %w", err)
	}
	g, err := w.acts.get(ctx, item.Digest, w.settings(ctx, item.Digest))
	if err != nil {
		return abi.HistoryEvent{}, fmt.Errorf("instantiate module: %w", err)
	}
	began := time.Now()
	g.mu.Lock()
	ok, payload, err := g.runActivity(ctx, item, log, w.opts.ManagementPayload)
	g.mu.Unlock()
	w.stats.observe(item.Digest, item.Name, time.Since(began))
	w.acts.put(g)
	var gf *replay.GuestFailure
	if errors.As(err, &gf) {
		ok, payload = false, string(encodeJSON(gf.Failure))
	} else if err != nil {
		return abi.HistoryEvent{}, err
	}
	if limit := w.limits(ctx, item.Digest).MaxPayloadBytes; len(payload) > limit {
		ok, payload = false, string(encodeJSON(&abi.FailureDetails{Type: "LimitExceeded", Code: replay.CodeLimit,
			Message: fmt.Sprintf("the activity's result is %d bytes, over the payload limit of %d bytes", len(payload), limit)}))
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
func activitySource(item *ActivityItem) string {
	return fmt.Sprintf("activity %s (task %d)", item.Name, item.TaskID)
}

// activityLog is the logger of one activity run, with the run's attributes,
// made on first use: most runs log nothing, and slog.Logger.With allocates.
type activityLog struct {
	base  *slog.Logger
	item  *ActivityItem
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
