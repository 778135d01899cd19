package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/durablewasm/durablewasm/host/sandbox/testdata/guests/compute/work"
)

var (
	computeOnce sync.Once
	computeWasm []byte
	computeErr  error
)

// computeGuest builds testdata/guests/compute once per test binary.
func computeGuest(tb testing.TB) []byte {
	tb.Helper()
	computeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dw-compute")
		if err != nil {
			computeErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "compute.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, "./testdata/guests/compute")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			computeErr = fmt.Errorf("%v: %s", err, b)
			return
		}
		computeWasm, computeErr = os.ReadFile(out)
	})
	if computeErr != nil {
		tb.Fatal(computeErr)
	}
	return computeWasm
}

// computeRounds is how many rounds of each kind of work.Run one call does
// (about 5 ms natively on the reference machine).
var computeRounds = [work.Kinds]int{work.Mixed: 3, work.Strings: 3, work.Sort: 3, work.Hash: 12, work.Sieve: 2}

// instantiateCompute compiles wasm (the compute guest, instrumented or not)
// on a runtime with or without wazero's own interruption, instantiates it
// and runs its _initialize; it returns the compute export.
func instantiateCompute(tb testing.TB, wasm []byte, closeOnDone bool) api.Function {
	tb.Helper()
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfig().WithCloseOnContextDone(closeOnDone)
	cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(os.TempDir(), "durablewasm-test-cache"))
	if err != nil {
		tb.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg.WithCompilationCache(cache))
	tb.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		tb.Fatal(err)
	}
	if start := mod.ExportedFunction(StartExport); start != nil {
		if _, err := start.Call(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := mod.ExportedFunction("_initialize").Call(ctx); err != nil {
		tb.Fatal(err)
	}
	return mod.ExportedFunction("compute")
}

// BenchmarkCompute runs each kind of the compute guest's workload (about 5
// ms of ordinary Go: strings and maps, sorting, hashing, a tight loop)
// natively, compiled by wazero unchanged, with wazero's own interruption,
// and instrumented by instrumentLoops: the cost of bounding runaway guests.
func BenchmarkCompute(b *testing.B) {
	parent := b
	type variant struct {
		name        string
		instrument  bool
		closeOnDone bool
	}
	variants := []variant{{name: "wasm"}, {name: "wasm-closeondone", closeOnDone: true}, {name: "instrumented", instrument: true}}
	fns := map[string]api.Function{}
	for kind := 0; kind < work.Kinds; kind++ {
		rounds := computeRounds[kind]
		want := work.Run(kind, 1, rounds)
		b.Run(work.Names[kind]+"/native", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if work.Run(kind, 1, rounds) != want {
					b.Fatal("wrong checksum")
				}
			}
		})
		for _, v := range variants {
			b.Run(work.Names[kind]+"/"+v.name, func(b *testing.B) {
				fn := fns[v.name]
				if fn == nil {
					wasm := computeGuest(b)
					if v.instrument {
						var err error
						if wasm, err = instrumentLoops(wasm); err != nil {
							b.Fatal(err)
						}
					}
					fn = instantiateCompute(parent, wasm, v.closeOnDone)
					fns[v.name] = fn
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					res, err := fn.Call(ctx, uint64(kind), 1, uint64(rounds))
					if err != nil {
						b.Fatal(err)
					}
					if res[0] != want {
						b.Fatalf("checksum %d, want %d", res[0], want)
					}
				}
			})
		}
	}
}

// TestComputeInstructions, with DW_COMPUTE=kind/variant set (a sub-benchmark
// name of BenchmarkCompute, e.g. sieve/instrumented), makes one warm-up call
// and DW_CALLS (default 1) calls of the compute guest: for instruction
// counts, which timing on a shared machine is too noisy for. The count of
// one call is the difference of two runs under callgrind, e.g. DW_CALLS=1
// and DW_CALLS=6 divided by 5, with GOGC=off and GODEBUG=asyncpreemptoff=1
// (callgrind's --toggle-collect loses track in wazero's compiled code).
func TestComputeInstructions(t *testing.T) {
	spec := os.Getenv("DW_COMPUTE")
	if spec == "" {
		t.Skip("DW_COMPUTE not set")
	}
	var kindName, variant string
	fmt.Sscanf(strings.Replace(spec, "/", " ", 1), "%s %s", &kindName, &variant)
	kind := slices.Index(work.Names[:], kindName)
	calls := 1
	if s := os.Getenv("DW_CALLS"); s != "" {
		fmt.Sscan(s, &calls)
	}
	rounds := computeRounds[kind]
	if variant == "native" {
		measuredCalls(calls, func() uint64 { return work.Run(kind, 1, rounds) })
		return
	}
	wasm := computeGuest(t)
	if variant == "instrumented" {
		var err error
		if wasm, err = instrumentLoops(wasm); err != nil {
			t.Fatal(err)
		}
	}
	fn := instantiateCompute(t, wasm, variant == "wasm-closeondone")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fn.Call(ctx, uint64(kind), 1, uint64(rounds)) // warm up
	measuredCalls(calls, func() uint64 {
		res, err := fn.Call(ctx, uint64(kind), 1, uint64(rounds))
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	})
}

// measuredCalls calls f n times.
//
//go:noinline
func measuredCalls(n int, f func() uint64) (sum uint64) {
	for i := 0; i < n; i++ {
		sum += f()
	}
	return sum
}
