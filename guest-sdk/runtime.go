package durable

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/guest-sdk/internal/bridge"
)

// StepDeadline is how long the export that starts, resumes or drops an
// orchestration waits for its goroutine to park in Await or finish. When it
// passes, the export returns abi.StatusStuck and the orchestration's handle is
// dead: its goroutine, if it ever runs again, makes no further host call.
// The default is 2 seconds. Change it only between export calls (in an init
// function or a test).
var StepDeadline = 2 * time.Second

func init() {
	bridge.NewRuntime = func(h bridge.Host, orch, act func(string) any) bridge.Runtime {
		return newRuntime(h, orch, act)
	}
}

// rt serves the exports of one Wasm instance (or one fake host). Its methods
// are called by one export at a time.
type rt struct {
	host  bridge.Host
	orch  func(string) any
	act   func(string) any
	orchs map[int32]*orchestration

	// The step deadline is watched by one long-lived watchdog goroutine
	// rather than a timer per step: creating and stopping a timer on every
	// step doubled the cost of a step in Wasm.
	stepStart atomic.Int64 // monotonic ns of the current step's start; 0 when idle
	stuck     chan struct{}
	wdMu      sync.Mutex
	wdRunning bool
}

func newRuntime(h bridge.Host, orch, act func(string) any) *rt {
	return &rt{host: h, orch: orch, act: act, orchs: map[int32]*orchestration{}, stuck: make(chan struct{}, 1)}
}

var monoBase = time.Now()

func monoNow() int64 { return int64(time.Since(monoBase)) + 1 }

// beginStep marks the start of a start/resume/drop export's wait.
func (r *rt) beginStep() {
	select {
	case <-r.stuck: // a stale signal from an earlier step
	default:
	}
	r.stepStart.Store(monoNow())
	r.wdMu.Lock()
	if !r.wdRunning {
		r.wdRunning = true
		go r.watchdog()
	}
	r.wdMu.Unlock()
}

func (r *rt) endStep() { r.stepStart.Store(0) }

// watchdog signals stuck when a step runs past StepDeadline. It exits after
// a while without steps and is restarted by the next one.
func (r *rt) watchdog() {
	idle := 0
	for {
		d := min(max(StepDeadline/4, time.Millisecond), 250*time.Millisecond)
		time.Sleep(d)
		start := r.stepStart.Load()
		if start == 0 {
			if idle++; idle > 40 {
				r.wdMu.Lock()
				if r.stepStart.Load() == 0 {
					r.wdRunning = false
					r.wdMu.Unlock()
					return
				}
				r.wdMu.Unlock()
				idle = 0
			}
			continue
		}
		idle = 0
		if time.Duration(monoNow()-start) > StepDeadline {
			select {
			case r.stuck <- struct{}{}:
			default:
			}
		}
	}
}

// report is what an orchestration goroutine tells the waiting export.
type report uint8

const (
	reportParked report = iota + 1
	reportFinished
)

// orchestration is the state of one running orchestration goroutine.
type orchestration struct {
	rt     *rt
	handle int32
	// wake is sent a value by Resume; it is closed to cancel the goroutine.
	wake chan struct{}
	// reports carries one report per step to the waiting export (cap 1).
	reports chan report

	// mu serializes host calls with kill, so that after kill returns no host
	// call with this handle is in flight or will be made.
	mu   sync.Mutex
	dead bool
	// continued is set once continue_as_new succeeded; complete is then skipped.
	continued bool

	req abi.StartRequest
	ctx *OrchestrationContext
}

// Start implements abi.ExportOrchestratorStart. req is copied.
func (r *rt) Start(handle int32, req []byte) int32 {
	sr, err := abi.DecodeStartRequest(append([]byte(nil), req...))
	if err != nil {
		return abi.StatusBadRequest
	}
	if _, busy := r.orchs[handle]; busy {
		return abi.StatusBadRequest
	}
	fn, _ := r.orch(sr.Name).(func(*OrchestrationContext) (any, error))
	if fn == nil {
		return abi.StatusUnknownFunction
	}
	o := &orchestration{
		rt:      r,
		handle:  handle,
		wake:    make(chan struct{}, 1),
		reports: make(chan report, 1),
		req:     sr,
	}
	o.ctx = &OrchestrationContext{o: o}
	r.orchs[handle] = o
	r.beginStep()
	go o.run(fn)
	return r.step(o)
}

// Resume implements abi.ExportOrchestratorResume.
func (r *rt) Resume(handle int32) int32 {
	o := r.orchs[handle]
	if o == nil {
		return abi.StatusUnknownHandle
	}
	r.beginStep()
	o.wake <- struct{}{}
	return r.step(o)
}

// Drop implements abi.ExportOrchestratorDrop: the parked goroutine is woken
// with a cancel, unwinds (running user defers, whose host calls are no-ops)
// and exits. Drop waits up to StepDeadline for it and returns StatusStuck if
// it did not exit by then.
func (r *rt) Drop(handle int32) int32 {
	o := r.orchs[handle]
	if o == nil {
		return abi.StatusOK
	}
	delete(r.orchs, handle)
	o.kill()
	r.beginStep()
	defer r.endStep()
	close(o.wake)
	for {
		select {
		case rep := <-o.reports:
			if rep == reportFinished {
				return abi.StatusOK
			}
		case <-r.stuck:
			return abi.StatusStuck
		}
	}
}

// step waits until o parks or finishes, or StepDeadline passes.
// The caller has called beginStep.
func (r *rt) step(o *orchestration) int32 {
	defer r.endStep()
	select {
	case rep := <-o.reports:
		if rep == reportFinished {
			delete(r.orchs, o.handle)
		}
		return abi.StatusOK
	case <-r.stuck:
		delete(r.orchs, o.handle)
		o.kill()
		close(o.wake) // if it ever parks, it unwinds at once
		return abi.StatusStuck
	}
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
// host call it makes (e.g. from user defers) is a no-op. Codes that require stopping (nondeterminism, limit)
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

// park reports "parked" to the waiting export and blocks until resumed. A
// cancel (closed wake) unwinds the goroutine.
func (o *orchestration) park() {
	if o.isDead() {
		panic(abortDead)
	}
	o.reports <- reportParked
	if _, ok := <-o.wake; !ok {
		o.abort(abortDropped)
	}
}

// finish sends the final report without ever blocking: after a kill nobody
// may be listening.
func (o *orchestration) finish() {
	select {
	case o.reports <- reportFinished:
	default:
	}
}

// run is the orchestration goroutine.
func (o *orchestration) run(fn func(*OrchestrationContext) (any, error)) {
	returned := false
	defer func() {
		rec := recover()
		defer o.finish()
		if _, isAbort := rec.(*abortSignal); isAbort {
			return
		}
		if o.isDead() || o.continued {
			return
		}
		switch {
		case rec != nil:
			o.complete(abi.CompleteFailed, failureJSON(&abi.FailureDetails{
				Type:    "Panic",
				Message: fmt.Sprintf("panic: %v", rec),
				Stack:   string(debug.Stack()),
			}))
		case !returned:
			o.complete(abi.CompleteFailed, failureJSON(&abi.FailureDetails{
				Type:    "OrchestratorError",
				Message: "orchestrator exited without returning (runtime.Goexit?)",
			}))
		}
	}()
	out, err := fn(o.ctx)
	returned = true
	if o.continued || o.isDead() {
		return
	}
	if err != nil {
		o.complete(abi.CompleteFailed, failureJSON(errorFailure("OrchestratorError", err)))
		return
	}
	b, mErr := json.Marshal(out)
	if mErr != nil {
		o.complete(abi.CompleteFailed, failureJSON(&abi.FailureDetails{
			Type:    "OrchestratorError",
			Message: fmt.Sprintf("encode orchestrator output: %v", mErr),
		}))
		return
	}
	o.complete(abi.CompleteOK, b)
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

// errorFailure converts a returned error into failure details. A
// *TaskFailedError keeps its details as Inner.
func errorFailure(typ string, err error) *abi.FailureDetails {
	f := &abi.FailureDetails{Type: typ, Message: err.Error()}
	if tf, ok := err.(*TaskFailedError); ok && tf.Details != nil {
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
