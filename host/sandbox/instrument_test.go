package sandbox

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

func loadLoops(t testing.TB) []byte { return loadWat(t, "loops") }

func loadWat(t testing.TB, name string) []byte {
	b, err := os.ReadFile("../../testdata/wat/" + name + ".wasm")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// instantiateRaw compiles and instantiates wasm on a plain runtime without
// wazero's own interruption.
func instantiateRaw(t testing.TB, wasm []byte) api.Module {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	mod, err := rt.Instantiate(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

func TestInstrumentedModuleBehavesTheSame(t *testing.T) {
	orig := loadLoops(t)
	inst, err := instrumentLoops(orig)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(inst, orig) {
		t.Fatal("rewriter changed nothing")
	}
	ctx := context.Background()
	a, b := instantiateRaw(t, orig), instantiateRaw(t, inst)
	for _, tc := range []struct {
		fn   string
		args []uint64
	}{{"sum", []uint64{0}}, {"sum", []uint64{1000}}, {"g", nil}, {"misc", []uint64{0}}, {"misc", []uint64{1}}, {"misc", []uint64{7}}} {
		ra, err := a.ExportedFunction(tc.fn).Call(ctx, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.ExportedFunction(tc.fn).Call(ctx, tc.args...)
		if err != nil {
			t.Fatalf("instrumented %s%v: %v", tc.fn, tc.args, err)
		}
		if ra[0] != rb[0] {
			t.Errorf("%s%v = %d instrumented, %d original", tc.fn, tc.args, rb[0], ra[0])
		}
	}
	if got, _ := b.ExportedFunction("sum").Call(ctx, 1000); got[0] != 500500 {
		t.Errorf("sum(1000) = %d", got[0])
	}
	if got, _ := b.ExportedFunction("g").Call(ctx); got[0] != 42 {
		t.Errorf("the module's own global reads %d after the rewrite, want 42", got[0])
	}
	g, ok := b.ExportedGlobal(InterruptGlobal).(api.MutableGlobal)
	if !ok || g.Type() != api.ValueTypeI32 || g.Get() != 0 {
		t.Fatalf("interrupt global: %v %v", g, ok)
	}
}

// startSpin instruments the loops fixture and calls its endless "spin" in a
// goroutine; done receives the call's error.
func startSpin(t *testing.T) (mod api.Module, done chan error) {
	t.Helper()
	inst, err := instrumentLoops(loadLoops(t))
	if err != nil {
		t.Fatal(err)
	}
	mod = instantiateRaw(t, inst)
	done = make(chan error, 1)
	go func() {
		_, err := mod.ExportedFunction("spin").Call(context.Background())
		done <- err
	}()
	return mod, done
}

func TestInterruptStopsASpinningLoop(t *testing.T) {
	mod, done := startSpin(t)
	select {
	case err := <-done:
		t.Fatalf("spin returned before the interrupt: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	// The loop is running: it stores its counter at address 8.
	if v, _ := mod.Memory().ReadUint64Le(8); v == 0 {
		t.Fatal("the loop did not run")
	}
	mod.ExportedGlobal(InterruptGlobal).(api.MutableGlobal).Set(1)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("spin ended with %v, want the unreachable trap", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("setting the interrupt global did not stop the loop")
	}
}

// TestGCRunsBesideASpinningGuest checks that a guest spinning in a loop
// leaves native code often enough for the Go runtime to stop the world: a
// garbage collection (which waits for every goroutine to reach a safe
// point) completes while the loop runs. Without the periodic call into Go
// the collection, and with it the whole process, would wait for the loop.
func TestGCRunsBesideASpinningGuest(t *testing.T) {
	mod, done := startSpin(t)
	time.Sleep(20 * time.Millisecond)
	gcDone := make(chan struct{})
	go func() {
		runtime.GC()
		runtime.GC()
		close(gcDone)
	}()
	select {
	case <-gcDone:
	case <-time.After(20 * time.Second):
		t.Error("runtime.GC did not complete while the guest spun")
	}
	mod.ExportedGlobal(InterruptGlobal).(api.MutableGlobal).Set(1)
	if err := <-done; err == nil {
		t.Fatal("spin returned without error")
	}
}

func TestInstrumentAddsMissingSections(t *testing.T) {
	for _, name := range []string{"noglobals", "bare"} {
		t.Run(name, func(t *testing.T) {
			wasm := loadWat(t, name)
			instantiateRaw(t, wasm) // the fixture itself is valid
			inst, err := instrumentLoops(wasm)
			if err != nil {
				t.Fatal(err)
			}
			mod := instantiateRaw(t, inst)
			if mod.ExportedGlobal(InterruptGlobal) == nil {
				t.Fatal("no interrupt global exported")
			}
			if f := mod.ExportedFunction("f"); f != nil {
				if res, err := f.Call(context.Background()); err != nil || res[0] != 7 {
					t.Fatalf("f() = %v, %v; want 7", res, err)
				}
			}
		})
	}
}

func TestInstrumentRefusesWhatItCannotRead(t *testing.T) {
	good := loadLoops(t)
	for name, wasm := range map[string][]byte{
		"not wasm":  []byte("hello world!"),
		"truncated": good[:len(good)-3],
		// no sched_yield import to leave native code with
		"no sched_yield": loadWat(t, "noyield"),
		// a function body with opcode 0xff (unassigned)
		"unknown opcode": []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x05\x01\x03\x00\xff\x0b"),
	} {
		if _, err := instrumentLoops(wasm); err == nil {
			t.Errorf("%s: instrumented without error", name)
		}
	}
}

// TestEngineInstrumentsTheSamples checks that the bundled guests take the
// fast path (an instrumented module), not wazero's slower interruption.
func TestEngineInstrumentsTheSamples(t *testing.T) {
	wasm, err := os.ReadFile("../../samples/samples.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := instrumentLoops(wasm); err != nil {
		t.Fatalf("samples.wasm: %v", err)
	}
	ctx := context.Background()
	e, err := NewEngine(ctx, EngineOptions{CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	d := Digest(wasm)
	if _, err := e.Compile(ctx, d, wasm); err != nil {
		t.Fatal(err)
	}
	ent, _ := e.entry(d)
	if !ent.instrumented {
		t.Fatal("samples.wasm was not instrumented")
	}
	g, err := e.NewInstance(ctx, d, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(ctx)
	if g.interrupt == nil {
		t.Fatal("instance has no interrupt global")
	}
}

func FuzzInstrumentLoops(f *testing.F) {
	f.Add(loadLoops(f))
	f.Add(loadWat(f, "noglobals"))
	f.Add(loadWat(f, "bare"))
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	f.Fuzz(func(t *testing.T, wasm []byte) {
		inst, err := instrumentLoops(wasm)
		if err != nil || !plausibleCounts(wasm) {
			return
		}
		orig, err := rt.CompileModule(ctx, wasm)
		if err != nil {
			return
		}
		orig.Close(ctx)
		m, err := rt.CompileModule(ctx, inst)
		if err != nil {
			t.Fatalf("a valid module became invalid: %v", err)
		}
		m.Close(ctx)
	})
}

// plausibleCounts reports whether every section's item count fits in the
// section: wazero takes minutes to refuse a module claiming 2^31 exports,
// which would stall the fuzzer on inputs that say nothing about the
// rewriter.
func plausibleCounts(wasm []byte) bool {
	r := &reader{b: wasm, off: 8}
	for r.off < len(r.b) && r.err == nil {
		id := r.byte()
		body := r.bytes(int(r.u32()))
		if id != 0 && id != 8 && r.err == nil {
			sr := &reader{b: body}
			if n := sr.u32(); sr.err != nil || int(n) > len(body) {
				return false
			}
		}
	}
	return r.err == nil
}
