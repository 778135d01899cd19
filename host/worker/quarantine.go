package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/decide"
	"github.com/durablewasm/durablewasm/host/replay"
)

// QuarantineAfter is how many batches in a row may fail to process a control
// message (its step or its commit fails, for a reason other than the store
// being unreachable) before the worker quarantines it: the message is parked
// in its partition's dead-letter stream (Kind DeadLetterControl, shown by
// `durablewasm dead-letters list` and `doctor`), its instance is failed with
// code DW3001 (replay.CodeQuarantined) when it can be, and the partition goes
// on with its other messages. No single message can stop a partition.
const QuarantineAfter = 3

// failureCounts counts, per partition and control stream entry, the batches
// that failed to process the entry.
type failureCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func failureKey(p int, id string) string { return strconv.Itoa(p) + "/" + id }

// add counts one more failure of each of msgs and returns the highest count.
func (f *failureCounts) add(p int, msgs []host.ControlMessage) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]int{}
	}
	n := 0
	for _, m := range msgs {
		k := failureKey(p, m.ID)
		f.m[k]++
		n = max(n, f.m[k])
	}
	return n
}

// forget drops the counts of msgs (processed, or quarantined).
func (f *failureCounts) forget(p int, msgs []host.ControlMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.m) == 0 {
		return
	}
	for _, m := range msgs {
		delete(f.m, failureKey(p, m.ID))
	}
}

// empty reports whether no failure is counted (the common case: the hot path
// then skips forget).
func (f *failureCounts) empty() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m) == 0
}

// transient reports whether err says only that the store could not be
// reached or could not serve for now (host.Unavailable), or that Redis is
// out of memory: such a failure says nothing about the message and never
// counts toward quarantine.
func transient(err error) bool {
	return err != nil && (host.Unavailable(err) || host.HasReplyCode(err, "OOM"))
}

// failed records that processing g failed with cause; after QuarantineAfter
// failures its messages are quarantined. It returns errLeaseLost when the
// lease moved on.
func (w *Worker) failed(ctx context.Context, p int, epoch int64, g *group, cause error) error {
	if transient(cause) || len(g.msgs) == 0 {
		return nil
	}
	if w.failing.add(p, g.msgs) < QuarantineAfter {
		return nil
	}
	return w.quarantine(ctx, p, epoch, g, cause)
}

// quarantine parks g's messages as dead letters and fails their instance.
func (w *Worker) quarantine(ctx context.Context, p int, epoch int64, g *group, cause error) error {
	reason := fmt.Sprintf("processing failed %d times in a row: %v", QuarantineAfter, cause)
	ids, err := w.store.QuarantineControl(ctx, p, epoch, g.msgs, reason)
	if errors.Is(err, host.ErrStaleEpoch) {
		return errLeaseLost
	}
	if err != nil {
		w.log.Error("cannot quarantine control messages; they will be tried again", "partition", p, "instanceId", g.id, "err", err)
		return nil
	}
	w.failing.forget(p, g.msgs)
	if e := w.cache.take(g.id); e != nil {
		w.cache.remove(e)
	}
	var refs []string
	for _, id := range ids {
		if id != "" {
			refs = append(refs, fmt.Sprintf("%d/%s", p, id))
		}
	}
	w.log.Error("quarantined control messages that could not be processed; the partition goes on (see `durablewasm dead-letters list`)",
		"partition", p, "instanceId", g.id, "messages", len(g.msgs), "deadLetters", strings.Join(refs, ","), "err", cause)
	if err := w.failQuarantined(ctx, p, epoch, g.id, refs, cause); err != nil {
		if errors.Is(err, host.ErrStaleEpoch) {
			return errLeaseLost
		}
		w.log.Warn("the instance of quarantined messages could not be marked Failed", "partition", p, "instanceId", g.id, "err", err)
	}
	return nil
}

// failQuarantined fails instance id (if it exists in partition p and has not
// finished) with code DW3001, naming the dead letters, and tells its parent.
func (w *Worker) failQuarantined(ctx context.Context, p int, epoch int64, id string, refs []string, cause error) error {
	n := w.store.Partitions()
	if host.PartitionFor(id, n) != p {
		return nil
	}
	st, err := w.store.GetInstance(ctx, id)
	if errors.Is(err, host.ErrInstanceNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Status.Terminal() {
		return nil
	}
	f := &abi.FailureDetails{Type: abi.FailureQuarantined, Code: replay.CodeQuarantined,
		Message: fmt.Sprintf("a message for this instance could not be processed after %d attempts and was quarantined as dead letter %s: %v; "+
			"fix the cause, then `durablewasm dead-letters replay` puts it back and rewinds the instance", QuarantineAfter, strings.Join(refs, ", "), cause)}
	env := decide.Env{Now: w.opts.Now(), NewID: host.NewInstanceID, Partitions: n}
	c := decide.Fail(env, p, epoch, *st, f)
	errs, err := w.store.Commit(ctx, []host.Commit{c})
	if err == nil {
		err = errs[0]
	}
	if err != nil {
		return err
	}
	if len(c.Outbox) > 0 {
		if _, err := w.store.DeliverOutbox(ctx, p, epoch); err != nil {
			w.log.Warn("deliver outbox", "partition", p, "err", err)
		}
	}
	return nil
}
