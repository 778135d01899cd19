package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/sandbox"
	dwworker "github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/redisstore"
	"github.com/durablewasm/durablewasm/samples"
)

// dwEngine runs a samples guest module on one durablewasm worker with
// default options (unless setupOptions say otherwise), in the harness
// process or in a child process: the Go samples (samples/flows/bench.go,
// engine "durablewasm", hub Bench) or the Rust samples (samples/rust, engine
// "durablewasm-rust", hub BenchRust; the same function names).
type dwEngine struct {
	url      string
	cacheDir string
	opts     setupOptions
	label    string
	hub      string
	wasm     []byte

	store  *redisstore.Store
	engine *sandbox.Engine
	client *client.Client

	w    *dwWorker
	proc *workerProc
}

type dwWorker struct {
	cancel context.CancelFunc
	done   chan error
	store  *redisstore.Store
	engine *sandbox.Engine
}

const dwHub = "Bench"

// goWasm is the Go samples module.
var goWasm = samples.Wasm

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// newDW returns durablewasm with the Go samples module, or with rustWasm
// (the Rust samples module) when it is not nil.
func newDW(url string, rustWasm []byte) *dwEngine {
	dir := filepath.Join(os.TempDir(), "durablewasm-bench-cache")
	if rustWasm != nil {
		return &dwEngine{url: url, cacheDir: dir, label: rustEngine, hub: rustHub, wasm: rustWasm}
	}
	return &dwEngine{url: url, cacheDir: dir, label: "durablewasm", hub: dwHub, wasm: goWasm}
}

func (e *dwEngine) name() string { return e.label }

func (e *dwEngine) setup(ctx context.Context, o setupOptions) error {
	e.opts = o
	st, err := redisstore.Open(ctx, e.url, e.hub, redisstore.Options{})
	if err != nil {
		return err
	}
	eng, err := sandbox.NewEngine(ctx, sandbox.EngineOptions{CacheDir: e.cacheDir, Logger: discard})
	if err != nil {
		st.Close()
		return err
	}
	e.store, e.engine, e.client = st, eng, client.New(st, eng)
	if _, err := e.client.DeployWithSettings(ctx, "bench", e.wasm, host.AppSettings{HTTPAllow: o.httpAllow}); err != nil {
		return err
	}
	return e.startWorker(ctx)
}

func (e *dwEngine) spec() workerSpec {
	s := workerSpec{Engine: "durablewasm", Hub: e.hub, Addr: strings.TrimPrefix(e.url, "redis://"), MaxWarm: e.opts.maxWarm,
		ActivityConcurrency: e.opts.activityConcurrency, CacheDir: e.cacheDir}
	if e.opts.localOff {
		s.LocalActivityMax = -1
	}
	return s
}

func (e *dwEngine) worker() *workerProc { return e.proc }

func (e *dwEngine) startWorker(ctx context.Context) error {
	if e.opts.proc {
		p, err := startWorkerProc(e.spec())
		e.proc = p
		return err
	}
	st, err := redisstore.Open(ctx, e.url, e.hub, redisstore.Options{})
	if err != nil {
		return err
	}
	eng, err := sandbox.NewEngine(ctx, sandbox.EngineOptions{CacheDir: e.cacheDir, Logger: discard})
	if err != nil {
		st.Close()
		return err
	}
	wctx, cancel := context.WithCancel(context.Background())
	w := &dwWorker{cancel: cancel, done: make(chan error, 1), store: st, engine: eng}
	dw := dwworker.New(st, eng, e.spec().dwOptions())
	go func() { w.done <- dw.Run(wctx) }()
	e.w = w
	return nil
}

func (e *dwEngine) stopWorker() {
	if e.proc != nil {
		e.proc.stop()
		e.proc = nil
	}
	if e.w == nil {
		return
	}
	e.w.cancel()
	<-e.w.done
	e.w.engine.Close(context.Background())
	e.w.store.Close()
	e.w = nil
}

func (e *dwEngine) restartWorker(ctx context.Context) error {
	e.stopWorker()
	return e.startWorker(ctx)
}

func (e *dwEngine) teardown() {
	e.stopWorker()
	if e.engine != nil {
		e.engine.Close(context.Background())
		e.store.Close()
		e.engine, e.store = nil, nil
	}
}

func (e *dwEngine) start(ctx context.Context, fn, id string, input any) error {
	in, err := json.Marshal(input)
	if err != nil {
		return err
	}
	_, err = e.client.StartNew(ctx, client.StartOptions{FunctionName: fn, InstanceID: id, Input: string(in)})
	return err
}

func (e *dwEngine) wait(ctx context.Context, id string) error {
	st, err := e.client.WaitForCompletion(ctx, id, 0)
	if err == nil && st.Status != abi.StatusCompleted {
		err = fmt.Errorf("%s: %s", id, st.Status)
	}
	return err
}

func (e *dwEngine) state(ctx context.Context, id string) (instState, error) {
	st, err := e.client.GetStatus(ctx, id)
	if err != nil {
		return instState{}, err
	}
	return instState{
		done:                st.Status.Terminal(),
		failed:              st.Status == abi.StatusFailed || st.Status == abi.StatusTerminated,
		started:             st.Status != abi.StatusPending,
		created:             st.CreatedAt,
		completed:           st.UpdatedAt,
		historyLen:          int(st.HistoryLength),
		customStatusWaiting: st.CustomStatus == `"waiting"`,
	}, nil
}

func (e *dwEngine) raise(ctx context.Context, id, event string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return e.client.RaiseEvent(ctx, id, event, string(b))
}

func (e *dwEngine) steps(ctx context.Context, id string) ([]stepEvent, int, error) {
	h, err := e.client.GetHistory(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	var out []stepEvent
	for i, ev := range h {
		if ev.Type == abi.EventTaskCompleted {
			out = append(out, stepEvent{index: i, at: time.Unix(0, ev.Timestamp)})
		}
	}
	return out, len(h), nil
}

func (e *dwEngine) parked(ctx context.Context, id string, n int) (bool, error) {
	st, err := e.state(ctx, id)
	return err == nil && st.customStatusWaiting && !st.done, err
}
