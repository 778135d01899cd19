package host

// The partition loop: while this worker holds a partition's lease it
// reads the partition's control messages (and, after a takeover or a failed
// batch, claims the pending ones), fires due timers, and hands each batch to
// processBatch.

import (
	"context"
	"errors"
	"time"
)

// partitionLoop serves partition p, leased at epoch, until ctx ends or the
// lease is lost.
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
