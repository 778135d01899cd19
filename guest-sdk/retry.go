package durable

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// RetryPolicy describes how CallActivity and CallSubOrchestrator retry a
// failed task. Zero fields take defaults as documented. A failure marked
// non-retryable (the activity or sub-orchestrator returned an
// ApplicationError with NonRetryable, or an error wrapped by
// NonRetryableError) is never retried.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, including the first.
	// Values below 1 mean 1 (no retry).
	MaxAttempts int
	// FirstRetryInterval is the wait before the second attempt.
	FirstRetryInterval time.Duration
	// BackoffCoefficient multiplies the wait after each further failure.
	// Values below 1 (including the zero value) mean 1 (constant interval).
	BackoffCoefficient float64
	// MaxRetryInterval caps each wait; zero means no cap.
	MaxRetryInterval time.Duration
	// RetryTimeout bounds the whole retry sequence, measured from the first
	// attempt's scheduling: no retry is scheduled whose timer would fire
	// after it. Zero means no bound.
	RetryTimeout time.Duration
	// NonRetryableErrorTypes are failure types (FailureDetails.Type, e.g.
	// the Type of an ApplicationError the activity returned) that are not
	// retried.
	NonRetryableErrorTypes []string
	// Handle, when non-nil, is called with each failure (a
	// *TaskFailedError) that is otherwise retryable; returning false stops
	// retrying. Match on the failure's type with ErrorType or IsErrorType.
	Handle func(error) bool
}

// delay returns the wait before attempt number next (2 for the first retry).
func (p RetryPolicy) delay(next int) time.Duration {
	coef := p.BackoffCoefficient
	if coef < 1 {
		coef = 1
	}
	d := float64(p.FirstRetryInterval) * math.Pow(coef, float64(next-2))
	if p.MaxRetryInterval > 0 && d > float64(p.MaxRetryInterval) {
		return p.MaxRetryInterval
	}
	if d > math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

// retryTask runs attempts of a primitive task separated by durable timers.
type retryTask struct {
	c        *OrchestrationContext
	policy   RetryPolicy
	schedule func() *primTask
	start    time.Time
	attempt  int       // number of attempts scheduled so far
	cur      *primTask // the running attempt, or nil while waiting
	timer    *primTask // the timer before the next attempt, or nil
	seq      uint64
	payload  []byte
	err      error
}

func (c *OrchestrationContext) newRetryTask(p RetryPolicy, schedule func() *primTask) *retryTask {
	t := &retryTask{c: c, policy: p, schedule: schedule}
	if p.RetryTimeout > 0 {
		t.start = c.CurrentUTCDateTime()
	}
	t.attempt = 1
	t.cur = schedule()
	t.settle()
	return t
}

func (t *retryTask) Await(v any) error            { return awaitInto(t, v) }
func (t *retryTask) ctxOf() *OrchestrationContext { return t.c }
func (t *retryTask) isDone() bool                 { return t.seq != 0 }
func (t *retryTask) result() ([]byte, error)      { return t.payload, t.err }
func (t *retryTask) doneSeq() uint64              { return t.seq }

func (t *retryTask) cancel() {
	if t.isDone() {
		return
	}
	if t.cur != nil {
		t.cur.cancel()
	}
	if t.timer != nil {
		t.timer.cancel()
	}
	t.finish(nil, fmt.Errorf("retried call (attempt %d): %w", t.attempt, ErrCanceled))
}

func (t *retryTask) waitIDs(dst []int32) []int32 {
	switch {
	case t.isDone():
		return dst
	case t.cur != nil:
		return t.cur.waitIDs(dst)
	default:
		return t.timer.waitIDs(dst)
	}
}

func (t *retryTask) advance(id int32) bool {
	switch {
	case t.isDone():
		return false
	case t.cur != nil:
		if !t.cur.advance(id) {
			return false
		}
	case t.timer != nil:
		if !t.timer.advance(id) {
			return false
		}
		if _, err := t.timer.result(); err != nil {
			t.finish(nil, err)
			return true
		}
		t.timer = nil
		t.attempt++
		t.cur = t.schedule()
	default:
		return false
	}
	t.settle()
	return true
}

// settle reacts to a completed attempt: success or a final failure completes
// the task, another failure starts the retry timer.
func (t *retryTask) settle() {
	if t.cur == nil || !t.cur.done {
		return
	}
	payload, err := t.cur.result()
	var failed *TaskFailedError
	if err == nil || !errors.As(err, &failed) || !t.retryable(err) {
		t.finish(payload, err)
		return
	}
	fireAt := t.c.CurrentUTCDateTime().Add(t.policy.delay(t.attempt + 1))
	if t.policy.RetryTimeout > 0 && fireAt.After(t.start.Add(t.policy.RetryTimeout)) {
		t.finish(nil, err)
		return
	}
	t.cur = nil
	t.timer = t.c.createTimer(fireAt)
	if t.timer.done { // could not be scheduled
		t.finish(nil, t.timer.err)
	}
}

func (t *retryTask) retryable(err error) bool {
	max := t.policy.MaxAttempts
	if max < 1 {
		max = 1
	}
	if t.attempt >= max || IsNonRetryable(err) || IsErrorType(err, t.policy.NonRetryableErrorTypes...) {
		return false
	}
	return t.policy.Handle == nil || t.policy.Handle(err)
}

func (t *retryTask) finish(payload []byte, err error) {
	t.cur, t.timer = nil, nil
	t.payload, t.err = payload, err
	t.seq = t.c.nextDoneSeq()
}
