package worker

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
)

// Local activities (Options.LocalActivityMax).
//
// After a batch's steps are built and before they are committed, the worker
// runs the activities those steps scheduled that are known to be fast, feeds
// their results to the orchestrations, and steps them again; the new events,
// actions and state are folded into each instance's one pending commit. It
// repeats while the steps keep scheduling fast activities and the budget
// lasts. The history is the same as if the activities had gone through the
// activity stream (TaskScheduled in one episode, TaskCompleted in the next),
// so replay, rewind and queries cannot tell the difference.
//
// Nothing is written before the commit: if the worker dies first, the
// messages that started the batch are still pending, the batch runs again,
// and so do its activities (at least once, as for streamed activities) —
// through the activity stream this time: messages claimed after a crash or
// takeover never run local activities, so an activity that crashes its
// worker is counted and dead-lettered like any streamed one. If a
// later step fails (the guest trapped), that instance keeps the commit it had
// before the failed step, its local results are dropped and its activities go
// to the stream; its warm state, which ran ahead, is discarded.

// localJob is one activity run locally.
type localJob struct {
	commit int // index into the batch's commits
	item   host.ActivityItem
	ev     abi.HistoryEvent
	ok     bool
}

// localActivitiesEnabled reports whether this worker runs local activities.
func (w *Worker) localActivitiesEnabled() bool {
	return w.opts.LocalActivityMax > 0 && !w.opts.NoActivities
}

// runLocalActivities extends commits (whose warm entries are entries) with
// the results of their fast activities and the steps those results wake,
// until no step schedules a fast activity or time since started exceeds the
// budget.
func (w *Worker) runLocalActivities(ctx context.Context, p int, epoch int64, commits []host.Commit, entries []*warm, started time.Time) {
	// fresh[i] is where the activities of commit i's latest step begin: the
	// earlier ones were not fast and stay for the stream.
	fresh := make([]int, len(commits))
	for time.Since(started) < w.opts.LocalActivityBudget {
		var jobs []*localJob
		for i := range commits {
			c := &commits[i]
			if entries[i].stale || entries[i].state.Finished() {
				continue
			}
			for _, a := range c.Activities[fresh[i]:] {
				if w.stats.fast(a.Digest, a.Name, w.opts.LocalActivityMax) {
					a.Deliveries = 1
					jobs = append(jobs, &localJob{commit: i, item: a})
				}
			}
		}
		if len(jobs) == 0 {
			return
		}
		w.runJobs(ctx, jobs)
		byCommit := map[int][]*localJob{}
		var order []int
		for _, j := range jobs {
			if !j.ok {
				// It could not run here: it, and the rest of this step's
				// activities if none ran, go to the stream (not tried
				// again in the next round).
				if byCommit[j.commit] == nil {
					fresh[j.commit] = len(commits[j.commit].Activities)
				}
				continue
			}
			if byCommit[j.commit] == nil {
				order = append(order, j.commit)
			}
			byCommit[j.commit] = append(byCommit[j.commit], j)
		}
		for _, i := range order {
			w.stepLocal(ctx, p, epoch, &commits[i], entries[i], byCommit[i], &fresh[i])
		}
	}
}

// serialLocalWork is how much local activity work (by the activities'
// average run times) runJobs runs one after the other on the calling
// goroutine rather than in parallel: below it, hand-offs and spreading the
// runs over more Wasm instances (each cold in the CPU caches) cost more than
// the parallelism gains, and other partitions keep the other cores busy.
const serialLocalWork = 500 * time.Microsecond

// runJobs runs jobs, concurrently (at most ActivityConcurrency at a time)
// unless they are predicted to take less than serialLocalWork in all: then
// one after the other on the calling goroutine.
func (w *Worker) runJobs(ctx context.Context, jobs []*localJob) {
	ctx = w.guests.With(ctx) // once, not once per activity (execActivity)
	var work time.Duration
	for _, j := range jobs {
		d, _ := w.stats.average(j.item.Digest, j.item.Name)
		if work += d; work >= serialLocalWork {
			break
		}
	}
	if len(jobs) == 1 || work < serialLocalWork {
		w.local <- struct{}{}
		for _, j := range jobs {
			w.runJob(ctx, j)
		}
		<-w.local
		return
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		w.local <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-w.local }()
			w.runJob(ctx, j)
		}()
	}
	wg.Wait()
}

func (w *Worker) runJob(ctx context.Context, j *localJob) {
	al := &activityLog{base: w.log, item: &j.item, local: true}
	ev, err := w.execActivity(ctx, &j.item, al)
	if err != nil {
		al.logger().Warn("local activity could not run; it goes to the activity stream", "err", err)
		return
	}
	j.ev, j.ok = ev, true
}

// stepLocal feeds the results of jobs (all of commit c) to the orchestration
// and folds the step into c. fresh is updated to where the new step's
// activities begin in c.Activities.
func (w *Worker) stepLocal(ctx context.Context, p int, epoch int64, c *host.Commit, e *warm, jobs []*localJob, fresh *int) {
	done := map[int32]bool{}
	events := make([]abi.HistoryEvent, 0, len(jobs))
	for _, j := range jobs {
		done[j.item.TaskID] = true
		events = append(events, j.ev)
	}
	guest := e.inst.Orchestration(ctx, e.handle)
	meta := e.meta
	var res *replay.StepResult
	err := guest.Locked(func() (err error) {
		res, err = e.state.Step(w.opts.Now().UnixNano(), events, guest)
		return err
	})
	if err != nil {
		// The guest ran ahead of the commit and cannot be trusted: keep the
		// commit as it was (its activities go to the stream) and rebuild
		// the instance from history next time.
		w.log.Warn("step after local activities failed; the activities go to the activity stream", "instanceId", e.id, "err", err)
		e.meta = meta
		e.stale = true
		return
	}
	kept := c.Activities[:0]
	for _, a := range c.Activities {
		if !done[a.TaskID] {
			kept = append(kept, a)
		}
	}
	c.Activities = kept
	next := w.buildCommit(ctx, p, epoch, e, res)
	if next.ResetHistory {
		c.NewEvents, c.ResetHistory = next.NewEvents, true
	} else {
		if free := cap(c.NewEvents) - len(c.NewEvents); free < len(next.NewEvents) {
			// Events are large structs and a sequence of local steps adds
			// a few at a time: grow with room for several more steps
			// rather than doubling from a handful (which allocated ~10 KB
			// per hello5).
			c.NewEvents = slices.Grow(c.NewEvents, len(next.NewEvents)+max(len(c.NewEvents), 8))
		}
		c.NewEvents = append(c.NewEvents, next.NewEvents...)
	}
	c.State = next.State
	*fresh = len(c.Activities)
	c.Activities = append(c.Activities, next.Activities...)
	c.Timers = append(c.Timers, next.Timers...)
	c.Local = append(c.Local, next.Local...)
	c.Outbox = append(c.Outbox, next.Outbox...)
}
