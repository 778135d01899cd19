package worker

import (
	"context"
	"sync"
	"time"

	"github.com/durablewasm/durablewasm/host"
)

// Liveness.
//
// Every worker, whatever it runs, records itself in the hub's alive set
// every LeaseTTL/4 for LeaseTTL (Store.Alive). An activity reader reclaims,
// every LeaseTTL/2, the items of its partition held by consumers of workers
// that are not alive (Store.ReclaimActivities): a dead worker's activities
// run again within about LeaseTTL, not after the visibility timeout, and
// its consumers are removed from the groups. A running activity is touched
// every VisibilityTimeout/3 (Store.TouchActivity), so that a long activity
// is not taken from its live worker: the visibility timeout is left as the
// last resort for a worker alive but stuck.

// aliveWorkers is a list of alive workers and when it was read.
type aliveWorkers struct {
	ids []string
	at  time.Time
}

// aliveLoop records the worker as alive until ctx ends, then removes it.
func (w *Worker) aliveLoop(ctx context.Context) {
	ttl := w.opts.LeaseTTL
	tick := time.NewTicker(ttl / 4)
	defer tick.Stop()
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = w.store.LeaveWorkers(rctx, w.opts.ID)
		cancel()
	}()
	for {
		w.acts.sweep() // idle activity instances go even when no activity comes
		if ids, err := w.store.Alive(ctx, w.opts.ID, ttl); err == nil {
			w.alive.Store(&aliveWorkers{ids: ids, at: time.Now()})
		} else if ctx.Err() == nil {
			w.log.Warn("liveness heartbeat failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// liveWorkers returns the alive workers, or nil when the list is older than
// half a LeaseTTL (reclaiming on it could take a live worker's work).
func (w *Worker) liveWorkers() []string {
	a := w.alive.Load()
	if a == nil || time.Since(a.at) > w.opts.LeaseTTL/2 {
		return nil
	}
	return a.ids
}

// touchWhileRunning touches item every VisibilityTimeout/3 until the
// returned stop is called. It is a timer, not a goroutine: most activities
// end long before the first touch.
func (w *Worker) touchWhileRunning(ctx context.Context, item host.ActivityItem) (stop func()) {
	every := w.opts.VisibilityTimeout / 3
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	t = time.AfterFunc(every, func() {
		if err := w.store.TouchActivity(ctx, item, w.opts.ID); err != nil && ctx.Err() == nil {
			w.log.Warn("activity heartbeat failed", "instanceId", item.InstanceID, "activity", item.Name, "err", err)
		}
		mu.Lock()
		if !stopped {
			t.Reset(every)
		}
		mu.Unlock()
	})
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
