package durable

import (
	"errors"
	"fmt"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/guest-sdk/internal/bridge"
)

// Task is the pending result of an activity, sub-orchestration, timer or
// external event, or a composition of those (WhenAll, retries, waits with a
// timeout). Tasks are created by an OrchestrationContext and must be awaited
// from the orchestrator's goroutine.
type Task interface {
	// Await blocks (durably: the orchestration may be unloaded and replayed
	// meanwhile) until the task completed, then decodes its JSON result into
	// v unless v is nil. It returns a *TaskFailedError when an activity or
	// sub-orchestration failed, an error wrapping ErrTimeout when a wait
	// timed out, or a decoding error. Await may be called again; it returns
	// the same outcome.
	Await(v any) error

	// state machine, driven by await
	ctxOf() *OrchestrationContext
	isDone() bool
	// waitIDs appends the unresolved primitive host task ids this task
	// currently waits on.
	waitIDs(dst []int32) []int32
	// advance handles the resolution of primitive task id; it reports
	// whether the id belonged to this task.
	advance(id int32) bool
	// result is valid once isDone: JSON payload or error.
	result() ([]byte, error)
	// doneSeq orders completed tasks by local completion.
	doneSeq() uint64
	// cancel completes the task at once with ErrCanceled unless it is done,
	// withdrawing the primitive tasks it waits on.
	cancel()
}

// Cancel cancels tasks that have not completed: each completes at once, and
// Await on it returns an error for which errors.Is(err, ErrCanceled) holds
// (WhenAll over a canceled task returns that error; WhenAny may return a
// canceled task as the winner). Tasks already completed are left as they
// are. The host is told through cancel_task: an event wait is withdrawn (it
// consumes no later event); a timer, activity or sub-orchestration goes on
// running at the host and its result is ignored. Cancel is deterministic,
// like everything an orchestrator does: a replay cancels the same tasks.
func (c *OrchestrationContext) Cancel(tasks ...Task) {
	for _, t := range tasks {
		if t != nil {
			t.cancel()
		}
	}
}

// await drives t until it is done, polling the host and parking while nothing
// it waits on is resolved.
func (c *OrchestrationContext) await(t Task) {
	for !t.isDone() {
		c.ids = t.waitIDs(c.ids[:0])
		idx := c.poll(c.ids)
		if idx < 0 {
			c.o.park()
			continue
		}
		if !t.advance(c.ids[idx]) {
			panic(fmt.Sprintf("durable: internal error: resolved task %d belongs to no awaited task", c.ids[idx]))
		}
	}
}

// poll returns the index of the first resolved id, or -1.
func (c *OrchestrationContext) poll(ids []int32) int {
	if len(ids) == 0 {
		panic("durable: internal error: awaiting a task with nothing to wait on")
	}
	r := c.o.mustCall(func(h bridge.Host, hd int32) int64 { return int64(h.Poll(hd, ids)) })
	switch {
	case r == abi.PollNone:
		return -1
	case r < 0 || r >= int64(len(ids)):
		panic(&HostError{Func: abi.ImportPoll, Code: r})
	}
	return int(r)
}

func (c *OrchestrationContext) nextDoneSeq() uint64 {
	c.doneAt++
	return c.doneAt
}

func awaitInto(t Task, v any) error {
	t.ctxOf().await(t)
	payload, err := t.result()
	if err != nil {
		return err
	}
	if v == nil || len(payload) == 0 {
		return nil
	}
	if err := decodeJSON(payload, v); err != nil {
		return fmt.Errorf("decode task result: %w", err)
	}
	return nil
}

// primTask is one host task: an activity, sub-orchestration, timer or event
// wait.
type primTask struct {
	c       *OrchestrationContext
	id      int32
	kind    string // "activity", "sub-orchestration", "timer", "event"
	name    string
	done    bool
	seq     uint64
	payload []byte
	err     error
}

// newPrim wraps the result of a scheduling host call. A negative id (other
// than the codes that abort) makes a task that is already failed. When the
// orchestration is stopped the call was a no-op; the task never completes
// and awaiting it unwinds the goroutine.
func (c *OrchestrationContext) newPrim(res int64, fn, kind, name string) *primTask {
	t := &primTask{c: c, id: int32(res), kind: kind, name: name}
	if res < 0 && !c.o.isDead() {
		t.done, t.seq = true, c.nextDoneSeq()
		t.err = fmt.Errorf("schedule %s %s: %w", kind, name, &HostError{Func: fn, Code: res})
	}
	return t
}

func (c *OrchestrationContext) failedTask(err error) Task {
	return &primTask{c: c, id: -1, done: true, seq: c.nextDoneSeq(), err: err}
}

func (t *primTask) Await(v any) error            { return awaitInto(t, v) }
func (t *primTask) ctxOf() *OrchestrationContext { return t.c }
func (t *primTask) isDone() bool                 { return t.done }
func (t *primTask) result() ([]byte, error)      { return t.payload, t.err }
func (t *primTask) doneSeq() uint64              { return t.seq }

func (t *primTask) cancel() {
	if t.done {
		return
	}
	if t.id >= 0 {
		id := t.id
		t.c.o.call(func(h bridge.Host, hd int32) int64 { return int64(h.CancelTask(hd, id)) })
	}
	t.done, t.seq = true, t.c.nextDoneSeq()
	t.err = fmt.Errorf("%s %s (task %d): %w", t.kind, t.name, t.id, ErrCanceled)
}

func (t *primTask) waitIDs(dst []int32) []int32 {
	if t.done {
		return dst
	}
	return append(dst, t.id)
}

func (t *primTask) advance(id int32) bool {
	if t.done || id != t.id {
		return false
	}
	kind, payload := t.c.taskResult(id)
	t.done, t.seq = true, t.c.nextDoneSeq()
	switch kind {
	case abi.ResultOK:
		t.payload = payload
	case abi.ResultFailed:
		t.err = &TaskFailedError{Kind: t.kind, Name: t.name, TaskID: t.id, Details: abi.DecodeFailure(payload)}
	default:
		panic(fmt.Errorf("durable: host reported task %d resolved but its result is pending", id))
	}
	return true
}

// taskResult fetches a resolved task's payload with the buffer protocol: a
// small buffer first, then one of the exact size the host asked for.
func (c *OrchestrationContext) taskResult(id int32) (kind int64, payload []byte) {
	buf := make([]byte, 256)
	for {
		r := c.o.mustCall(func(h bridge.Host, hd int32) int64 { return h.TaskResult(hd, id, buf) })
		if r < 0 {
			panic(&HostError{Func: abi.ImportTaskResult, Code: r})
		}
		kind, n := r>>32, int(uint32(r))
		if n <= len(buf) {
			return kind, buf[:n:n]
		}
		buf = make([]byte, n)
	}
}

// whenAllTask completes when all its children completed.
type whenAllTask struct {
	c        *OrchestrationContext
	children []Task
	seq      uint64
}

// WhenAll returns a task that completes when every task completed. Await on
// it decodes a JSON array of the results in task order (into a
// []json.RawMessage or a slice of a concrete type, e.g. with
// Await[[]string]); if any task failed it returns the error of the first
// failed task in task order, after all tasks completed. Canceling it cancels
// the tasks.
func (c *OrchestrationContext) WhenAll(tasks ...Task) Task {
	return &whenAllTask{c: c, children: append([]Task(nil), tasks...)}
}

// WhenAll is ctx.WhenAll(tasks...).
//
// Deprecated: use the method OrchestrationContext.WhenAll.
func WhenAll(ctx *OrchestrationContext, tasks ...Task) Task { return ctx.WhenAll(tasks...) }

func (t *whenAllTask) cancel() {
	for _, ch := range t.children {
		ch.cancel()
	}
}

func (t *whenAllTask) Await(v any) error            { return awaitInto(t, v) }
func (t *whenAllTask) ctxOf() *OrchestrationContext { return t.c }
func (t *whenAllTask) doneSeq() uint64              { return t.seq }

func (t *whenAllTask) isDone() bool {
	if t.seq != 0 {
		return true
	}
	for _, ch := range t.children {
		if !ch.isDone() {
			return false
		}
	}
	t.seq = t.c.nextDoneSeq()
	return true
}

func (t *whenAllTask) waitIDs(dst []int32) []int32 {
	for _, ch := range t.children {
		if !ch.isDone() {
			dst = ch.waitIDs(dst)
		}
	}
	return dst
}

func (t *whenAllTask) advance(id int32) bool {
	for _, ch := range t.children {
		if !ch.isDone() && ch.advance(id) {
			return true
		}
	}
	return false
}

func (t *whenAllTask) result() ([]byte, error) {
	out := []byte{'['}
	for i, ch := range t.children {
		p, err := ch.result()
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, ',')
		}
		if len(p) == 0 {
			p = []byte("null")
		}
		out = append(out, p...)
	}
	return append(out, ']'), nil
}

// WhenAny is ctx.WhenAny(tasks...).
//
// Deprecated: use the method OrchestrationContext.WhenAny.
func WhenAny(ctx *OrchestrationContext, tasks ...Task) (Task, error) { return ctx.WhenAny(tasks...) }

// WhenAny waits until at least one of tasks completed (successfully or not)
// and returns it: the one whose completion the host recorded first. The
// other tasks keep running and may be awaited later, or canceled with
// Cancel. Use Await on the winner to get its result. It returns an error
// only when tasks is empty.
func (c *OrchestrationContext) WhenAny(tasks ...Task) (Task, error) {
	if len(tasks) == 0 {
		return nil, errors.New("durable: WhenAny needs at least one task")
	}
	var winner Task
	for _, t := range tasks {
		if t.isDone() && (winner == nil || t.doneSeq() < winner.doneSeq()) {
			winner = t
		}
	}
	for winner == nil {
		c.ids = c.ids[:0]
		for _, t := range tasks {
			c.ids = t.waitIDs(c.ids)
		}
		idx := c.poll(c.ids)
		if idx < 0 {
			c.o.park()
			continue
		}
		id, consumed := c.ids[idx], false
		for _, t := range tasks {
			if !t.isDone() && t.advance(id) {
				consumed = true
				if t.isDone() {
					winner = t
				}
				break
			}
		}
		if !consumed {
			panic(fmt.Sprintf("durable: internal error: resolved task %d belongs to no awaited task", id))
		}
	}
	return winner, nil
}

// timeoutTask is an event wait raced against a timer.
type timeoutTask struct {
	c       *OrchestrationContext
	name    string
	timeout time.Duration
	wait    *primTask
	timer   *primTask
	seq     uint64
	payload []byte
	err     error
}

func (t *timeoutTask) Await(v any) error            { return awaitInto(t, v) }
func (t *timeoutTask) ctxOf() *OrchestrationContext { return t.c }
func (t *timeoutTask) isDone() bool                 { return t.seq != 0 }
func (t *timeoutTask) result() ([]byte, error)      { return t.payload, t.err }
func (t *timeoutTask) doneSeq() uint64              { return t.seq }

func (t *timeoutTask) waitIDs(dst []int32) []int32 {
	if t.isDone() {
		return dst
	}
	return t.timer.waitIDs(t.wait.waitIDs(dst))
}

func (t *timeoutTask) advance(id int32) bool {
	if t.isDone() {
		return false
	}
	switch {
	case t.wait.advance(id):
		t.payload, t.err = t.wait.result()
		t.timer.cancel() // the event won: the timer is not awaited any more
	case t.timer.advance(id):
		if _, err := t.timer.result(); err != nil {
			t.err = err
			break
		}
		t.wait.cancel() // withdrawn: it consumes no later event
		t.err = fmt.Errorf("wait for event %q (%s): %w", t.name, t.timeout, ErrTimeout)
	default:
		return false
	}
	t.seq = t.c.nextDoneSeq()
	return true
}

func (t *timeoutTask) cancel() {
	if t.isDone() {
		return
	}
	t.wait.cancel()
	t.timer.cancel()
	t.err = fmt.Errorf("wait for event %q: %w", t.name, ErrCanceled)
	t.seq = t.c.nextDoneSeq()
}

// If either primitive failed to be scheduled, the composite completes with
// that error at once.
func (t *timeoutTask) checkScheduled() {
	for _, p := range []*primTask{t.wait, t.timer} {
		if p.done && p.err != nil && t.seq == 0 {
			t.err, t.seq = p.err, t.c.nextDoneSeq()
		}
	}
}
