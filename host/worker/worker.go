package worker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/replay"
	"github.com/durablewasm/durablewasm/host/sandbox"
)

// Options configure a Worker. Zero values take the documented defaults.
type Options struct {
	// ID names the worker in leases and consumer groups. Default:
	// "<hostname>-<pid>-<random>".
	ID string
	// LeaseTTL is how long a partition lease lasts without renewal (default
	// 10 s); leases are renewed every LeaseTTL/4. A dead worker's partitions
	// are taken over after about LeaseTTL.
	LeaseTTL time.Duration
	// MaxBatch is the most control messages read per partition per round
	// (default 256).
	MaxBatch int
	// ActivityConcurrency is the most activities in flight at once,
	// running or parked on I/O (default 1,000). An activity of a module
	// without asynchronous activities holds a module instance while it
	// runs, so for it ActivityInstances is the tighter bound.
	ActivityConcurrency int
	// ActivityInstances is the most module instances per module digest
	// that run activities (default 16). A module with asynchronous
	// activities (every module built with the Go SDK) runs many activities
	// on one instance and makes another only when every one it has is in a
	// call that has run over 2 ms (activities computing, or hung).
	ActivityInstances int
	// ActivityMemoryBytes bounds the linear memory of all activity
	// instances together (default 1 GiB): while they use more, no
	// instance is made and no activity is added to an asynchronous
	// instance; new activities wait for running ones to end.
	ActivityMemoryBytes uint64
	// OrchestrationInstances is the number of module instances per module
	// digest that multiplex orchestrations (default GOMAXPROCS).
	OrchestrationInstances int
	// MaxWarm bounds how many orchestrations are kept warm in memory (default
	// 50,000); the least recently used are evicted and later rebuilt by
	// replaying their history.
	MaxWarm int
	// VisibilityTimeout is how long an activity may run before another worker
	// presumes its worker dead and runs it again (default 5 min).
	VisibilityTimeout time.Duration
	// LocalActivityMax lets the worker that owns an orchestration run the
	// activities its step scheduled right away, in process, instead of
	// through the activity stream, when their average run time on this
	// worker is at most LocalActivityMax (default 10 ms; an activity never
	// seen runs through the stream first, and its runs there count). The
	// results are fed to the orchestration at once and the steps they wake
	// are committed together with the step that scheduled them: one Redis
	// round trip instead of three per activity. Activities still run at
	// least once: a crash before the commit runs them again. A negative
	// value disables local activities.
	LocalActivityMax time.Duration
	// LocalActivityBudget bounds how long one batch of steps keeps running
	// local activities and the steps they wake before it commits (default
	// 100 ms); what is scheduled after that goes to the activity stream.
	LocalActivityBudget time.Duration
	// MaxDeliveries fails an activity that was delivered this many times
	// without completing (default 10).
	MaxDeliveries int64
	// Limits bound guest payloads and history.
	Limits replay.Limits
	// ShutdownGrace is how long Run, once its context ends, lets the guest
	// calls in flight (activities, orchestration steps, instantiations)
	// finish (default DefaultShutdownGrace). Then it interrupts them: their
	// work items are neither completed nor failed but stay pending, to be
	// redelivered (an activity after the visibility timeout, a step's
	// messages to the partition's next owner), and Run returns.
	ShutdownGrace time.Duration
	// NoOrchestrations and NoActivities disable either kind of work.
	NoOrchestrations bool
	NoActivities     bool
	// ManagementPayload, when set, gives activities an instance's HTTP
	// management URLs (abi.ImportManagementURLs) as Durable Functions'
	// HttpManagementPayload JSON. The HTTP API sets it.
	ManagementPayload func(instanceID string) ([]byte, error)
	// Logger receives worker events (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultShutdownGrace is the default Options.ShutdownGrace.
const DefaultShutdownGrace = 10 * time.Second

func (o Options) withDefaults() Options {
	if o.ID == "" {
		hostname, _ := os.Hostname()
		o.ID = fmt.Sprintf("%s-%d-%s", hostname, os.Getpid(), host.NewInstanceID()[:6])
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.ActivityConcurrency <= 0 {
		o.ActivityConcurrency = 1000
	}
	if o.ActivityInstances <= 0 {
		o.ActivityInstances = 16
	}
	if o.ActivityMemoryBytes == 0 {
		o.ActivityMemoryBytes = 1 << 30
	}
	if o.OrchestrationInstances <= 0 {
		o.OrchestrationInstances = runtime.GOMAXPROCS(0)
	}
	if o.MaxWarm <= 0 {
		o.MaxWarm = 50_000
	}
	if o.VisibilityTimeout <= 0 {
		o.VisibilityTimeout = 5 * time.Minute
	}
	if o.LocalActivityMax == 0 {
		o.LocalActivityMax = 10 * time.Millisecond
	}
	if o.LocalActivityBudget <= 0 {
		o.LocalActivityBudget = 100 * time.Millisecond
	}
	if o.MaxDeliveries <= 0 {
		o.MaxDeliveries = 10
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = DefaultShutdownGrace
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Worker runs orchestrations of the partitions it owns and activities of all
// partitions. Create it with New and run it with Run.
type Worker struct {
	store  Store
	engine *sandbox.Engine
	opts   Options
	log    *slog.Logger

	modMu sync.Mutex
	pools map[string][]*sandbox.Instance // orchestration instances per digest
	// fetching has the fetch and compile of each digest in progress (see
	// module).
	fetchMu  sync.Mutex
	fetching map[string]*moduleFetch

	cache *warmCache
	acts  *activityPool
	set   settingsCache
	stats activityStats
	local chan struct{} // bounds concurrent local activities
	// noFresh holds instance ids whose next step must read the instance
	// even when its start message says it is fresh (after ErrStateChanged).
	noFresh sync.Map
	// guests tracks the worker's live module instances, which a shutdown
	// past ShutdownGrace interrupts.
	guests *sandbox.Set
	// assigned is the partition assignment computed for the live set
	// assignedFor (the lease loop's goroutine only).
	assigned    []string
	assignedFor string
	// failing counts the failed attempts of control messages (quarantine.go).
	failing failureCounts
	// alive is the last list of alive workers (liveness.go).
	alive atomic.Pointer[aliveWorkers]
	// completions batches activity results (completions.go).
	completions completer
}

// New returns a worker over store and engine.
func New(store Store, engine *sandbox.Engine, opts Options) *Worker {
	opts = opts.withDefaults()
	w := &Worker{store: store, engine: engine, opts: opts, log: opts.Logger.With("worker", opts.ID),
		pools: map[string][]*sandbox.Instance{}, guests: sandbox.NewSet()}
	w.cache = newWarmCache(opts.MaxWarm)
	w.completions.store = store
	w.acts = newActivityPool(engine, opts.ActivityConcurrency, opts.ActivityInstances, opts.ActivityMemoryBytes)
	w.local = make(chan struct{}, opts.ActivityConcurrency)
	return w
}

// ID returns the worker's id.
func (w *Worker) ID() string { return w.opts.ID }

// WarmCount returns how many orchestrations are held warm.
func (w *Worker) WarmCount() int { return w.cache.len() }

// Run works until ctx ends. It then lets every step and activity in flight
// finish and commit for up to ShutdownGrace, interrupts the guest calls still
// running then (their work stays pending, to be redelivered), releases its
// leases, leaves the worker set and returns nil, whatever the guests do. An
// error is returned only when it cannot work at all. A Worker runs once.
func (w *Worker) Run(ctx context.Context) error {
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
		case <-finished:
			return
		}
		t := time.NewTimer(w.opts.ShutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			n := w.guests.Abort()
			w.log.Warn("shutdown grace passed: interrupting the guest calls still running; their work stays pending and is redelivered",
				"grace", w.opts.ShutdownGrace, "instances", n)
		case <-finished:
		}
	}()
	// Liveness outlasts the activity loops: a worker's activities must not
	// look abandoned while they finish.
	aliveCtx, stopAlive := context.WithCancel(context.WithoutCancel(ctx))
	aliveDone := make(chan struct{})
	go func() {
		defer close(aliveDone)
		w.aliveLoop(aliveCtx)
	}()
	defer func() {
		stopAlive()
		<-aliveDone
	}()
	var wg sync.WaitGroup
	if !w.opts.NoActivities {
		for p := 0; p < w.store.Partitions(); p++ {
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				w.activityLoop(ctx, p)
			}(p)
		}
	}
	var err error
	if !w.opts.NoOrchestrations {
		err = w.leaseLoop(ctx)
	} else {
		<-ctx.Done()
	}
	wg.Wait()
	w.acts.close()
	return err
}

// module makes sure the module of digest is compiled.
func (w *Worker) module(ctx context.Context, digest string) error {
	if _, ok := w.engine.Compiled(digest); ok {
		return nil
	}
	// One fetch and compile per digest: at start-up every partition loop
	// asks at once, and each fetch is the whole module. Callers that find
	// one in progress wait for it and share its outcome.
	w.fetchMu.Lock()
	if _, ok := w.engine.Compiled(digest); ok {
		w.fetchMu.Unlock()
		return nil
	}
	f, busy := w.fetching[digest]
	if !busy {
		f = &moduleFetch{done: make(chan struct{})}
		if w.fetching == nil {
			w.fetching = map[string]*moduleFetch{}
		}
		w.fetching[digest] = f
	}
	w.fetchMu.Unlock()
	if busy {
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() {
		w.fetchMu.Lock()
		delete(w.fetching, digest)
		w.fetchMu.Unlock()
		close(f.done)
	}()
	wasm, err := w.store.GetModule(ctx, digest)
	if err != nil {
		f.err = fmt.Errorf("load module %s: %w", digest, err)
		return f.err
	}
	if sandbox.Digest(wasm) != digest {
		f.err = fmt.Errorf("load module %s: stored bytes have digest %s", digest, sandbox.Digest(wasm))
		return f.err
	}
	_, f.err = w.engine.Compile(ctx, digest, wasm)
	return f.err
}

// moduleFetch is a fetch and compile of one module in progress; err is set
// before done is closed.
type moduleFetch struct {
	done chan struct{}
	err  error
}

// orchInstance returns the live orchestration instance serving instanceID.
// For a module whose instantiation fails through the guest's fault it
// returns a stand-in whose every call fails with that failure (see
// brokenInstance), so that the orchestration fails with it.
func (w *Worker) orchInstance(ctx context.Context, digest, instanceID string) (*sandbox.Instance, error) {
	if err := w.module(ctx, digest); err != nil {
		return nil, err
	}
	h := fnv.New32a()
	h.Write([]byte(instanceID))
	w.modMu.Lock()
	defer w.modMu.Unlock()
	pool := w.pools[digest]
	if pool == nil {
		pool = make([]*sandbox.Instance, w.opts.OrchestrationInstances)
		w.pools[digest] = pool
	}
	i := int(h.Sum32() % uint32(len(pool)))
	if pool[i] == nil || pool[i].Dead() {
		g, err := w.engine.NewInstance(w.guests.With(ctx), digest, true, w.settings(ctx, digest))
		var gf *replay.GuestFailure
		if errors.As(err, &gf) {
			// The module's start function or _initialize trapped or
			// overran (now or within InstantiateRetryAfter): the
			// orchestration fails with that failure, as after a trap,
			// instead of its messages being retried for ever.
			return sandbox.Broken(digest, gf), nil
		}
		if err != nil {
			return nil, err
		}
		pool[i] = g
	}
	return pool[i], nil
}

// --- leases ----------------------------------------------------------------

type ownedPartition struct {
	epoch  int64
	cancel context.CancelFunc
	done   chan struct{}
}

func (w *Worker) leaseLoop(ctx context.Context) error {
	owned := map[int]*ownedPartition{}
	stop := func(p int, release bool) {
		op := owned[p]
		op.cancel()
		<-op.done
		delete(owned, p)
		w.cache.dropPartition(p)
		if release {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := w.store.ReleaseLease(rctx, p, w.opts.ID, op.epoch); err != nil {
				w.log.Warn("release lease", "partition", p, "err", err)
			}
			cancel()
		}
	}
	defer func() {
		for p := range owned {
			stop(p, true)
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = w.store.LeaveWorkers(rctx, w.opts.ID)
		cancel()
	}()
	ttl := w.opts.LeaseTTL
	tick := time.NewTicker(ttl / 4)
	defer tick.Stop()
	for {
		live, err := w.store.Heartbeat(ctx, w.opts.ID, ttl)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.Warn("heartbeat failed; retrying", "err", err)
		} else {
			w.balance(ctx, live, owned, stop)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// assignment is assignPartitions of the hub's partitions over live,
// remembered for the last live set (it changes only when workers come or go).
func (w *Worker) assignment(live []string) []string {
	key := strings.Join(live, "\x00")
	if w.assigned == nil || w.assignedFor != key {
		w.assigned, w.assignedFor = assignPartitions(live, w.store.Partitions()), key
	}
	return w.assigned
}

func (w *Worker) balance(ctx context.Context, live []string, owned map[int]*ownedPartition, stop func(int, bool)) {
	me := w.opts.ID
	alive := false
	for _, id := range live {
		alive = alive || id == me
	}
	if !alive {
		live = append(live, me)
	}
	assign := w.assignment(live)
	for p := 0; p < w.store.Partitions(); p++ {
		pref := assign[p]
		if op, ok := owned[p]; ok {
			// A partition loop that ended on its own lost its lease.
			select {
			case <-op.done:
				stop(p, false)
				continue
			default:
			}
			if pref != me {
				w.log.Info("handing partition to its preferred worker", "partition", p, "to", pref)
				stop(p, true)
				continue
			}
			ok, err := w.store.RenewLease(ctx, p, me, op.epoch, w.opts.LeaseTTL)
			if err != nil && ctx.Err() == nil {
				w.log.Warn("renew lease", "partition", p, "err", err)
			}
			if err == nil && !ok {
				w.log.Warn("lost lease", "partition", p)
				stop(p, false)
			}
			continue
		}
		if pref != me {
			continue
		}
		epoch, ok, err := w.store.AcquireLease(ctx, p, me, w.opts.LeaseTTL)
		if err != nil || !ok {
			if err != nil && ctx.Err() == nil {
				w.log.Warn("acquire lease", "partition", p, "err", err)
			}
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		op := &ownedPartition{epoch: epoch, cancel: cancel, done: make(chan struct{})}
		owned[p] = op
		w.log.Debug("acquired partition", "partition", p, "epoch", epoch)
		go func() {
			defer close(op.done)
			w.partitionLoop(pctx, p, epoch)
		}()
	}
}

// errLeaseLost ends a partition loop.
var errLeaseLost = errors.New("lease lost")
