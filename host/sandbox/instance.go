package sandbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
)

// Instance is one instantiated module. An orchestration instance
// multiplexes many orchestrations (handles); an activity instance runs one
// activity at a time, or, for a module that takes asynchronous activities,
// many, each parked while its host calls do I/O (see activities.go). Callers serialise calls with mu: a Go guest must never
// be entered concurrently.
type Instance struct {
	mu      sync.Mutex
	digest  string
	mod     api.Module
	fnAlloc api.Function
	fnStart api.Function
	fnRes   api.Function
	fnDrop  api.Function
	fnAct   api.Function
	// fnActResume and fnActDrop are the optional exports of asynchronous
	// activities (nil when the module does not take them).
	fnActResume api.Function
	fnActDrop   api.Function
	stderr      *tailBuffer
	logger      *slog.Logger
	timeout     time.Duration
	// memLimit is the instance's memory limit in bytes.
	memLimit uint64
	// settings are the module's limits and activity capabilities.
	settings *host.AppSettings

	handles    map[uint32]*replay.State
	nextHandle uint32
	// current is the handle being started, resumed or dropped; host
	// functions refuse every other handle.
	current uint32
	now     atomic.Int64 // replay-safe wall clock for orchestrations
	dead    atomic.Bool
	// busySince is when the running call into the guest began (Unix ns),
	// 0 when none runs (see BusyFor).
	busySince atomic.Int64
	// interrupt, in an instrumented module, stops the guest at its next
	// loop iteration when set to 1 (see instrumentLoops); interrupted
	// records that the host set it.
	interrupt   api.MutableGlobal
	interrupted atomic.Bool
	// deadline is the reusable timer that sets interrupt when a call runs
	// past timeout (created by the first call that needs it): a context
	// with a deadline and an AfterFunc per call cost about 1.5 µs.
	deadline *time.Timer
	// instantiating: the start function or _initialize is running (timeout
	// is then the instantiation deadline).
	instantiating bool
	// wake is closed when the instance is interrupted; it ends sleeps.
	wake     chan struct{}
	wakeOnce sync.Once
	// broken, in a stand-in for a module that cannot be instantiated, is
	// the failure every call returns (see Broken).
	broken *replay.GuestFailure
	// set tracks the instance for its worker's shutdown; aborted records
	// that the shutdown interrupted it; abortFn stops it in its current
	// phase (guarded by abortMu).
	set     *Set
	aborted atomic.Bool
	abortMu sync.Mutex
	abortFn func()
}

// tailBuffer keeps the last 8 KiB written (guest stderr: Go panics and fatal
// errors), for failure messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 8192 {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-8192:]...)
	}
	t.mu.Unlock()
	return len(p), nil
}

func (t *tailBuffer) take() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.buf)
	t.buf = t.buf[:0]
	return s
}

type zeroReader struct{ state uint64 }

// Read produces a fixed pseudo-random stream: orchestrator instances get no
// real entropy, so nothing they do depends on it.
func (z *zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		z.state = z.state*6364136223846793005 + 1442695040888963407
		p[i] = byte(z.state >> 56)
	}
	return len(p), nil
}

// newInstance instantiates a compiled module. Orchestration instances see the
// step's replay-safe wall clock and deterministic randomness; activity
// instances see the real ones. Neither gets a filesystem, environment,
// arguments or network.
//
// st, when not nil, narrows the engine's limits (deadlines, memory) for the
// module and carries its activity capabilities.
//
// The module's start function and _initialize run under the instantiation
// deadline (EngineOptions.InstantiateTimeout). When they trap or overrun,
// the error is a *replay.GuestFailure (GuestTrap, DW2002) naming the digest,
// and the engine remembers it: until EngineOptions.InstantiateRetryAfter
// has passed, newInstance returns the same failure at once. A ctx carrying a
// Set (withGuests) registers the instance in it, and fails with
// ErrAborted once the set was aborted.
func (e *Engine) NewInstance(ctx context.Context, digest string, orchestration bool, st *host.AppSettings) (*Instance, error) {
	ent, ok := e.entry(digest)
	if !ok {
		return nil, fmt.Errorf("module %s is not compiled", digest)
	}
	if st == nil {
		st = &host.AppSettings{}
	}
	g := &Instance{digest: digest, stderr: &tailBuffer{}, logger: e.opts.Logger, handles: map[uint32]*replay.State{},
		timeout: e.opts.StepTimeout, memLimit: e.opts.MemoryLimitBytes, settings: st, wake: make(chan struct{})}
	if set, _ := ctx.Value(guestSetKey{}).(*Set); set != nil {
		if !set.add(g) {
			return nil, ErrAborted
		}
		g.set = set
	}
	f, probe := e.instantiateGate(digest)
	if f != nil {
		g.untrack()
		return nil, f
	}
	e.instantiations.Add(1)
	g, err := e.instantiate(ctx, ent, g, orchestration)
	e.instantiated(digest, probe, err)
	return g, err
}

// Instantiations is how many module instances the engine has tried to
// create since it started (those refused by the instantiation breaker not
// counted).
func (e *Engine) Instantiations() int64 { return e.instantiations.Load() }

// instantiate does newInstance's work once the breaker let it through.
func (e *Engine) instantiate(ctx context.Context, ent *compileEntry, g *Instance, orchestration bool) (*Instance, error) {
	e.applyLimits(g, orchestration)
	cfg := g.moduleConfig(orchestration)
	if alloc := memoryAllocator(g.memLimit); alloc != nil {
		ctx = experimental.WithMemoryAllocator(ctx, alloc)
	}
	mod, err := e.instantiateModule(ctx, ent, g, cfg)
	if err != nil {
		return nil, err
	}
	g.mod = mod
	g.armAbort(ent, mod)
	if err := g.initialize(ctx, ent, mod, e.opts.InstantiateTimeout); err != nil {
		return nil, err
	}
	g.bindExports(mod)
	return g, nil
}

// applyLimits narrows g's memory limit to the module's settings and sets
// its call deadline: the step deadline (the module's, if it sets one) for an
// orchestration instance, the activity deadline (likewise) for an activity
// instance.
func (e *Engine) applyLimits(g *Instance, orchestration bool) {
	st := g.settings
	if st.MemoryLimitBytes > 0 && st.MemoryLimitBytes < g.memLimit {
		g.memLimit = st.MemoryLimitBytes
	}
	if orchestration && st.StepTimeout > 0 {
		g.timeout = st.StepTimeout
	}
	if !orchestration {
		g.timeout = e.opts.ActivityTimeout
		if st.ActivityTimeout > 0 {
			g.timeout = st.ActivityTimeout
		}
	}
}

// moduleConfig returns the module configuration of g: no start functions,
// the system monotonic clock, sleeps that end when g is interrupted, stderr
// kept in g.stderr and stdout discarded; an orchestration instance sees the
// step's replay-safe wall clock and deterministic randomness, an activity
// instance the real ones.
func (g *Instance) moduleConfig(orchestration bool) wazero.ModuleConfig {
	// The start function runs below, through call, under the deadline: the
	// rewriter turned an instrumented module's start section into the
	// StartExport export. (A module it could not instrument runs its start
	// section inside InstantiateModule, on the runtime that closes modules
	// when their context ends.) Sleeps end early when the instance is
	// interrupted, so that a sleeping guest meets its deadline too.
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions().
		WithSysNanotime().WithNanosleep(g.nanosleep).WithStderr(g.stderr).WithStdout(io.Discard)
	if orchestration {
		return cfg.WithWalltime(func() (int64, int32) {
			n := g.now.Load()
			return n / 1e9, int32(n % 1e9)
		}, sys.ClockResolution(1)).WithRandSource(&zeroReader{state: 0x5eed})
	}
	return cfg.WithSysWalltime().WithRandSource(rand.Reader)
}

// instantiateModule instantiates ent's module with cfg under the
// instantiation deadline, which g's abort cancels. On failure it untracks g
// and returns the error of instantiateError.
func (e *Engine) instantiateModule(ctx context.Context, ent *compileEntry, g *Instance, cfg wazero.ModuleConfig) (api.Module, error) {
	limit := e.opts.InstantiateTimeout
	ictx, cancel := context.WithTimeout(ctx, limit)
	g.onAbort(cancel)
	mod, err := ent.rt.InstantiateModule(ictx, ent.mod, cfg)
	deadline := ictx.Err() == context.DeadlineExceeded
	cancel()
	if err != nil {
		g.untrack()
		return nil, g.instantiateError(ctx, err, deadline, limit)
	}
	return mod, nil
}

// instantiateError classifies err, the failure of InstantiateModule (deadline:
// the instantiation deadline limit passed): ErrAborted after a shutdown's
// abort, ctx's error once ctx ended, a GuestTrap (instantiateFailure) when
// the start section trapped or overran, and otherwise err itself, with the
// guest's stderr.
func (g *Instance) instantiateError(ctx context.Context, err error, deadline bool, limit time.Duration) error {
	digest := g.digest
	var exit *sys.ExitError
	switch {
	case g.aborted.Load():
		return fmt.Errorf("instantiate module %s: %w", digest, ErrAborted)
	case ctx.Err() != nil:
		return fmt.Errorf("instantiate module %s: %w", digest, ctx.Err())
	case deadline || errors.As(err, &exit) || strings.Contains(err.Error(), "wasm error"):
		// The start section trapped or overran: the guest's fault.
		msg := err.Error()
		if deadline || errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded {
			msg = fmt.Sprintf("the start function ran longer than the instantiation deadline of %s and was stopped", limit)
		}
		return instantiateFailure(digest, msg, g.stderr.take())
	}
	return fmt.Errorf("instantiate module %s: %w%s", digest, err, stderrSuffix(g.stderr.take()))
}

// armAbort finds the interrupt global of an instrumented module and makes
// g's abort set it; for a module without one, abort closes mod.
func (g *Instance) armAbort(ent *compileEntry, mod api.Module) {
	if ent.instrumented {
		g.interrupt, _ = mod.ExportedGlobal(InterruptGlobal).(api.MutableGlobal)
	}
	if g.interrupt != nil {
		g.onAbort(func() { g.interrupt.Set(1) })
	} else {
		g.onAbort(func() { _ = mod.CloseWithExitCode(context.Background(), sys.ExitCodeContextCanceled) })
	}
}

// initialize runs mod's StartExport (only in an instrumented module) and
// _initialize, those it exports, under the instantiation deadline limit,
// then restores g's call deadline. On failure it closes g and returns a
// GuestTrap (instantiateFailure) when the guest is at fault, the call's
// error otherwise.
func (g *Instance) initialize(ctx context.Context, ent *compileEntry, mod api.Module, limit time.Duration) error {
	timeout := g.timeout
	g.timeout, g.instantiating = limit, true
	for _, name := range []string{StartExport, "_initialize"} {
		fn := mod.ExportedFunction(name)
		if fn == nil || name == StartExport && !ent.instrumented {
			continue
		}
		if _, err := g.call(ctx, name, fn); err != nil {
			g.Close(ctx)
			var gf *replay.GuestFailure
			if errors.As(err, &gf) {
				return instantiateFailure(g.digest, gf.Failure.Message, gf.Failure.Stack)
			}
			return fmt.Errorf("instantiate module %s: %w", g.digest, err)
		}
	}
	g.timeout, g.instantiating = timeout, false
	return nil
}

// bindExports looks up the ABI's exported functions in mod (nil for those
// mod does not export).
func (g *Instance) bindExports(mod api.Module) {
	g.fnAlloc = mod.ExportedFunction(abi.ExportAlloc)
	g.fnStart = mod.ExportedFunction(abi.ExportOrchestratorStart)
	g.fnRes = mod.ExportedFunction(abi.ExportOrchestratorResume)
	g.fnDrop = mod.ExportedFunction(abi.ExportOrchestratorDrop)
	g.fnAct = mod.ExportedFunction(abi.ExportActivityRun)
	g.fnActResume = mod.ExportedFunction(abi.ExportActivityResume)
	g.fnActDrop = mod.ExportedFunction(abi.ExportActivityDrop)
}

// instantiateFailure is the failure of a module whose start function or
// _initialize trapped or overran: a GuestTrap [DW2002] naming the digest.
func instantiateFailure(digest, msg, stack string) *replay.GuestFailure {
	return &replay.GuestFailure{Failure: &abi.FailureDetails{Type: abi.FailureGuestTrap, Code: replay.CodeGuestTrap,
		Message: fmt.Sprintf("instantiate module %s: %s", digest, msg), Stack: stack}}
}

// Broken stands for a module whose instantiation failed through the
// guest's fault: every call fails with failure, so that an orchestration
// started or replayed on it fails with it (as after a trap), deterministically
// and at once. It is dead: the worker never keeps it.
func Broken(digest string, failure *replay.GuestFailure) *Instance {
	g := &Instance{digest: digest, handles: map[uint32]*replay.State{}, broken: failure, stderr: &tailBuffer{}}
	g.dead.Store(true)
	return g
}

// nanosleep is the guest's sleep (WASI poll_oneoff): it ends early when the
// instance is interrupted (deadline or shutdown), so that the guest reaches a
// loop head and stops.
func (g *Instance) nanosleep(ns int64) {
	t := time.NewTimer(time.Duration(ns))
	select {
	case <-t.C:
	case <-g.wake:
		t.Stop()
	}
}

// wakeUp ends the guest's current and future sleeps.
func (g *Instance) wakeUp() {
	g.wakeOnce.Do(func() { close(g.wake) })
}

// onAbort sets what abort does to stop the instance in its current phase;
// after an abort it runs fn at once.
func (g *Instance) onAbort(fn func()) {
	g.abortMu.Lock()
	aborted := g.aborted.Load()
	if !aborted {
		g.abortFn = fn
	}
	g.abortMu.Unlock()
	if aborted {
		fn()
	}
}

// abort stops the instance for a shutdown, from any goroutine: a running
// call ends with ErrAborted (not a guest failure), and so does every later
// one.
func (g *Instance) abort() {
	g.abortMu.Lock()
	g.aborted.Store(true)
	fn := g.abortFn
	g.abortMu.Unlock()
	g.wakeUp()
	if fn != nil {
		fn()
	}
}

// untrack removes the instance from its guest set.
func (g *Instance) untrack() {
	if g.set != nil {
		g.set.remove(g)
	}
}

// ErrAborted ends guest calls and instantiations that a worker's shutdown
// interrupted at its deadline (worker.Options.ShutdownGrace). It is not a
// guest failure: the work item stays pending and is redelivered. It wraps
// context.Canceled, so that it never counts as a failed attempt of a message
// (see transient).
var ErrAborted = fmt.Errorf("interrupted: the worker is shutting down: %w", context.Canceled)

func stderrSuffix(s string) string {
	if s == "" {
		return ""
	}
	return "\nguest stderr:\n" + s
}

// Dead reports whether the instance was discarded (a trap, a stuck
// orchestration, an interrupt): it takes no more calls.
func (g *Instance) Dead() bool { return g.dead.Load() }

// Aborted reports whether the worker's shutdown interrupted the instance
// (Set.Abort): what it returned then is not a result.
func (g *Instance) Aborted() bool { return g.aborted.Load() }

// BusyFor reports how long the call into the guest running at this moment
// has run, 0 when none runs. An activity instance's pool prefers instances
// that are not in a call, and makes a new one when every one is in a long
// call.
func (g *Instance) BusyFor() time.Duration {
	since := g.busySince.Load()
	if since == 0 {
		return 0
	}
	return max(time.Duration(nowNanos()-since), 1)
}

// MemoryBytes is the size of the instance's linear memory (0 when it has
// none or was discarded).
func (g *Instance) MemoryBytes() uint64 {
	if g.mod == nil || g.dead.Load() {
		return 0
	}
	if mem := g.mod.Memory(); mem != nil {
		return uint64(mem.Size())
	}
	return 0
}

// Digest is the digest of the module the instance runs.
func (g *Instance) Digest() string { return g.digest }

// Close discards the instance and frees its memory.
func (g *Instance) Close(ctx context.Context) {
	g.dead.Store(true)
	g.untrack()
	if g.mod != nil {
		_ = g.mod.Close(ctx)
	}
}

// errDeadlineAtReturn: the deadline passed just as the call returned; the
// interrupt flag is set, so the instance cannot run again.
var errDeadlineAtReturn = errors.New("deadline passed as the call returned")

// interruptNow makes an instrumented guest stop at its next loop head (and
// any guest leave its sleep).
func (g *Instance) interruptNow() {
	g.interrupted.Store(true)
	if g.interrupt != nil {
		g.interrupt.Set(1)
	}
	g.wakeUp()
}

// errInstanceDead is returned for calls into a discarded instance.
var errInstanceDead = errors.New("guest instance was discarded")

// call invokes fn with a deadline; any failure poisons the instance. It
// returns a GuestFailure when the guest is at fault and a plain error when the
// caller's context ended.
func (g *Instance) call(ctx context.Context, what string, fn api.Function, args ...uint64) ([]uint64, error) {
	if g.broken != nil {
		return nil, g.broken
	}
	if g.dead.Load() {
		if g.aborted.Load() {
			return nil, fmt.Errorf("%s: %w", what, ErrAborted)
		}
		return nil, errInstanceDead
	}
	var res []uint64
	var err error
	g.busySince.Store(nowNanos())
	defer g.busySince.Store(0)
	if g.interrupt != nil && ctx.Done() == nil {
		// An instrumented module and a context that cannot end: the
		// reusable timer is the whole deadline. (Blocking host calls of
		// activities — outbound HTTP — end with actCall.deadline.)
		if g.deadline == nil {
			g.deadline = time.AfterFunc(g.timeout, g.interruptNow)
		} else {
			g.deadline.Reset(g.timeout)
		}
		res, err = fn.Call(ctx, args...)
		if !g.deadline.Stop() && err == nil {
			err = errDeadlineAtReturn
		}
	} else {
		cctx, cancel := context.WithTimeout(ctx, g.timeout)
		stop := context.AfterFunc(cctx, g.interruptNow)
		res, err = fn.Call(cctx, args...)
		if !stop() && err == nil && g.interrupt != nil {
			err = errDeadlineAtReturn
		}
		cancel()
	}
	if err == nil {
		return res, nil
	}
	g.dead.Store(true)
	var memBytes uint64
	if mem := g.mod.Memory(); mem != nil {
		memBytes = uint64(mem.Size())
	}
	_ = g.mod.Close(context.Background())
	g.untrack()
	if g.aborted.Load() {
		g.stderr.take()
		return nil, fmt.Errorf("%s: %w", what, ErrAborted)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w", what, ctx.Err())
	}
	msg, trace, _ := strings.Cut(err.Error(), "\n")
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == abi.ExitStuck {
		g.stderr.take()
		return nil, errStuck()
	}
	if errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded || g.interrupted.Load() {
		msg = fmt.Sprintf("the guest ran longer than the deadline of %s and was stopped", g.timeout)
		if g.instantiating {
			msg = fmt.Sprintf("the guest ran longer than the instantiation deadline of %s and was stopped", g.timeout)
		}
	}
	stderr := g.stderr.take()
	line := fatalLine(stderr)
	if line != "" {
		msg += " (" + line + ")"
	}
	if g.memLimit > 0 && (memBytes*10 >= g.memLimit*9 || strings.Contains(line, "out of memory")) {
		msg += fmt.Sprintf("; its memory reached %d MiB of the %d MiB limit", memBytes>>20, g.memLimit>>20)
	}
	if trace != "" {
		stderr = trace + "\n" + stderr
	}
	return nil, &replay.GuestFailure{Failure: &abi.FailureDetails{Type: abi.FailureGuestTrap, Code: replay.CodeGuestTrap,
		Message: fmt.Sprintf("%s: %s", what, msg), Stack: stderr}}
}

// errStuck is the failure of an orchestration that blocked outside the
// SDK's await (StatusStuck or an exit with abi.ExitStuck).
func errStuck() error {
	return &replay.GuestFailure{Failure: &abi.FailureDetails{Type: abi.FailureStuck, Code: replay.CodeStuck,
		Message: "the orchestrator blocked on something other than the SDK's await (a channel, select{}, mutex or sleep) and did not yield before the guest's step deadline"}}
}

// fatalLine returns the first line of a guest's stderr that explains a
// crash (Go's "fatal error: …" or "panic: …"), or "".
func fatalLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "fatal error:") || strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "runtime: out of memory") {
			return l
		}
	}
	return ""
}

// write copies b into guest memory allocated with ExportAlloc.
func (g *Instance) write(ctx context.Context, b []byte) (uint32, error) {
	res, err := g.call(ctx, abi.ExportAlloc, g.fnAlloc, uint64(len(b)))
	if err != nil {
		return 0, err
	}
	ptr := uint32(res[0])
	if len(b) > 0 && !g.mod.Memory().Write(ptr, b) {
		// A guest bug, not a passing condition: fail it rather than retry.
		g.Close(context.Background())
		return 0, &replay.GuestFailure{Failure: &abi.FailureDetails{Type: abi.FailureGuestError, Code: replay.CodeGuestTrap,
			Message: fmt.Sprintf("%s(%d) returned %d, outside the guest's memory of %d bytes", abi.ExportAlloc, len(b), ptr, g.mod.Memory().Size())}}
	}
	return ptr, nil
}
