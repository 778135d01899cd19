package durable

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/guest-sdk/internal/bridge"
)

// OrchestrationContext is passed to an orchestrator. Its methods must be
// called only from the orchestrator's own goroutine (the one running the
// registered function), never from goroutines it starts.
type OrchestrationContext struct {
	o      *orchestration
	ids    []int32 // scratch for poll
	doneAt uint64  // counter ordering tasks by when they completed locally
	rnd    *rand.Rand
}

// InstanceID returns the orchestration's instance id.
func (c *OrchestrationContext) InstanceID() string { return c.o.req.InstanceID }

// Name returns the orchestrator's registered name.
func (c *OrchestrationContext) Name() string { return c.o.req.Name }

// GetInput decodes the orchestration's JSON input into v. A missing input
// decodes as null, which leaves v unchanged.
func (c *OrchestrationContext) GetInput(v any) error {
	in := c.o.req.Input
	if len(in) == 0 {
		return nil
	}
	if err := decodeJSON(in, v); err != nil {
		return fmt.Errorf("decode input of orchestration %s: %w", c.o.req.InstanceID, err)
	}
	return nil
}

// CallOption configures CallActivity and CallSubOrchestrator.
type CallOption func(*callOptions)

type callOptions struct {
	retry      *RetryPolicy
	instanceID string
}

// WithRetry makes the call retry failures as described by p. Retries are
// executed by the SDK: each attempt is a new task, separated by a durable
// timer, so every attempt and wait is visible in history.
func WithRetry(p RetryPolicy) CallOption {
	return func(o *callOptions) { o.retry = &p }
}

// WithInstanceID sets the instance id of a sub-orchestration. Without it the
// host derives a deterministic id from the parent. Ignored by CallActivity.
func WithInstanceID(id string) CallOption {
	return func(o *callOptions) { o.instanceID = id }
}

func applyCallOptions(opts []CallOption) callOptions {
	var co callOptions
	for _, f := range opts {
		if f != nil {
			f(&co)
		}
	}
	return co
}

// CallActivity schedules the activity name with input encoded by
// json.Marshal and returns its task. Await on it returns the activity's
// result, or a *TaskFailedError if it failed (after all retries, with
// WithRetry).
func (c *OrchestrationContext) CallActivity(name string, input any, opts ...CallOption) Task {
	in, err := encodeJSON(input)
	if err != nil {
		return c.failedTask(fmt.Errorf("encode input of activity %s: %w", name, err))
	}
	if len(opts) == 0 { // the common case, without a closure to allocate
		return c.scheduleActivity(name, in)
	}
	co := applyCallOptions(opts)
	if co.retry == nil {
		return c.scheduleActivity(name, in)
	}
	in = bytes.Clone(in) // kept for the retries
	return c.newRetryTask(*co.retry, func() *primTask { return c.scheduleActivity(name, in) })
}

// scheduleActivity schedules one attempt of an activity; the host copies in.
func (c *OrchestrationContext) scheduleActivity(name string, in []byte) *primTask {
	res, _ := c.o.call(func(h bridge.Host, hd int32) int64 {
		return int64(h.ScheduleActivity(hd, name, in))
	})
	return c.newPrim(res, abi.ImportScheduleActivity, "activity", name)
}

// CallSubOrchestrator starts the orchestrator name as a sub-orchestration
// with input encoded by json.Marshal and returns its task. Await on it returns
// the sub-orchestration's output, or a *TaskFailedError if it failed. Use
// WithInstanceID to choose its instance id (retries reuse it) and WithRetry to
// retry it.
func (c *OrchestrationContext) CallSubOrchestrator(name string, input any, opts ...CallOption) Task {
	co := applyCallOptions(opts)
	in, err := encodeJSON(input)
	if err != nil {
		return c.failedTask(fmt.Errorf("encode input of sub-orchestration %s: %w", name, err))
	}
	if co.retry != nil {
		in = bytes.Clone(in) // kept for the retries
	}
	schedule := func() *primTask {
		res, _ := c.o.call(func(h bridge.Host, hd int32) int64 {
			return int64(h.ScheduleSubOrchestrator(hd, name, co.instanceID, in))
		})
		return c.newPrim(res, abi.ImportScheduleSubOrchestrator, "sub-orchestration", name)
	}
	if co.retry != nil {
		return c.newRetryTask(*co.retry, schedule)
	}
	return schedule()
}

// CreateTimer creates a durable timer that fires at fireAt and returns its
// task; Await on it returns nil once the timer fired. Compute fireAt from
// CurrentUTCDateTime, never from the wall clock.
func (c *OrchestrationContext) CreateTimer(fireAt time.Time) Task {
	return c.createTimer(fireAt)
}

func (c *OrchestrationContext) createTimer(fireAt time.Time) *primTask {
	ns := fireAt.UnixNano()
	res, _ := c.o.call(func(h bridge.Host, hd int32) int64 { return int64(h.CreateTimer(hd, ns)) })
	return c.newPrim(res, abi.ImportCreateTimer, "timer", fireAt.UTC().Format(time.RFC3339Nano))
}

// WaitForExternalEvent returns a task resolved by the next external event
// called name (events raised before the wait are buffered by the host). Await
// decodes the event's JSON data.
func (c *OrchestrationContext) WaitForExternalEvent(name string) Task {
	return c.waitEvent(name)
}

func (c *OrchestrationContext) waitEvent(name string) *primTask {
	res, _ := c.o.call(func(h bridge.Host, hd int32) int64 { return int64(h.WaitEvent(hd, name)) })
	return c.newPrim(res, abi.ImportWaitEvent, "event", name)
}

// WaitForExternalEventWithTimeout is WaitForExternalEvent raced against a
// durable timer firing timeout after CurrentUTCDateTime. If the timer wins,
// the wait is withdrawn (it consumes no later event) and Await returns an
// error for which errors.Is(err, ErrTimeout) holds.
func (c *OrchestrationContext) WaitForExternalEventWithTimeout(name string, timeout time.Duration) Task {
	w := c.waitEvent(name)
	t := c.createTimer(c.CurrentUTCDateTime().Add(timeout))
	tt := &timeoutTask{c: c, name: name, timeout: timeout, wait: w, timer: t}
	tt.checkScheduled()
	return tt
}

// ContinueAsNewOption configures ContinueAsNew.
type ContinueAsNewOption func(*continueOptions)

type continueOptions struct{ keepEvents bool }

// WithKeepUnprocessedEvents carries external events that arrived but were
// not consumed by a wait over to the new generation.
func WithKeepUnprocessedEvents() ContinueAsNewOption {
	return func(o *continueOptions) { o.keepEvents = true }
}

// ContinueAsNew restarts the orchestration with a fresh history and input
// (encoded with json.Marshal) once the orchestrator returns. The orchestrator
// must return right after calling it; whatever it returns (value or error) is
// ignored, and no output is reported for this generation:
//
//	return nil, ctx.ContinueAsNew(next)
//
// When the input cannot be encoded, or the host refuses the call (a
// *HostError), it returns the error and the orchestration does not continue
// as new; returned, the error fails the orchestration. An orchestrator that
// ignores the error and returns a nil error fails all the same, with that
// error: it can never complete by accident in place of continuing.
func (c *OrchestrationContext) ContinueAsNew(input any, opts ...ContinueAsNewOption) error {
	var co continueOptions
	for _, f := range opts {
		if f != nil {
			f(&co)
		}
	}
	in, err := encodeJSON(input)
	if err != nil {
		return c.o.continueFailed(fmt.Errorf("durable: encode ContinueAsNew input: %w", err))
	}
	keep := int32(0)
	if co.keepEvents {
		keep = 1
	}
	res, ok := c.o.call(func(h bridge.Host, hd int32) int64 { return int64(h.ContinueAsNew(hd, in, keep)) })
	if ok && res < 0 {
		return c.o.continueFailed(&HostError{Func: abi.ImportContinueAsNew, Code: res})
	}
	c.o.continued = true
	return nil
}

// SetCustomStatus sets the orchestration's custom status to v encoded with
// json.Marshal; it is visible to clients while the orchestration runs. A value
// that cannot be encoded is an error (the status is left as it was), and so
// is a refusal by the host (a *HostError).
func (c *OrchestrationContext) SetCustomStatus(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("durable: encode custom status: %w", err)
	}
	res, ok := c.o.call(func(h bridge.Host, hd int32) int64 { return int64(h.SetCustomStatus(hd, b)) })
	if ok && res < 0 {
		return &HostError{Func: abi.ImportSetCustomStatus, Code: res}
	}
	return nil
}

// CurrentUTCDateTime returns the replay-safe current time (the time of the
// step's triggering event, as recorded in history), in UTC.
func (c *OrchestrationContext) CurrentUTCDateTime() time.Time {
	ns, ok := c.o.call(func(h bridge.Host, hd int32) int64 { return h.Now(hd) })
	if !ok {
		return time.Time{}
	}
	if ns < 0 && ns >= abi.ErrLimit {
		panic(&HostError{Func: abi.ImportNow, Code: ns})
	}
	return time.Unix(0, ns).UTC()
}

// NewGUID returns a deterministic UUID string (36 characters) that is the
// same on every replay.
func (c *OrchestrationContext) NewGUID() string {
	var buf [36]byte
	n, ok := c.o.call(func(h bridge.Host, hd int32) int64 { return int64(h.NewGUID(hd, &buf)) })
	if !ok {
		return ""
	}
	if n < 0 || n > 36 {
		panic(&HostError{Func: abi.ImportNewGUID, Code: n})
	}
	return string(buf[:n])
}

// Rand returns a random number generator that is replay-safe: it is seeded
// from a NewGUID the first time it is called in a generation, so a replay
// draws the same numbers in the same order. Use it instead of math/rand,
// whose global generator is shared by every orchestration in the Wasm
// instance and is not replay-safe.
func (c *OrchestrationContext) Rand() *rand.Rand {
	if c.rnd == nil {
		sum := sha256.Sum256([]byte(c.NewGUID()))
		c.rnd = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(sum[:8]), binary.LittleEndian.Uint64(sum[8:16])))
	}
	return c.rnd
}

// IsReplaying reports whether the orchestrator is re-executing code whose
// effects are already in history. Use it to avoid duplicate side effects such
// as metrics; Logger already drops replayed logs.
func (c *OrchestrationContext) IsReplaying() bool {
	r, ok := c.o.call(func(h bridge.Host, hd int32) int64 { return int64(h.IsReplaying(hd)) })
	return ok && r == 1
}

// SendEvent raises the external event eventName with data (encoded with
// json.Marshal) on the orchestration instanceID. It is fire and forget. Data
// that cannot be encoded is an error (nothing is sent), and so is a refusal
// by the host (a *HostError, e.g. an invalid instance id).
func (c *OrchestrationContext) SendEvent(instanceID, eventName string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("durable: encode data of event %s: %w", eventName, err)
	}
	res, ok := c.o.call(func(h bridge.Host, hd int32) int64 { return int64(h.SendEvent(hd, instanceID, eventName, b)) })
	if ok && res < 0 {
		return &HostError{Func: abi.ImportSendEvent, Code: res}
	}
	return nil
}

// Logger returns a logger whose messages go to the host's log under this
// orchestration; the host drops them while replaying.
func (c *OrchestrationContext) Logger() *Logger {
	return &Logger{emit: func(level int32, msg string) {
		c.o.call(func(h bridge.Host, hd int32) int64 { h.Log(hd, level, msg); return 0 })
	}}
}
