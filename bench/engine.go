package main

import (
	"context"
	"time"
)

// engine is one orchestration engine under test, driven by the workloads.
// Orchestration names are durablewasm's (Hello5, FanOut, WaitOne, Steps,
// StepsWait); each engine maps them to its own implementation.
type engine interface {
	name() string
	// setup starts a fresh worker on the flushed Redis (and deploys what it
	// needs); teardown stops it.
	setup(ctx context.Context, o setupOptions) error
	teardown()
	// restartWorker stops the worker and starts a new one (with empty
	// in-memory caches) on the same data.
	restartWorker(ctx context.Context) error
	// start starts orchestration fn with a JSON-encodable input under id.
	start(ctx context.Context, fn, id string, input any) error
	// state returns whether the instance finished, whether it has run its
	// first step (it is parked waiting), and the engine-recorded creation and
	// completion times.
	state(ctx context.Context, id string) (instState, error)
	// wait waits for the instance to finish the way the engine's client
	// API offers: durablewasm's Client.WaitForCompletion (default interval,
	// woken by the finish notification), go-workflows'
	// client.GetWorkflowResult.
	wait(ctx context.Context, id string) error
	raise(ctx context.Context, id, event string, data any) error
	// steps returns the timestamps of the activity-completion events in
	// the instance's history with each one's position in the history.
	steps(ctx context.Context, id string) ([]stepEvent, int, error)
	// parked reports whether a StepsWait(n) instance ran its n steps and
	// waits for its event.
	parked(ctx context.Context, id string, n int) (bool, error)
	// worker is the worker child process, nil when the worker runs in the
	// harness process.
	worker() *workerProc
}

type setupOptions struct {
	// maxWarm bounds the orchestrations a durablewasm worker keeps in
	// memory (0: default).
	maxWarm int
	// proc runs the worker in a child process (workerSpec), so that its RSS
	// and CPU are measured apart from the harness'.
	proc bool
	// localOff disables durablewasm's local activities
	// (worker.Options.LocalActivityMax negative).
	localOff bool
	// activityConcurrency is durablewasm's worker.Options.ActivityConcurrency
	// (0: default).
	activityConcurrency int
	// peer overrides -peer-default for go-workflows' worker options.
	peer peerOptions
	// httpAllow is durablewasm's module HTTP allowlist (host.AppSettings).
	httpAllow []string
	// rust also runs durablewasm with the Rust samples module (engine
	// durablewasm-rust), when it was built.
	rust bool
}

// peerOptions picks go-workflows' worker options for one workload.
type peerOptions int

const (
	peerAsFlag  peerOptions = iota // tuned unless -peer-default
	peerDefault                    // worker.DefaultOptions
	peerTuned                      // tuned (gwOptions)
)

type instState struct {
	done, started       bool
	failed              bool
	created, completed  time.Time
	historyLen          int
	customStatusWaiting bool
}

type stepEvent struct {
	index int
	at    time.Time
}
