package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
)

// EngineOptions configure an Engine. Zero values take the documented defaults.
type EngineOptions struct {
	// CacheDir holds wazero's on-disk compilation cache. Default:
	// os.UserCacheDir()/durablewasm/wazero; "-" disables the disk cache.
	CacheDir string
	// MemoryLimitBytes caps each guest instance's linear memory (default
	// 1 GiB). A guest growing past it fails to grow (the Go runtime then
	// aborts: the instance traps and is discarded).
	MemoryLimitBytes uint64
	// StepTimeout bounds one orchestration step (default 10 s). A guest still
	// running then is cut off: its module instance is discarded.
	StepTimeout time.Duration
	// ActivityTimeout bounds one activity execution (default 5 min).
	ActivityTimeout time.Duration
	// InstantiateTimeout bounds the instantiation of every module instance
	// — deploy's (Inspect), orchestration and activity instances alike: the
	// module's start function and its _initialize (a Go guest's package
	// initialisation) together (default DefaultInstantiateTimeout). A guest
	// still running then is stopped and the instantiation fails with a
	// GuestTrap [DW2002] that names the module's digest.
	InstantiateTimeout time.Duration
	// InstantiateRetryAfter is how long the engine remembers that a
	// module's instantiation failed through the guest's fault (a trap or the
	// instantiation deadline) before it tries that module again (default
	// DefaultInstantiateRetryAfter). Meanwhile every new instance of the
	// module fails at once with the same failure, so its work items fail
	// fast instead of each spending the deadline; after it, one
	// instantiation at a time tries again until one succeeds.
	InstantiateRetryAfter time.Duration
	// Logger receives guest logs and engine events (default slog.Default()).
	Logger *slog.Logger
}

// DefaultInstantiateTimeout is the default EngineOptions.InstantiateTimeout.
const DefaultInstantiateTimeout = 5 * time.Second

// DefaultInstantiateRetryAfter is the default
// EngineOptions.InstantiateRetryAfter.
const DefaultInstantiateRetryAfter = 30 * time.Second

func (o EngineOptions) withDefaults() EngineOptions {
	if o.MemoryLimitBytes == 0 {
		o.MemoryLimitBytes = 1 << 30
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = 10 * time.Second
	}
	if o.ActivityTimeout <= 0 {
		o.ActivityTimeout = 5 * time.Minute
	}
	if o.InstantiateTimeout <= 0 {
		o.InstantiateTimeout = DefaultInstantiateTimeout
	}
	if o.InstantiateRetryAfter <= 0 {
		o.InstantiateRetryAfter = DefaultInstantiateRetryAfter
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CacheDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			o.CacheDir = filepath.Join(d, "durablewasm", "wazero")
		} else {
			o.CacheDir = "-"
		}
	}
	return o
}

// Engine compiles guest modules (once per digest, cached on disk) and creates
// their instances. It is safe for concurrent use. Close releases everything.
type Engine struct {
	opts EngineOptions
	// rt runs instrumented modules (see instrumentLoops); rtSafe, made on
	// first use, runs the modules the rewriter cannot read, with wazero's
	// own (slower) interruption.
	rt     wazero.Runtime
	rtSafe wazero.Runtime

	mu       sync.Mutex
	compiled map[string]*compileEntry
	// broken remembers, per digest, the last instantiation that failed
	// through the guest's fault (see InstantiateRetryAfter).
	broken map[string]*brokenModule
	// instantiations counts the instantiations attempted (Instantiations).
	instantiations atomic.Int64
}

// brokenModule is a module whose instantiation failed: until retryAt, new
// instances fail with failure; probing is set while one instantiation tries
// again.
type brokenModule struct {
	failure *replay.GuestFailure
	retryAt time.Time
	probing bool
}

// instantiateGate reports the remembered failure of digest, if new instances
// of it must fail without trying; otherwise it may mark the caller as the
// one instantiation that tries a broken module again (probe is then true and
// the caller must report to instantiated).
func (e *Engine) instantiateGate(digest string) (failure *replay.GuestFailure, probe bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.broken[digest]
	if b == nil {
		return nil, false
	}
	if b.probing || time.Now().Before(b.retryAt) {
		return b.failure, false
	}
	b.probing = true
	return nil, true
}

// instantiated records the outcome of an instantiation of digest: a guest
// failure opens (or keeps open) the module's breaker, a success closes it;
// any other error (shutdown, a host problem) leaves it as it was.
func (e *Engine) instantiated(digest string, probe bool, err error) {
	var gf *replay.GuestFailure
	isGuest := errors.As(err, &gf)
	if err == nil && !probe {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case err == nil:
		delete(e.broken, digest)
	case isGuest:
		if e.broken == nil {
			e.broken = map[string]*brokenModule{}
		}
		e.broken[digest] = &brokenModule{failure: gf, retryAt: time.Now().Add(e.opts.InstantiateRetryAfter)}
		e.opts.Logger.Warn("module instantiation failed; new instances of it fail at once until the retry time",
			"digest", digest, "retryAfter", e.opts.InstantiateRetryAfter, "err", gf.Failure.Message)
	case probe:
		if b := e.broken[digest]; b != nil {
			b.probing = false
		}
	}
}

type compileEntry struct {
	done chan struct{}
	mod  wazero.CompiledModule
	rt   wazero.Runtime
	// instrumented: the module exports InterruptGlobal.
	instrumented bool
	err          error
}

// NewEngine creates an engine with the WASI and durablewasm host modules.
func NewEngine(ctx context.Context, opts EngineOptions) (*Engine, error) {
	opts = opts.withDefaults()
	e := &Engine{opts: opts, compiled: map[string]*compileEntry{}}
	rt, err := e.newRuntime(ctx, false)
	if err != nil {
		return nil, err
	}
	e.rt = rt
	return e, nil
}

// newRuntime makes a wazero runtime with the WASI and durablewasm host
// modules; closeOnDone selects wazero's own interruption of running guests.
func (e *Engine) newRuntime(ctx context.Context, closeOnDone bool) (wazero.Runtime, error) {
	pages := uint32(e.opts.MemoryLimitBytes / 65536)
	if pages == 0 || pages > 65536 {
		pages = 65536
	}
	cfg := wazero.NewRuntimeConfig().WithCloseOnContextDone(closeOnDone).WithMemoryLimitPages(pages)
	if e.opts.CacheDir != "-" {
		cache, err := wazero.NewCompilationCacheWithDir(e.opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("open compilation cache %s: %w", e.opts.CacheDir, err)
		}
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("instantiate wasi: %w", err)
	}
	if err := instantiateHostModule(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("instantiate host module: %w", err)
	}
	return rt, nil
}

// Close closes the runtimes and every instance they created.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	safe := e.rtSafe
	e.mu.Unlock()
	if safe != nil {
		safe.Close(ctx)
	}
	return e.rt.Close(ctx)
}

// Digest returns the content address of a module: "sha256:<hex>".
func Digest(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Compile compiles wasm once per digest and validates its imports and
// exports against the ABI. Concurrent calls for one digest share the work.
func (e *Engine) Compile(ctx context.Context, digest string, wasm []byte) (wazero.CompiledModule, error) {
	e.mu.Lock()
	ent, ok := e.compiled[digest]
	if !ok {
		ent = &compileEntry{done: make(chan struct{})}
		e.compiled[digest] = ent
		e.mu.Unlock()
		ent.mod, ent.rt, ent.instrumented, ent.err = e.compile(ctx, wasm)
		if ent.err != nil {
			e.mu.Lock()
			delete(e.compiled, digest)
			e.mu.Unlock()
		}
		close(ent.done)
	} else {
		e.mu.Unlock()
		select {
		case <-ent.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return ent.mod, ent.err
}

// Compiled returns the compiled module for digest if Compile succeeded
// before.
func (e *Engine) Compiled(digest string) (wazero.CompiledModule, bool) {
	ent, ok := e.entry(digest)
	if !ok {
		return nil, false
	}
	return ent.mod, true
}

// entry returns digest's compile entry if Compile succeeded before.
func (e *Engine) entry(digest string) (*compileEntry, bool) {
	e.mu.Lock()
	ent, ok := e.compiled[digest]
	e.mu.Unlock()
	if !ok {
		return nil, false
	}
	select {
	case <-ent.done:
		return ent, ent.err == nil
	default:
		return nil, false
	}
}

var requiredExports = []string{abi.ExportABIVersion, abi.ExportAlloc, abi.ExportListFunctions,
	abi.ExportOrchestratorStart, abi.ExportOrchestratorResume, abi.ExportOrchestratorDrop, abi.ExportActivityRun}

// exportSignatures are the Wasm signatures the ABI requires of each export.
var exportSignatures = map[string]string{
	abi.ExportABIVersion:         "() -> (i32)",
	abi.ExportAlloc:              "(i32) -> (i32)",
	abi.ExportListFunctions:      "() -> (i32)",
	abi.ExportOrchestratorStart:  "(i32, i32, i32) -> (i32)",
	abi.ExportOrchestratorResume: "(i32) -> (i32)",
	abi.ExportOrchestratorDrop:   "(i32) -> (i32)",
	abi.ExportActivityRun:        "(i32, i32, i32) -> (i32)",
}

// hostSignatures are the signatures of the host functions, by name.
var hostSignatures = map[string]string{}

func init() {
	for _, f := range hostFunctions() {
		hostSignatures[f.name] = signature(f.params, f.results)
	}
}

// signature renders a function type as "(i32, i64) -> (i32)".
func signature(params, results []api.ValueType) string {
	name := func(ts []api.ValueType) string {
		parts := make([]string, len(ts))
		for i, t := range ts {
			parts[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	return name(params) + " -> " + name(results)
}

// ErrInvalidModule wraps every reason a module is refused.
var ErrInvalidModule = errors.New("invalid module")

func (e *Engine) compile(ctx context.Context, wasm []byte) (wazero.CompiledModule, wazero.Runtime, bool, error) {
	mod, rt, instrumented, err := e.compileOn(ctx, wasm)
	if err != nil {
		return nil, nil, false, err
	}
	if err := e.validate(ctx, mod); err != nil {
		mod.Close(ctx)
		return nil, nil, false, err
	}
	return mod, rt, instrumented, nil
}

// compileOn compiles the instrumented module on e.rt or, when the module
// cannot be instrumented, the module as it is on e.rtSafe.
func (e *Engine) compileOn(ctx context.Context, wasm []byte) (wazero.CompiledModule, wazero.Runtime, bool, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return nil, nil, false, fmt.Errorf("%w: not a WebAssembly binary (missing \\0asm header)", ErrInvalidModule)
	}
	if inst, ierr := instrumentLoops(wasm); ierr == nil {
		mod, err := e.rt.CompileModule(ctx, inst)
		if err == nil {
			return mod, e.rt, true, nil
		}
		// Compile the original below: its error names the real problem.
	} else {
		e.opts.Logger.Debug("module compiled with wazero's interruption (slower)", "reason", ierr)
	}
	e.mu.Lock()
	if e.rtSafe == nil {
		rt, err := e.newRuntime(ctx, true)
		if err != nil {
			e.mu.Unlock()
			return nil, nil, false, err
		}
		e.rtSafe = rt
	}
	rt := e.rtSafe
	e.mu.Unlock()
	mod, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%w: compile: %v", ErrInvalidModule, err)
	}
	return mod, rt, false, nil
}

// validate checks a compiled module's imports, exports and memory against
// the ABI and the engine's limits.
func (e *Engine) validate(ctx context.Context, mod wazero.CompiledModule) error {
	var problems []string
	for _, f := range mod.ImportedFunctions() {
		m, name, _ := f.Import()
		switch m {
		case abi.HostModule:
			if !hostFunctionNames[name] {
				problems = append(problems, fmt.Sprintf("imports unknown host function %s.%s", m, name))
			}
		case wasi_snapshot_preview1.ModuleName:
		default:
			problems = append(problems, fmt.Sprintf("imports %s.%s: only the modules %q and %q may be imported", m, name, abi.HostModule, wasi_snapshot_preview1.ModuleName))
		}
	}
	exports := mod.ExportedFunctions()
	for _, name := range requiredExports {
		def, ok := exports[name]
		if !ok {
			problems = append(problems, "does not export function "+name)
			continue
		}
		want := exportSignatures[name]
		if got := signature(def.ParamTypes(), def.ResultTypes()); got != want {
			problems = append(problems, fmt.Sprintf("exports %s with signature %s; the ABI requires %s", name, got, want))
		}
	}
	for _, f := range mod.ImportedFunctions() {
		if m, name, _ := f.Import(); m == abi.HostModule && hostFunctionNames[name] {
			if got, want := signature(f.ParamTypes(), f.ResultTypes()), hostSignatures[name]; got != want {
				problems = append(problems, fmt.Sprintf("imports %s.%s with signature %s; the host provides %s", m, name, got, want))
			}
		}
	}
	if mem, ok := mod.ExportedMemories()["memory"]; !ok {
		problems = append(problems, `does not export its memory as "memory"`)
	} else if min := uint64(mem.Min()) * 65536; min > e.opts.MemoryLimitBytes {
		problems = append(problems, fmt.Sprintf("declares an initial memory of %d MiB, over the memory limit of %d MiB", min>>20, e.opts.MemoryLimitBytes>>20))
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("%w: the module %s", ErrInvalidModule, strings.Join(problems, "; "))
	}
	return nil
}

// ModuleInfo is what Inspect learns from a module.
type ModuleInfo struct {
	Digest     string
	ABIVersion int32
	Functions  []host.FunctionInfo
	// MinMemoryBytes is the module's declared initial memory.
	MinMemoryBytes uint64
}

// Inspect compiles and instantiates wasm once, checks its ABI version and
// lists the functions it registers. Deploy uses it to refuse bad modules with
// a precise reason.
func (e *Engine) Inspect(ctx context.Context, wasm []byte) (*ModuleInfo, error) {
	digest := Digest(wasm)
	if _, err := e.Compile(ctx, digest, wasm); err != nil {
		return nil, err
	}
	inst, err := e.NewInstance(ctx, digest, false, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	defer inst.Close(ctx)
	inst.timeout = e.opts.StepTimeout
	res, err := inst.call(ctx, abi.ExportABIVersion, inst.mod.ExportedFunction(abi.ExportABIVersion))
	if err != nil {
		return nil, fmt.Errorf("%w: call %s: %v", ErrInvalidModule, abi.ExportABIVersion, err)
	}
	v := int32(res[0])
	if v != abi.Version {
		return nil, fmt.Errorf("%w: ABI version %d, but this host implements version %d", ErrInvalidModule, v, abi.Version)
	}
	lc := &listCall{}
	if _, err := inst.call(withCall(ctx, lc), abi.ExportListFunctions, inst.mod.ExportedFunction(abi.ExportListFunctions)); err != nil {
		return nil, fmt.Errorf("%w: call %s: %v", ErrInvalidModule, abi.ExportListFunctions, err)
	}
	if len(lc.problems) > 0 {
		return nil, fmt.Errorf("%w: the module %s", ErrInvalidModule, strings.Join(lc.problems, "; "))
	}
	if len(lc.fns) == 0 {
		return nil, fmt.Errorf("%w: the module registers no orchestrator or activity", ErrInvalidModule)
	}
	sort.Slice(lc.fns, func(i, j int) bool { return lc.fns[i].Name < lc.fns[j].Name })
	info := &ModuleInfo{Digest: digest, ABIVersion: v, Functions: lc.fns}
	if mod, ok := e.Compiled(digest); ok {
		if mem, ok := mod.ExportedMemories()["memory"]; ok {
			info.MinMemoryBytes = uint64(mem.Min()) * 65536
		}
	}
	return info, nil
}
