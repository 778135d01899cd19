package durable

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/guest-sdk/internal/bridge"
)

// StepDeadline is how long the export that starts, resumes or drops an
// orchestration waits for its coroutine to park in Await or finish. When it
// passes, the orchestration is stuck (blocked on something other than Await:
// a channel, select{}, a mutex, a sleep): the SDK asks the host to abandon
// the instance (bridge.Host.Stuck; in Wasm it exits with abi.ExitStuck), and
// the host fails that orchestration with type Stuck.
//
// The default is 2 seconds. StepDeadline is read once by each runtime, when
// it is created: in Wasm at the first export call that runs a function
// (after every init function ran), natively when a durabletest.Env run
// begins (or replaces a runtime after a stuck step). Set it in an init
// function; a change made later does not reach a runtime already created.
// Tests should set durabletest.Env.StepDeadline instead, which applies to
// one Env and leaves StepDeadline alone.
var StepDeadline = 2 * time.Second

func init() {
	bridge.NewRuntime = func(h bridge.Host, orch, act func(string) any, stepDeadline time.Duration) bridge.Runtime {
		return newRuntime(h, orch, act, stepDeadline)
	}
}

// rt serves the exports of one Wasm instance (or one fake host). Its methods
// are called by one export at a time.
type rt struct {
	host  bridge.Host
	orch  func(string) any
	act   func(string) any
	orchs map[int32]*orchestration

	// deadline is the step deadline (see StepDeadline), fixed at creation.
	deadline time.Duration

	// actIdle are activity runner coroutines ready for the next activity
	// (see runActivity); actParked are those whose activity is parked on
	// an asynchronous host call, by handle.
	actIdle   []*actRunner
	actParked map[int32]*actRunner

	// idle are runner coroutines whose orchestration finished, kept to run
	// the next one: a new coroutine costs a goroutine and the growth of its
	// stack, the largest part of an orchestration's start in Wasm.
	idle []*runner

	// The step deadline is watched by one long-lived watchdog goroutine
	// rather than a timer per step: creating and stopping a timer on every
	// step doubled the cost of a step in Wasm. Steps are counted, not
	// timed, so that a step reads no clock.
	stepSeq    atomic.Uint64 // odd while a start/resume/drop waits for its coroutine
	stepHandle atomic.Int32  // the handle of the current step
	wdRunning  atomic.Bool
	closed     atomic.Bool // Close was called: the watchdog exits
}

// maxIdleRunners bounds rt.idle.
const maxIdleRunners = 64

// newRuntime returns a runtime over h whose step deadline is deadline, or
// StepDeadline as it is now when deadline is not positive.
func newRuntime(h bridge.Host, orch, act func(string) any, deadline time.Duration) *rt {
	if deadline <= 0 {
		deadline = StepDeadline
	}
	return &rt{host: h, orch: orch, act: act, orchs: map[int32]*orchestration{}, actParked: map[int32]*actRunner{}, deadline: deadline}
}

// beginStep marks the start of a start/resume/drop export's wait.
func (r *rt) beginStep(handle int32) {
	r.stepHandle.Store(handle)
	r.stepSeq.Add(1)
	if r.wdRunning.CompareAndSwap(false, true) {
		go r.watchdog()
	}
}

func (r *rt) endStep() { r.stepSeq.Add(1) }

// watchdog reports the step to the host as stuck when it is still the
// current step after the step deadline (checked every quarter of it, so a stuck
// step is reported between 1 and 1.25 deadlines after it began), once per
// step. It exits after a while without steps (or a step it reported) and is
// restarted by the next one, and at once after Close.
func (r *rt) watchdog() {
	d := min(max(r.deadline/4, time.Millisecond), 250*time.Millisecond)
	idle, same := 0, time.Duration(0)
	last, reported := r.stepSeq.Load(), uint64(0)
	for {
		time.Sleep(d)
		if r.closed.Load() {
			r.wdRunning.Store(false)
			return
		}
		seq := r.stepSeq.Load()
		if seq%2 == 0 || seq == reported {
			same = 0
			if idle++; idle > 40 {
				r.wdRunning.Store(false)
				// A step that began just now may have seen the flag still
				// set and started no watchdog: take it back then.
				if s := r.stepSeq.Load(); s%2 == 1 && s != reported && r.wdRunning.CompareAndSwap(false, true) {
					idle = 0
					continue
				}
				return
			}
			continue
		}
		idle = 0
		if seq != last {
			last, same = seq, 0
			continue
		}
		if same += d; same >= r.deadline {
			// The export is blocked inside the coroutine; only the host
			// can end it (in Wasm this call does not return).
			reported, same = seq, 0
			r.host.Stuck(r.stepHandle.Load())
		}
	}
}

// Close implements bridge.Runtime: it ends the idle coroutines (the pooled
// runners and the activity runner) and the watchdog. A coroutine that is
// stuck in a step cannot be ended and is left as it is.
func (r *rt) Close() {
	r.closed.Store(true)
	for _, rn := range r.idle {
		rn.stop()
	}
	r.idle = nil
	for _, ar := range r.actIdle {
		ar.stop()
	}
	for h, ar := range r.actParked {
		ar.stop()
		delete(r.actParked, h)
	}
	r.actIdle = nil
}

// report is what an orchestration coroutine hands back to the export.
type report uint8

const (
	reportParked report = iota + 1
	reportFinished
	// reportStranded: the orchestration ended in runtime.Goexit and its
	// coroutine stays suspended for good; it must be neither resumed nor
	// reused.
	reportStranded
)

// runner is a coroutine (iter.Pull) that runs orchestrations one after the
// other: o and fn are the one it runs next, set before it is resumed for it.
type runner struct {
	next func() (report, bool)
	stop func()
	o    *orchestration
	fn   func(*OrchestrationContext) (any, error)
}

// getRunner returns an idle runner or a new one.
func (r *rt) getRunner() *runner {
	if n := len(r.idle); n > 0 {
		rn := r.idle[n-1]
		r.idle[n-1] = nil
		r.idle = r.idle[:n-1]
		return rn
	}
	rn := &runner{}
	rn.next, rn.stop = iter.Pull(func(yield func(report) bool) {
		for {
			rn.o.yield = yield
			rn.o.run(rn.fn)
			// A context the user kept must not reach the next
			// orchestration this coroutine runs: its calls are no-ops now.
			rn.o.kill()
			rn.o, rn.fn = nil, nil
			if !yield(reportFinished) {
				return
			}
		}
	})
	return rn
}

// putRunner keeps a runner whose orchestration finished for the next one.
func (r *rt) putRunner(rn *runner) {
	if len(r.idle) < maxIdleRunners {
		r.idle = append(r.idle, rn)
		return
	}
	rn.stop()
}

// orchestration is the state of one running orchestration. Its code runs in
// a coroutine (iter.Pull): start and resume switch to it directly and get
// control back when it parks in Await or finishes, which costs a fraction of
// a goroutine hand-off through the scheduler (0.9 µs against 4–15 µs in Wasm).
type orchestration struct {
	rt     *rt
	handle int32
	// rn is the coroutine running the orchestration: rn.next resumes it
	// until it parks (reportParked) or finishes (reportFinished,
	// reportStranded, or ok=false); rn.stop unwinds a parked one. yield is
	// the coroutine's side of rn.next.
	rn    *runner
	yield func(report) bool

	// mu serializes host calls with kill, so that after kill returns no host
	// call with this handle is in flight or will be made.
	mu   sync.Mutex
	dead bool
	// continued is set once continue_as_new succeeded; complete is then skipped.
	continued bool
	// continueErr is the error of the last ContinueAsNew that failed: an
	// orchestrator that then returns a nil error fails with it.
	continueErr error

	req abi.StartRequest
	ctx *OrchestrationContext
}

// Start implements abi.ExportOrchestratorStart. req is not retained.
func (r *rt) Start(handle int32, req []byte) int32 {
	sr, err := abi.DecodeStartRequest(req)
	if err != nil {
		return abi.StatusBadRequest
	}
	sr.Input = bytes.Clone(sr.Input)
	if _, busy := r.orchs[handle]; busy {
		return abi.StatusBadRequest
	}
	fn, _ := r.orch(sr.Name).(func(*OrchestrationContext) (any, error))
	if fn == nil {
		return abi.StatusUnknownFunction
	}
	o := &orchestration{rt: r, handle: handle, req: sr}
	o.ctx = &OrchestrationContext{o: o}
	o.rn = r.getRunner()
	o.rn.o, o.rn.fn = o, fn
	r.orchs[handle] = o
	return r.step(o)
}

// Resume implements abi.ExportOrchestratorResume.
func (r *rt) Resume(handle int32) int32 {
	o := r.orchs[handle]
	if o == nil {
		return abi.StatusUnknownHandle
	}
	return r.step(o)
}

// Drop implements abi.ExportOrchestratorDrop: the parked coroutine is
// unwound (running user defers, whose host calls are no-ops). If it blocks
// while unwinding, the watchdog reports it stuck.
func (r *rt) Drop(handle int32) int32 {
	o := r.orchs[handle]
	if o == nil {
		return abi.StatusOK
	}
	delete(r.orchs, handle)
	o.kill()
	r.beginStep(handle)
	o.rn.stop()
	r.endStep()
	return abi.StatusOK
}

// step runs o until it parks or finishes.
func (r *rt) step(o *orchestration) int32 {
	r.beginStep(o.handle)
	rep, ok := o.rn.next()
	r.endStep()
	if !ok || rep != reportParked {
		delete(r.orchs, o.handle)
		if ok && rep == reportFinished {
			r.putRunner(o.rn)
		}
	}
	return abi.StatusOK
}

// kill marks o dead; no host call with its handle happens after kill returns.
func (o *orchestration) kill() {
	o.mu.Lock()
	o.dead = true
	o.mu.Unlock()
}

func (o *orchestration) isDead() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dead
}

// abort stops the orchestration at once: it is marked dead and the goroutine
// unwinds with an abortSignal panic recovered in run.
func (o *orchestration) abort(sig *abortSignal) {
	o.kill()
	panic(sig)
}

// call runs one host call unless o is dead. ok is false when o is dead (the
// call was not made and res is 0): once an orchestration is stopped, every
// host call it makes (e.g. from user defers) is a no-op. Codes with which
// the host failed the orchestration (nondeterminism, limit, invalid JSON)
// abort the goroutine.
func (o *orchestration) call(f func(h bridge.Host, handle int32) int64) (res int64, ok bool) {
	o.mu.Lock()
	if o.dead {
		o.mu.Unlock()
		return 0, false
	}
	res = f(o.rt.host, o.handle)
	o.mu.Unlock()
	switch res {
	case abi.ErrNondeterminism:
		o.abort(abortNondeterminism)
	case abi.ErrLimit:
		o.abort(abortLimit)
	case abi.ErrInvalidJSON:
		o.abort(abortInvalidJSON)
	}
	return res, true
}

// mustCall is call for results the orchestration cannot do without: when o
// is dead it unwinds the goroutine instead of returning.
func (o *orchestration) mustCall(f func(h bridge.Host, handle int32) int64) int64 {
	res, ok := o.call(f)
	if !ok {
		panic(abortDead)
	}
	return res
}

// park hands control back to the export ("parked") until resumed. A drop
// (stop) unwinds the coroutine.
func (o *orchestration) park() {
	if o.isDead() {
		panic(abortDead)
	}
	if !o.yield(reportParked) {
		o.abort(abortDropped)
	}
}

// run is the orchestration coroutine's body.
func (o *orchestration) run(fn func(*OrchestrationContext) (any, error)) {
	returned := false
	defer func() {
		rec := recover()
		goexit := rec == nil && !returned
		_, isAbort := rec.(*abortSignal)
		if !isAbort && !o.isDead() && !o.continued {
			switch {
			case rec != nil:
				o.complete(abi.CompleteFailed, failureJSON(&abi.FailureDetails{
					Type:    "Panic",
					Message: fmt.Sprintf("panic: %v", rec),
					Stack:   string(debug.Stack()),
				}))
			case goexit:
				o.complete(abi.CompleteFailed, failureJSON(&abi.FailureDetails{
					Type:    "OrchestratorError",
					Message: "orchestrator exited without returning (runtime.Goexit?)",
				}))
			}
		}
		if goexit {
			// runtime.Goexit is unwinding the coroutine, and iter.Pull
			// would re-raise it in the export. Hand control back for good
			// instead: the coroutine stays suspended here and is never
			// resumed (step forgets the handle and the runner).
			o.yield(reportStranded)
		}
	}()
	out, err := fn(o.ctx)
	returned = true
	if o.continued || o.isDead() {
		return
	}
	if err == nil {
		err = o.continueErr
	}
	if err != nil {
		o.complete(abi.CompleteFailed, failureJSON(errorFailure("OrchestratorError", err)))
		return
	}
	b, mErr := encodeJSON(out)
	if mErr != nil {
		o.complete(abi.CompleteFailed, failureJSON(&abi.FailureDetails{
			Type:    "OrchestratorError",
			Message: fmt.Sprintf("encode orchestrator output: %v", mErr),
		}))
		return
	}
	o.complete(abi.CompleteOK, b)
}

// continueFailed records err as the error of a failed ContinueAsNew and
// returns it.
func (o *orchestration) continueFailed(err error) error {
	o.continueErr = err
	return err
}

// complete reports the result; an abort while doing so (e.g. the host
// rejects it with ErrLimit) is swallowed here, the host has failed the
// orchestration already.
func (o *orchestration) complete(status int32, payload []byte) {
	defer func() {
		if rec := recover(); rec != nil {
			if _, isAbort := rec.(*abortSignal); !isAbort {
				panic(rec)
			}
		}
	}()
	o.call(func(h bridge.Host, hd int32) int64 { return int64(h.Complete(hd, status, payload)) })
}

// errorFailure converts a returned error into failure details of type typ
// (the default). A *TaskFailedError keeps its details as Inner. An
// *ApplicationError in err's chain sets the type, details and the
// non-retryable marker.
func errorFailure(typ string, err error) *abi.FailureDetails {
	f := &abi.FailureDetails{Type: typ, Message: err.Error()}
	var ae *ApplicationError
	if errors.As(err, &ae) {
		if ae.Type != "" {
			f.Type = ae.Type
		}
		f.NonRetryable = ae.NonRetryable
		if ae.Details != nil {
			d, mErr := json.Marshal(ae.Details)
			if mErr != nil {
				d, _ = json.Marshal("encode details: " + mErr.Error())
			}
			f.Details = d
		}
	}
	var tf *TaskFailedError
	if errors.As(err, &tf) && tf.Details != nil {
		f.Inner = tf.Details
	}
	return f
}

func failureJSON(f *abi.FailureDetails) []byte {
	b, err := json.Marshal(f)
	if err != nil { // cannot happen: plain strings
		return []byte(`{"message":"encode failure","type":"OrchestratorError"}`)
	}
	return b
}

// decodeJSON is json.Unmarshal, except that a *json.RawMessage receives a
// copy of data as it is: payloads come from the host, which hands out only
// JSON it validated or a guest encoded, and JSON is slow in Wasm.
func decodeJSON(data []byte, v any) error {
	if r, ok := v.(*json.RawMessage); ok {
		*r = append((*r)[:0], data...)
		return nil
	}
	return json.Unmarshal(data, v)
}

// encodeJSON is json.Marshal, except that a json.RawMessage is passed on as
// it is, neither re-encoded nor copied: the host checks that every payload is
// valid JSON (natively, far cheaper than in Wasm) and fails the
// orchestration, or the activity, with InvalidJSON when it is not, and it
// copies the bytes in the call they are passed to. Callers that keep the
// result past that call must copy it.
func encodeJSON(v any) ([]byte, error) {
	if r, ok := v.(json.RawMessage); ok && r != nil {
		if len(r) == 0 {
			// The host would take an empty payload for "no value".
			return nil, errors.New("json.RawMessage is empty, which is not valid JSON")
		}
		return r, nil
	}
	return json.Marshal(v)
}
