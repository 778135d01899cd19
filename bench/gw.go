package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/cschleiden/go-workflows/backend"
	"github.com/cschleiden/go-workflows/backend/history"
	"github.com/cschleiden/go-workflows/client"
	"github.com/cschleiden/go-workflows/core"
	"github.com/cschleiden/go-workflows/worker"
	"github.com/cschleiden/go-workflows/workflow"
	"github.com/durablewasm/durablewasm/samples/flows/benchwork"
	"github.com/redis/go-redis/v9"
)

// The go-workflows implementations of the benchmark orchestrations: the
// same logic as samples/flows/bench.go, natively in Go (how that engine
// works).

func gwEcho(ctx context.Context, in string) (string, error) { return in, nil }

func gwEchoInt(ctx context.Context, in int) (int, error) { return in, nil }

func gwHello5(ctx workflow.Context, in string) (string, error) {
	v := in
	for i := 0; i < 5; i++ {
		out, err := workflow.ExecuteActivity[string](ctx, workflow.DefaultActivityOptions, gwEcho, v).Get(ctx)
		if err != nil {
			return "", err
		}
		v = out
	}
	return v, nil
}

func gwFanOut(ctx workflow.Context, n int) (int, error) {
	fs := make([]workflow.Future[int], n)
	for i := range fs {
		fs[i] = workflow.ExecuteActivity[int](ctx, workflow.DefaultActivityOptions, gwEchoInt, i)
	}
	sum := 0
	for _, f := range fs {
		r, err := f.Get(ctx)
		if err != nil {
			return 0, err
		}
		sum += r
	}
	return sum, nil
}

func gwWaitOne(ctx workflow.Context, in string) (string, error) {
	v, _ := workflow.NewSignalChannel[string](ctx, "go").Receive(ctx)
	return v, nil
}

func gwStepsN(ctx workflow.Context, n int) error {
	for i := 0; i < n; i++ {
		if _, err := workflow.ExecuteActivity[int](ctx, workflow.DefaultActivityOptions, gwEchoInt, i).Get(ctx); err != nil {
			return err
		}
	}
	return nil
}

func gwSteps(ctx workflow.Context, n int) (int, error) {
	return n, gwStepsN(ctx, n)
}

func gwStepsWait(ctx workflow.Context, n int) (int, error) {
	if err := gwStepsN(ctx, n); err != nil {
		return 0, err
	}
	workflow.NewSignalChannel[string](ctx, "go").Receive(ctx)
	out, err := workflow.ExecuteActivity[int](ctx, workflow.DefaultActivityOptions, gwEchoInt, n).Get(ctx)
	return out + 1, err
}

// gwHTTPResult is gwHTTPGet's result (flows.HTTPResult).
type gwHTTPResult struct {
	Status int `json:"status"`
	Length int `json:"length"`
}

// gwHTTPGet does what durablewasm's host does for Bench_HTTPGet: a GET with
// an http.Client on http.DefaultTransport, the body read whole.
func gwHTTPGet(ctx context.Context, url string) (gwHTTPResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return gwHTTPResult{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return gwHTTPResult{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return gwHTTPResult{}, err
	}
	return gwHTTPResult{Status: resp.StatusCode, Length: len(body)}, nil
}

func gwHello5IO(ctx workflow.Context, url string) (int, error) {
	total := 0
	for i := 0; i < 5; i++ {
		r, err := workflow.ExecuteActivity[gwHTTPResult](ctx, workflow.DefaultActivityOptions, gwHTTPGet, url).Get(ctx)
		if err != nil {
			return 0, err
		}
		if r.Status != 200 {
			return 0, fmt.Errorf("GET %s: status %d", url, r.Status)
		}
		total += r.Length
	}
	return total, nil
}

// gwCompute runs the same Go code as durablewasm's Bench_Compute, natively.
func gwCompute(ctx context.Context, n int) (uint64, error) { return benchwork.Compute(n), nil }

func gwHello5CPU(ctx workflow.Context, n int) (uint64, error) {
	var out uint64
	for i := 0; i < 5; i++ {
		r, err := workflow.ExecuteActivity[uint64](ctx, workflow.DefaultActivityOptions, gwCompute, n).Get(ctx)
		if err != nil {
			return 0, err
		}
		out = r
	}
	return out, nil
}

var gwWorkflows = map[string]any{
	"Hello5": gwHello5, "FanOut": gwFanOut, "WaitOne": gwWaitOne, "Steps": gwSteps, "StepsWait": gwStepsWait,
	"Hello5IO": gwHello5IO, "Hello5CPU": gwHello5CPU,
}

// gwRegister registers every workflow and activity with w.
func gwRegister(w *worker.Worker) error {
	for _, wf := range gwWorkflows {
		if err := w.RegisterWorkflow(wf); err != nil {
			return err
		}
	}
	for _, a := range []any{gwEcho, gwEchoInt, gwHTTPGet, gwCompute} {
		if err := w.RegisterActivity(a); err != nil {
			return err
		}
	}
	return nil
}

// gwEngine runs go-workflows v1.2.0 with its Redis backend: one worker,
// tuned as issue 6 says (gwTuning) unless -peer-default or the workload
// says otherwise, in the harness process or in a child process.
type gwEngine struct {
	addr string
	// tuned is the -peer-default flag's choice; cur the current workload's.
	tuned, cur bool
	opts       setupOptions
	proc       *workerProc

	rdb     *redis.Client // the backend's connection
	raw     *redis.Client // the harness' own, for reading instance state
	backend backend.Backend
	client  *client.Client
	cancel  context.CancelFunc
	w       *worker.Worker

	mu        sync.Mutex
	instances map[string]*workflow.Instance
}

func newGW(addr string, tuned bool) *gwEngine {
	return &gwEngine{addr: addr, tuned: tuned}
}

func (e *gwEngine) name() string { return "go-workflows" }

// gwOptions are the worker options: DefaultOptions, tuned like issue 6 (8
// workflow and 8 activity pollers, single-worker mode, executor cache of
// 8,192) when tuned. The polling intervals do not apply to the Redis
// backend (it blocks on its queues).
func gwOptions(tuned bool) worker.Options {
	o := worker.DefaultOptions
	if tuned {
		o.WorkflowPollers = 8
		o.ActivityPollers = 8
		o.SingleWorkerMode = true
		o.WorkflowExecutorCacheSize = 8192
	}
	return o
}

func gwTuning(tuned bool) string {
	if !tuned {
		return "worker.DefaultOptions (2 workflow + 2 activity pollers, executor cache 128)"
	}
	return "worker.DefaultOptions + 8 workflow pollers, 8 activity pollers, SingleWorkerMode, WorkflowExecutorCacheSize 8192"
}

func (e *gwEngine) setup(ctx context.Context, o setupOptions) error {
	e.opts = o
	e.cur = e.tuned
	switch o.peer {
	case peerDefault:
		e.cur = false
	case peerTuned:
		e.cur = true
	}
	e.instances = map[string]*workflow.Instance{}
	e.rdb = redis.NewClient(&redis.Options{Addr: e.addr, PoolSize: 64})
	e.raw = redis.NewClient(&redis.Options{Addr: e.addr})
	b, err := newGWBackend(e.rdb)
	if err != nil {
		return err
	}
	e.backend = b
	e.client = client.New(b)
	return e.startWorker(ctx)
}

func (e *gwEngine) worker() *workerProc { return e.proc }

func (e *gwEngine) startWorker(ctx context.Context) error {
	if e.opts.proc {
		p, err := startWorkerProc(workerSpec{Engine: e.name(), Addr: e.addr, GWTuned: e.cur})
		e.proc = p
		return err
	}
	opts := gwOptions(e.cur)
	w := worker.New(e.backend, &opts)
	if err := gwRegister(w); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(context.Background())
	if err := w.Start(wctx); err != nil {
		cancel()
		return err
	}
	e.w, e.cancel = w, cancel
	return nil
}

func (e *gwEngine) stopWorker() {
	if e.proc != nil {
		e.proc.stop()
		e.proc = nil
	}
	if e.w == nil {
		return
	}
	e.cancel()
	e.w.WaitForCompletion()
	e.w = nil
}

func (e *gwEngine) restartWorker(ctx context.Context) error {
	e.stopWorker()
	return e.startWorker(ctx)
}

func (e *gwEngine) teardown() {
	e.stopWorker()
	if e.backend != nil {
		e.backend.Close()
		e.raw.Close()
		e.backend = nil
	}
}

func (e *gwEngine) start(ctx context.Context, fn, id string, input any) error {
	wf, ok := gwWorkflows[fn]
	if !ok {
		return fmt.Errorf("no go-workflows workflow %s", fn)
	}
	inst, err := e.client.CreateWorkflowInstance(ctx, client.WorkflowInstanceOptions{InstanceID: id}, wf, input)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.instances[id] = inst
	e.mu.Unlock()
	return nil
}

func (e *gwEngine) instance(id string) (*workflow.Instance, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	inst, ok := e.instances[id]
	if !ok {
		return nil, fmt.Errorf("unknown instance %s", id)
	}
	return inst, nil
}

// state reads the backend's instance record (instance:<id>:<execution>,
// JSON with state, created_at and completed_at) and the history stream's
// length.
func (e *gwEngine) wait(ctx context.Context, id string) error {
	inst, err := e.instance(id)
	if err != nil {
		return err
	}
	_, err = client.GetWorkflowResult[string](ctx, e.client, inst, time.Minute)
	return err
}

func (e *gwEngine) state(ctx context.Context, id string) (instState, error) {
	inst, err := e.instance(id)
	if err != nil {
		return instState{}, err
	}
	seg := inst.InstanceID + ":" + inst.ExecutionID
	p := e.raw.Pipeline()
	get := p.Get(ctx, "instance:"+seg)
	xlen := p.XLen(ctx, "history:"+seg)
	if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
		return instState{}, err
	}
	var rec struct {
		State     core.WorkflowInstanceState `json:"state"`
		CreatedAt time.Time                  `json:"created_at"`
	}
	if err := json.Unmarshal([]byte(get.Val()), &rec); err != nil {
		return instState{}, fmt.Errorf("instance %s: %w", id, err)
	}
	s := instState{
		done:       rec.State == core.WorkflowInstanceStateFinished,
		started:    xlen.Val() > 0,
		created:    rec.CreatedAt,
		historyLen: int(xlen.Val()),
	}
	if s.done {
		// completed_at has a resolution of a second: take the timestamp of
		// the last history event (WorkflowExecutionFinished) instead.
		msgs, err := e.raw.XRevRangeN(ctx, "history:"+seg, "+", "-", 1).Result()
		if err != nil || len(msgs) == 0 {
			return instState{}, fmt.Errorf("instance %s: history: %v", id, err)
		}
		var ev struct {
			Type      history.EventType `json:"t"`
			Timestamp time.Time         `json:"ts"`
		}
		data, _ := msgs[0].Values["event"].(string)
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return instState{}, fmt.Errorf("instance %s: last event: %w", id, err)
		}
		s.completed = ev.Timestamp
		s.failed = ev.Type != history.EventType_WorkflowExecutionFinished
	}
	return s, nil
}

func (e *gwEngine) raise(ctx context.Context, id, event string, data any) error {
	return e.client.SignalWorkflow(ctx, id, event, data)
}

func (e *gwEngine) steps(ctx context.Context, id string) ([]stepEvent, int, error) {
	inst, err := e.instance(id)
	if err != nil {
		return nil, 0, err
	}
	h, err := e.backend.GetWorkflowInstanceHistory(ctx, inst, nil)
	if err != nil {
		return nil, 0, err
	}
	var out []stepEvent
	for i, ev := range h {
		if ev.Type == history.EventType_ActivityCompleted {
			out = append(out, stepEvent{index: i, at: ev.Timestamp})
		}
	}
	return out, len(h), nil
}

// parked: the n-th activity completion is in the history, so the workflow
// task that consumed it (and reached the signal wait) has committed.
func (e *gwEngine) parked(ctx context.Context, id string, n int) (bool, error) {
	s, _, err := e.steps(ctx, id)
	return err == nil && len(s) >= n, err
}
