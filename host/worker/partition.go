package worker

// The partition loop: while this worker holds a partition's lease it
// reads the partition's control messages (and, after a takeover or a failed
// batch, claims the pending ones), fires due timers, and hands each batch to
// processBatch.

import (
	"context"
	"errors"
	"time"

	"github.com/durablewasm/durablewasm/host"
)

// partitionLoop serves partition p, leased at epoch, until ctx ends or the
// lease is lost.
func (w *Worker) partitionLoop(ctx context.Context, p int, epoch int64) {
	log := w.log.With("partition", p, "epoch", epoch)
	// Steps and commits run to completion even when ctx ends, so a shutdown
	// never cuts a guest call or a commit in half.
	work := context.WithoutCancel(ctx)
	reclaim := true
	var tm timerSchedule
	lastReclaim := w.opts.Now()
	for ctx.Err() == nil {
		var msgs []host.ControlMessage
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
			if !tm.fire(work, w, p, epoch, now) {
				log.Warn("lease lost while firing timers")
				return
			}
			nextTimer := tm.next
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
		tm.expect(earliest)
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

// timerSchedule is when a partition loop fires its due timers next.
type timerSchedule struct {
	// next is the fire time of the earliest timer known (zero: none known;
	// the set is checked every second then).
	next    time.Time
	checked time.Time
}

// fire moves the partition's due timers to its control stream when one is
// due by now (or a second passed without a known timer) and learns the next
// fire time. It returns false if the lease was lost.
func (t *timerSchedule) fire(ctx context.Context, w *Worker, p int, epoch int64, now time.Time) bool {
	if !(t.next.IsZero() && now.Sub(t.checked) > time.Second || !t.next.IsZero() && !now.Before(t.next)) {
		return true
	}
	fired, next, err := w.store.FireDueTimers(ctx, p, epoch, now, 1000)
	if errors.Is(err, host.ErrStaleEpoch) {
		return false
	}
	if err == nil {
		t.next, t.checked = next, now
		if fired == 0 && !next.IsZero() && !now.Before(next) {
			// Due by this worker's clock but not by Redis' (the store never
			// fires early): check again shortly.
			t.next = now.Add(50 * time.Millisecond)
		}
	}
	return true
}

// expect notes a timer just committed to fire at at (zero: none).
func (t *timerSchedule) expect(at time.Time) {
	if !at.IsZero() && (t.next.IsZero() || at.Before(t.next)) {
		t.next = at
	}
}
