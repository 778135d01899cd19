package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/durablewasm/durablewasm/host/sandbox"
)

// The Rust guest (issue 18): samples/rust, built with Debian's toolchain
// (rustc/cargo with libstd-rust-dev-wasm32) the way internal/e2e/rust_test.go
// builds it; a rustup toolchain earlier on PATH usually lacks the wasm32-wasi
// target, so the binaries are named explicitly.
const (
	debianCargo = "/usr/bin/cargo"
	debianRustc = "/usr/bin/rustc"
	// rustEngine is the engine name of durablewasm running the Rust module.
	rustEngine = "durablewasm-rust"
	// rustHub is the Rust module's task hub: its function names are the Go
	// samples'.
	rustHub = "BenchRust"
)

// rustSamplesDir is samples/rust, relative to bench/ (where `go run .`
// runs).
var rustSamplesDir = filepath.Join("..", "samples", "rust")

// buildRustGuest builds samples/rust for wasm32-wasi (release, offline) into
// a target directory under os.TempDir() shared with the e2e tests, so that a
// rerun only relinks when nothing changed. It returns the module, or why
// there is none.
func buildRustGuest() (wasm []byte, took time.Duration, skip string) {
	missing := ""
	if _, err := os.Stat(debianCargo); err != nil {
		missing = debianCargo
	} else if _, err := os.Stat(debianRustc); err != nil {
		missing = debianRustc
	} else if out, err := exec.Command(debianRustc, "--print", "sysroot").Output(); err != nil {
		missing = "rustc --print sysroot"
	} else if _, err := os.Stat(filepath.Join(strings.TrimSpace(string(out)), "lib/rustlib/wasm32-wasi")); err != nil {
		missing = "the wasm32-wasi standard library (libstd-rust-dev-wasm32)"
	}
	if missing != "" {
		return nil, 0, "needs " + missing + " (apt-get install rustc cargo libstd-rust-dev-wasm32 librust-serde-dev librust-serde-json-dev librust-serde-derive-dev)"
	}
	if _, err := os.Stat(filepath.Join(rustSamplesDir, "Cargo.toml")); err != nil {
		return nil, 0, "needs " + rustSamplesDir + "/Cargo.toml: run the harness from bench/"
	}
	target := filepath.Join(os.TempDir(), "durablewasm-rust-target")
	args := []string{"build", "--release", "--offline", "--target", "wasm32-wasi", "--target-dir", target}
	cmd := exec.Command(debianCargo, args...)
	cmd.Dir = rustSamplesDir
	cmd.Env = append(os.Environ(), "RUSTC="+debianRustc, "CARGO_BUILD_JOBS=2")
	began := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, 0, fmt.Sprintf("cargo %s failed: %v\n%s", strings.Join(args, " "), err, out)
	}
	took = time.Since(began)
	b, err := os.ReadFile(filepath.Join(target, "wasm32-wasi/release/durablewasm_samples.wasm"))
	if err != nil {
		return nil, 0, err.Error()
	}
	return b, took, ""
}

// guestFacts is what the harness measures of a guest module outside any
// workload.
type guestFacts struct {
	size int
	// create is the time of one sandbox.Engine.NewInstance (an orchestration
	// instance: instantiation, the module's start function and _initialize),
	// median and p90 over n creations.
	createP50, createP90 time.Duration
	n                    int
	// memKiB is an instance's linear memory right after creation.
	memKiB float64
}

// measureGuest compiles wasm on an engine of its own (with the bench's
// on-disk compilation cache), creates three instances untimed, then n timed
// ones, each closed before the next (its Close not timed).
func measureGuest(ctx context.Context, cacheDir string, wasm []byte, n int) (*guestFacts, error) {
	eng, err := sandbox.NewEngine(ctx, sandbox.EngineOptions{CacheDir: cacheDir, Logger: discard})
	if err != nil {
		return nil, err
	}
	defer eng.Close(context.Background())
	digest := sandbox.Digest(wasm)
	if _, err := eng.Compile(ctx, digest, wasm); err != nil {
		return nil, err
	}
	f := &guestFacts{size: len(wasm), n: n}
	var ds []time.Duration
	for i := 0; i < n+3; i++ {
		t0 := time.Now()
		g, err := eng.NewInstance(ctx, digest, true, nil)
		d := time.Since(t0)
		if err != nil {
			return nil, err
		}
		if i >= 3 {
			ds = append(ds, d)
		}
		f.memKiB = float64(g.MemoryBytes()) / 1024
		g.Close(ctx)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	f.createP50, f.createP90 = percentile(ds, 50), percentile(ds, 90)
	return f, nil
}

// guestRows are the module rows of the guests table.
func guestRows(goG, rsG *guestFacts) []row {
	val := func(g *guestFacts, f func(*guestFacts) float64) float64 {
		if g == nil {
			return nan
		}
		return f(g)
	}
	mk := func(metric string, prec int, f func(*guestFacts) float64) row {
		return row{metric: metric, dw: val(goG, f), rs: val(rsG, f), gw: nan, prec: prec}
	}
	return []row{
		mk("module size (bytes)", 0, func(g *guestFacts) float64 { return float64(g.size) }),
		mk("instance creation, median (µs)", 0, func(g *guestFacts) float64 { return float64(g.createP50) / float64(time.Microsecond) }),
		mk("instance creation, p90 (µs)", 0, func(g *guestFacts) float64 { return float64(g.createP90) / float64(time.Microsecond) }),
		mk("linear memory of a new instance (KiB)", 0, func(g *guestFacts) float64 { return g.memKiB }),
	}
}

// guests measures the modules at the start of the run and prints them.
func (b *bench) guests(ctx context.Context) error {
	if !b.cfg.engines["durablewasm"] && !b.cfg.engines[rustEngine] {
		return nil
	}
	cacheDir := newDW("", nil).cacheDir
	n := b.cfg.instancesN
	fmt.Printf("\n== guests: the modules, each compiled on an engine of its own; instance creation is sandbox.Engine.NewInstance (an orchestration instance), timed over %d creations after 3 untimed ones\n", n)
	var err error
	if b.cfg.engines["durablewasm"] {
		if b.goGuest, err = measureGuest(ctx, cacheDir, goWasm, n); err != nil {
			return fmt.Errorf("Go guest: %w", err)
		}
	}
	if b.rustWasm != nil {
		if b.rustGuest, err = measureGuest(ctx, cacheDir, b.rustWasm, n); err != nil {
			return fmt.Errorf("Rust guest: %w", err)
		}
	}
	b.guestRows = guestRows(b.goGuest, b.rustGuest)
	printTable(b.guestRows)
	return nil
}

// addGuestRow adds a workload's row to the guests summary when the Rust
// guest ran it.
func (b *bench) addGuestRow(workload string, r row) {
	if isNaN(r.rs) {
		return
	}
	m := strings.TrimSpace(r.metric)
	if m == "of which the worker process" {
		m = "worker process CPU s / 1,000"
	}
	r.metric = workload + ": " + m
	b.guestRows = append(b.guestRows, r)
}

// addGuestRows adds the named rows of a workload's table to the guests
// summary.
func (b *bench) addGuestRows(workload string, rows []row, metrics ...string) {
	for _, m := range metrics {
		b.addGuestRow(workload, findRow(rows, m))
	}
}
