package durabletest

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	durable "github.com/durablewasm/durablewasm/guest-sdk"
	"github.com/durablewasm/durablewasm/guest-sdk/internal/bridge"
)

// fakeTask is one task of an instance's current generation.
type fakeTask struct {
	kind     CallKind
	name     string
	resolved bool
	canceled bool
	seq      uint64
	result   int64 // abi.Result*
	payload  []byte
	input    []byte
	fireAt   int64
}

// instance is one orchestration instance in the fake host.
type instance struct {
	res        *Result
	order      int // creation order, for deterministic timer firing
	input      []byte
	parent     *instance
	parentTask int32
	parentGen  int

	handle   int32
	gen      int
	tasks    map[int32]*fakeTask
	nextTask int32
	inbox    map[string][][]byte
	waiting  []int32
	guids    int

	done       bool
	continued  bool
	contInput  []byte
	keepEvents bool
}

type activityRun struct {
	inst *instance
	gen  int
	id   int32
	name string
}

type timedEvent struct {
	at   time.Time
	name string
	data []byte
}

// host is the fake host of one Env.Run. All its state is touched either by
// the Run goroutine or by an SDK goroutine while Run waits inside a Runtime
// call, so it needs no lock.
type host struct {
	env     *Env
	rt      bridge.Runtime
	now     time.Time
	seq     uint64
	handles int32
	steps   int

	instances []*instance
	byHandle  map[int32]*instance
	acts      map[int32]*activityRun
	queue     []func()
	ready     []*instance
	timed     []timedEvent
	whenWait  []raised
	cur       int32 // handle of the current step, 0 outside steps

	// newRT makes a runtime; a stuck step abandons the current one (as the
	// real host discards the Wasm instance) and continues on a new one.
	newRT func() bridge.Runtime
	stuck chan int32
}

func newHost(e *Env) *host {
	h := &host{env: e, byHandle: map[int32]*instance{}, acts: map[int32]*activityRun{}}
	orch := func(name string) any {
		if fn := e.reg.Orchestrator(name); fn != nil {
			return fn
		}
		return nil
	}
	act := func(name string) any {
		if m := e.mocks[name]; m != nil {
			return func(ctx *durable.ActivityContext) (any, error) {
				var raw json.RawMessage
				if err := ctx.GetInput(&raw); err != nil {
					return nil, err
				}
				return m(raw)
			}
		}
		if fn := e.reg.Activity(name); fn != nil {
			return fn
		}
		return nil
	}
	deadline := e.StepDeadline
	if deadline <= 0 {
		deadline = durable.StepDeadline
	}
	h.newRT = func() bridge.Runtime { return bridge.NewRuntime(h, orch, act, deadline) }
	h.rt = h.newRT()
	h.stuck = make(chan int32, 1)
	return h
}

// Stuck implements bridge.Host: the step of handle hd is blocked for good.
func (h *host) Stuck(hd int32) {
	select {
	case h.stuck <- hd:
	default:
	}
}

func (h *host) run(name string, input []byte) *Result {
	e := h.env
	h.now = e.StartTime
	if h.now.IsZero() {
		h.now = DefaultStartTime
	}
	id := e.InstanceID
	if id == "" {
		id = "test-instance"
	}
	maxSteps := e.MaxSteps
	if maxSteps <= 0 {
		maxSteps = 100000
	}
	root := h.newInstance(id, name, input, nil, 0)
	for _, ev := range e.events {
		if ev.at < 0 {
			root.inbox[ev.name] = append(root.inbox[ev.name], ev.data)
		} else {
			h.timed = append(h.timed, timedEvent{at: h.now.Add(ev.at), name: ev.name, data: ev.data})
		}
	}
	sort.SliceStable(h.timed, func(i, j int) bool { return h.timed[i].at.Before(h.timed[j].at) })
	h.whenWait = append([]raised(nil), e.waiting...)
	h.queue = append(h.queue, func() { h.start(root) })

	for !root.done {
		if h.steps >= maxSteps {
			root.res.Failure = &abi.FailureDetails{Type: "MaxSteps", Message: fmt.Sprintf("durabletest: gave up after %d steps", maxSteps)}
			break
		}
		switch {
		case len(h.queue) > 0:
			f := h.queue[0]
			h.queue = h.queue[1:]
			f()
		case len(h.ready) > 0:
			in := h.ready[0]
			h.ready = h.ready[1:]
			h.resume(in)
		case h.deliverWhenWaiting(root):
		case h.advanceClock():
		default:
			return h.finishRun(root)
		}
	}
	return h.finishRun(root)
}

// finishRun drops every orchestration still parked and returns root's result.
func (h *host) finishRun(root *instance) *Result {
	for _, in := range h.instances {
		if !in.done && in.handle != 0 {
			h.rt.Drop(in.handle)
			delete(h.byHandle, in.handle)
			in.handle = 0
		}
		if in.res.End.IsZero() {
			in.res.End = h.now
		}
	}
	h.rt.Close()
	return root.res
}

func (h *host) newInstance(id, name string, input []byte, parent *instance, parentTask int32) *instance {
	in := &instance{
		res:        &Result{InstanceID: id, Name: name, Status: abi.StatusRunning, Children: map[string]*Result{}},
		order:      len(h.instances),
		input:      input,
		parent:     parent,
		parentTask: parentTask,
		inbox:      map[string][][]byte{},
	}
	if parent != nil {
		in.parentGen = parent.gen
		parent.res.Children[id] = in.res
	}
	h.instances = append(h.instances, in)
	return in
}

// start runs the first step of in's current generation.
func (h *host) start(in *instance) {
	h.handles++
	in.handle = h.handles
	in.tasks = map[int32]*fakeTask{}
	in.nextTask = 0
	in.waiting = nil
	in.res.Generations++
	in.res.Input = append(json.RawMessage(nil), in.input...)
	h.byHandle[in.handle] = in
	req := abi.StartRequest{InstanceID: in.res.InstanceID, Name: in.res.Name, Input: in.input}.Encode()
	h.step(in, func() int32 { return h.rt.Start(in.handle, req) })
}

func (h *host) resume(in *instance) {
	if in.done || in.handle == 0 {
		return
	}
	in.waiting = nil
	h.step(in, func() int32 { return h.rt.Resume(in.handle) })
}

// step runs one SDK export for in and handles its outcome.
func (h *host) step(in *instance, f func() int32) {
	h.steps++
	h.cur = in.handle
	// The step runs on its own goroutine so that a stuck one can be
	// abandoned (its coroutine never returns).
	done := make(chan int32, 1)
	go func() { done <- f() }()
	var status int32
	select {
	case status = <-done:
	case <-h.stuck:
		status = abi.StatusStuck
		// Every orchestration of the abandoned runtime is lost with it:
		// their next resume reports an unknown handle. Its idle
		// coroutines and watchdog end; the stuck one cannot.
		old := h.rt
		h.rt = h.newRT()
		old.Close()
	}
	h.cur = 0
	switch status {
	case abi.StatusOK:
	case abi.StatusUnknownFunction:
		h.fail(in, &abi.FailureDetails{Type: "OrchestratorNotFound", Message: fmt.Sprintf("no orchestrator named %q is registered", in.res.Name)})
	case abi.StatusStuck:
		h.fail(in, &abi.FailureDetails{Type: "Stuck", Message: fmt.Sprintf("orchestration %s blocked outside Await for longer than the step deadline", in.res.InstanceID)})
	default:
		h.fail(in, &abi.FailureDetails{Type: "GuestError", Message: fmt.Sprintf("export returned status %d", status)})
	}
	switch {
	case in.continued && !in.done:
		h.restart(in)
	case in.done:
		h.release(in)
	}
}

// restart begins the next generation after ContinueAsNew.
func (h *host) restart(in *instance) {
	delete(h.byHandle, in.handle)
	in.handle = 0
	in.continued = false
	in.input = in.contInput
	in.gen++
	if !in.keepEvents {
		in.inbox = map[string][][]byte{}
	}
	h.queue = append(h.queue, func() { h.start(in) })
}

// release forgets a finished instance's handle and reports to its parent.
func (h *host) release(in *instance) {
	if in.handle != 0 {
		delete(h.byHandle, in.handle)
		in.handle = 0
	}
	in.res.End = h.now
	if p := in.parent; p != nil && p.gen == in.parentGen {
		if in.res.Status == abi.StatusCompleted {
			h.resolve(p, in.parentTask, abi.ResultOK, in.res.Output)
		} else {
			f := *in.res.Failure
			f.Source = fmt.Sprintf("sub-orchestration %s (%s)", in.res.Name, in.res.InstanceID)
			h.resolve(p, in.parentTask, abi.ResultFailed, failureJSON(&f))
		}
	}
}

func (h *host) fail(in *instance, f *abi.FailureDetails) {
	if in.done {
		return
	}
	in.done = true
	in.continued = false
	in.res.Status = abi.StatusFailed
	in.res.Failure = f
}

func failureJSON(f *abi.FailureDetails) []byte {
	b, _ := json.Marshal(f)
	return b
}

// resolve completes task id of in and makes in ready if it waits on it.
func (h *host) resolve(in *instance, id int32, kind int64, payload []byte) {
	t := in.tasks[id]
	if t == nil || t.resolved || t.canceled {
		return
	}
	h.seq++
	t.resolved, t.seq, t.result, t.payload = true, h.seq, kind, payload
	for _, w := range in.waiting {
		if w == id {
			in.waiting = nil
			h.ready = append(h.ready, in)
			break
		}
	}
}

// deliver raises an event on in: it resolves the oldest open wait for name
// or is buffered.
func (h *host) deliver(in *instance, name string, data []byte) {
	if in.done {
		return
	}
	var best int32 = -1
	for id, t := range in.tasks {
		if t.kind == CallWaitEvent && t.name == name && !t.resolved && !t.canceled && (best < 0 || id < best) {
			best = id
		}
	}
	if best >= 0 {
		h.resolve(in, best, abi.ResultOK, data)
		return
	}
	in.inbox[name] = append(in.inbox[name], data)
}

func (h *host) deliverWhenWaiting(root *instance) bool {
	if len(h.whenWait) == 0 || root.done || root.handle == 0 {
		return false
	}
	ev := h.whenWait[0]
	for _, t := range root.tasks {
		if t.kind == CallWaitEvent && t.name == ev.name && !t.resolved && !t.canceled {
			h.whenWait = h.whenWait[1:]
			h.deliver(root, ev.name, ev.data)
			return true
		}
	}
	return false
}

// advanceClock moves the fake clock to the earliest pending timer or timed
// event and fires everything due then. It reports whether anything fired.
func (h *host) advanceClock() bool {
	next := int64(0)
	found := false
	for _, in := range h.instances {
		if in.done || in.handle == 0 {
			continue
		}
		for _, t := range in.tasks {
			if t.kind == CallTimer && !t.resolved && (!found || t.fireAt < next) {
				next, found = t.fireAt, true
			}
		}
	}
	if len(h.timed) > 0 && (!found || h.timed[0].at.UnixNano() < next) {
		next, found = h.timed[0].at.UnixNano(), true
	}
	if !found {
		return false
	}
	if next > h.now.UnixNano() {
		h.now = time.Unix(0, next).UTC()
	}
	nowNs := h.now.UnixNano()
	for _, in := range h.instances {
		if in.done || in.handle == 0 {
			continue
		}
		ids := make([]int32, 0, len(in.tasks))
		for id, t := range in.tasks {
			if t.kind == CallTimer && !t.resolved && t.fireAt <= nowNs {
				ids = append(ids, id)
			}
		}
		sort.Slice(ids, func(i, j int) bool {
			a, b := in.tasks[ids[i]], in.tasks[ids[j]]
			if a.fireAt != b.fireAt {
				return a.fireAt < b.fireAt
			}
			return ids[i] < ids[j]
		})
		for _, id := range ids {
			h.resolve(in, id, abi.ResultOK, nil)
		}
	}
	root := h.instances[0]
	for len(h.timed) > 0 && !h.timed[0].at.After(h.now) {
		ev := h.timed[0]
		h.timed = h.timed[1:]
		h.deliver(root, ev.name, ev.data)
	}
	return true
}

// runActivity runs one scheduled activity and resolves its task.
func (h *host) runActivity(a *activityRun) {
	if a.inst.gen != a.gen || a.inst.done {
		return
	}
	t := a.inst.tasks[a.id]
	h.steps++
	h.handles++
	hd := h.handles
	h.acts[hd] = a
	req := abi.ActivityRequest{InstanceID: a.inst.res.InstanceID, Name: a.name, Input: t.input, TaskID: a.id}.Encode()
	h.cur = hd
	status := h.rt.RunActivity(hd, req)
	h.cur = 0
	delete(h.acts, hd)
	if status != abi.StatusOK {
		typ := "GuestError"
		if status == abi.StatusUnknownFunction {
			typ = "ActivityNotFound"
		}
		h.resolve(a.inst, a.id, abi.ResultFailed, failureJSON(&abi.FailureDetails{
			Type: typ, Message: fmt.Sprintf("activity %q: export returned status %d", a.name, status),
		}))
	}
}

func (h *host) record(in *instance, c Call) {
	c.At = h.now
	c.Generation = in.gen
	in.res.Calls = append(in.res.Calls, c)
}

func (h *host) newTask(in *instance, t *fakeTask) int32 {
	id := in.nextTask
	in.nextTask++
	in.tasks[id] = t
	return id
}

// orch returns the instance stepping under handle hd, or an error code.
func (h *host) orch(hd int32, fn, name string) (*instance, int32) {
	in := h.byHandle[hd]
	if in == nil || hd != h.cur {
		return nil, abi.ErrNotInStep
	}
	if h.env.HostError != nil {
		if code := h.env.HostError(HostCall{InstanceID: in.res.InstanceID, Func: fn, Name: name}); code < 0 {
			switch code {
			case abi.ErrNondeterminism:
				h.fail(in, &abi.FailureDetails{Type: "Nondeterminism", Message: fmt.Sprintf("injected nondeterminism at %s %s", fn, name)})
			case abi.ErrLimit:
				h.fail(in, &abi.FailureDetails{Type: "Limit", Message: fmt.Sprintf("injected limit at %s %s", fn, name)})
			}
			return nil, code
		}
	}
	return in, 0
}
