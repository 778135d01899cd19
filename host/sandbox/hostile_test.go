package sandbox

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/host/replay"
)

var (
	hostileOnce  sync.Once
	hostileWasm  []byte
	hostileBuild error
)

// hostileGuest returns the hostileinit test guest (testdata/guests/hostileinit)
// with its mode marker set to mode (six letters: "normal", "initsp",
// "actspi", or any other for a well-behaved module with its own digest).
func hostileGuest(t testing.TB, mode string) []byte {
	t.Helper()
	hostileOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hostileinit")
		if err != nil {
			hostileBuild = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "guest.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, "./testdata/guests/hostileinit")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			hostileBuild = errors.New(string(b))
			return
		}
		hostileWasm, hostileBuild = os.ReadFile(out)
	})
	if hostileBuild != nil {
		t.Fatalf("build hostileinit: %v", hostileBuild)
	}
	return patchMode(t, hostileWasm, mode)
}

// patchMode rewrites the hostileinit guest's mode marker.
func patchMode(t testing.TB, wasm []byte, mode string) []byte {
	t.Helper()
	marker := []byte("dw-mode:normal")
	if len(mode) != 6 || bytes.Count(wasm, marker) != 1 {
		t.Fatalf("cannot set mode %q: the marker occurs %d times", mode, bytes.Count(wasm, marker))
	}
	return bytes.Replace(wasm, marker, []byte("dw-mode:"+mode), 1)
}

// withStartFunction returns wasm with a new function of type () -> () whose
// body (locals and code, without the size) is body, set as the module's
// start function.
func withStartFunction(t testing.TB, wasm []byte, body []byte) []byte {
	t.Helper()
	r := &reader{b: wasm, off: 8}
	var secs []section
	for r.off < len(r.b) {
		id := r.byte()
		n := r.u32()
		secs = append(secs, section{id, r.bytes(int(n))})
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	var types, funcs, importFuncs uint32
	for _, s := range secs {
		sr := &reader{b: s.body}
		switch s.id {
		case 1:
			types = sr.u32()
		case 2:
			im, err := readImports(s.body)
			if err != nil {
				t.Fatal(err)
			}
			importFuncs = im.funcs
		case 3:
			funcs = sr.u32()
		case 8:
			t.Fatal("the module has a start section already")
		}
	}
	fn := importFuncs + funcs
	vec := func(body []byte, add []byte) []byte {
		sr := &reader{b: body}
		n := sr.u32()
		return append(append(appendU32(nil, n+1), body[sr.off:]...), add...)
	}
	out := append([]byte(nil), wasm[:8]...)
	emit := func(id byte, b []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(b)))
		out = append(out, b...)
	}
	order := map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}
	started := false
	for _, s := range secs {
		if s.id != 0 && !started && order[s.id] > order[8] {
			emit(8, appendU32(nil, fn))
			started = true
		}
		switch s.id {
		case 1:
			emit(1, vec(s.body, []byte{0x60, 0x00, 0x00}))
		case 3:
			emit(3, vec(s.body, appendU32(nil, types)))
		case 10:
			emit(10, vec(s.body, append(appendU32(nil, uint32(len(body))), body...)))
		default:
			emit(s.id, s.body)
		}
	}
	return out
}

// Function bodies for withStartFunction.
var (
	bodyReturn = []byte{0x00, 0x0b}
	// loop br 0 end: forever.
	bodyLoop = []byte{0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b}
	// unreachable.
	bodyTrap = []byte{0x00, 0x00, 0x0b}
)

// within runs f and fails the test if it has not returned after d (the
// bound only a hang breaks).
func within[T any](t *testing.T, d time.Duration, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", what, d)
		panic("unreachable")
	}
}

func testEngine(t *testing.T, opts EngineOptions) *Engine {
	t.Helper()
	opts.CacheDir = filepath.Join(os.TempDir(), "durablewasm-test-cache")
	e, err := NewEngine(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// TestInspectStopsLoopingInitialize: deploy (Inspect) of a module whose
// _initialize loops forever fails within the instantiation deadline, with a
// GuestTrap [DW2002] naming the digest. (It ran under the 5-minute activity
// deadline before.)
func TestInspectStopsLoopingInitialize(t *testing.T) {
	e := testEngine(t, EngineOptions{InstantiateTimeout: time.Second})
	wasm := hostileGuest(t, "initsp")
	err := within(t, 60*time.Second, "Inspect", func() error { _, err := e.Inspect(context.Background(), wasm); return err })
	checkInstantiateFailure(t, err, Digest(wasm), "_initialize: the guest ran longer than the instantiation deadline of 1s")
	if !errors.Is(err, ErrInvalidModule) {
		t.Errorf("error %v is not ErrInvalidModule", err)
	}
}

func checkInstantiateFailure(t *testing.T, err error, digest, want string) {
	t.Helper()
	var gf *replay.GuestFailure
	if !errors.As(err, &gf) {
		t.Fatalf("error %v is not a guest failure", err)
	}
	f := gf.Failure
	if f.Type != "GuestTrap" || f.Code != replay.CodeGuestTrap || !strings.Contains(f.Message, "instantiate module "+digest) || !strings.Contains(f.Message, want) {
		t.Fatalf("failure %+v; want a GuestTrap [%s] naming %s and %q", f, replay.CodeGuestTrap, digest, want)
	}
}

// TestStartFunctionsRunUnderTheDeadline: a start section that loops forever
// is stopped at the instantiation deadline, in an instrumented module (the
// rewriter turns it into StartExport, called like _initialize) and in one
// run with wazero's own interruption; one that traps fails instantiation
// with the trap; one that returns changes nothing. (A looping start function
// hung Inspect, and every instantiation, for ever before.)
func TestStartFunctionsRunUnderTheDeadline(t *testing.T) {
	e := testEngine(t, EngineOptions{InstantiateTimeout: time.Second})
	ctx := context.Background()
	guest := hostileGuest(t, "normal")
	wat := loadWat(t, "hello") // no WASI imports: not instrumented
	for _, tc := range []struct {
		name         string
		wasm         []byte
		instrumented bool
		want         string
	}{
		{"go/loop", withStartFunction(t, guest, bodyLoop), true, StartExport + ": the guest ran longer than the instantiation deadline of 1s"},
		{"go/trap", withStartFunction(t, guest, bodyTrap), true, StartExport + ": wasm error: unreachable"},
		{"go/return", withStartFunction(t, guest, bodyReturn), true, ""},
		{"wat/loop", withStartFunction(t, wat, bodyLoop), false, "the start function ran longer than the instantiation deadline of 1s"},
		{"wat/trap", withStartFunction(t, wat, bodyTrap), false, "unreachable"},
		{"wat/return", withStartFunction(t, wat, bodyReturn), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Digest(tc.wasm)
			err := within(t, 60*time.Second, "Inspect", func() error {
				_, err := e.Inspect(ctx, tc.wasm)
				return err
			})
			if ent, ok := e.entry(d); !ok || ent.instrumented != tc.instrumented {
				t.Fatalf("compiled: %v, instrumented %v; want instrumented %v", ok, ok && ent.instrumented, tc.instrumented)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("a start function that returns: %v", err)
				}
				return
			}
			checkInstantiateFailure(t, err, d, tc.want)
		})
	}
}

// TestInstantiationFailureIsRemembered: after an instantiation overran, new
// instances of the module fail at once with the same failure, without
// running the guest, until InstantiateRetryAfter has passed; then one tries
// again.
func TestInstantiationFailureIsRemembered(t *testing.T) {
	e := testEngine(t, EngineOptions{InstantiateTimeout: 500 * time.Millisecond, InstantiateRetryAfter: time.Hour})
	ctx := context.Background()
	wasm := hostileGuest(t, "initsp")
	d := Digest(wasm)
	if _, err := e.Compile(ctx, d, wasm); err != nil {
		t.Fatal(err)
	}
	_, first := e.NewInstance(ctx, d, false, nil)
	checkInstantiateFailure(t, first, d, "instantiation deadline")
	for i := 0; i < 20; i++ {
		_, err := e.NewInstance(ctx, d, i%2 == 0, nil)
		if err == nil || err.Error() != first.Error() {
			t.Fatalf("instance %d: %v; want the remembered %v", i, err, first)
		}
	}
	if n := e.instantiations.Load(); n != 1 {
		t.Fatalf("%d instantiations ran; want 1 (the others fail with the remembered failure)", n)
	}
	e.mu.Lock()
	e.broken[d].retryAt = time.Now().Add(-time.Second)
	e.mu.Unlock()
	_, err := e.NewInstance(ctx, d, false, nil)
	checkInstantiateFailure(t, err, d, "instantiation deadline")
	if n := e.instantiations.Load(); n != 2 {
		t.Fatalf("%d instantiations ran; want 2 (one retry after InstantiateRetryAfter)", n)
	}
	// A module that instantiates is not affected.
	ok := hostileGuest(t, "normal")
	if _, err := e.Compile(ctx, Digest(ok), ok); err != nil {
		t.Fatal(err)
	}
	g, err := e.NewInstance(ctx, Digest(ok), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.Close(ctx)
}

// TestAbortStopsSleepingAndSpinningGuests: a guest set's abort ends a
// running call, spinning or sleeping, with ErrAborted (not a guest failure),
// and refuses new instances.
func TestAbortStopsSleepingAndSpinningGuests(t *testing.T) {
	e := testEngine(t, EngineOptions{ActivityTimeout: time.Hour})
	ctx := context.Background()
	wasm := hostileGuest(t, "normal")
	d := Digest(wasm)
	if _, err := e.Compile(ctx, d, wasm); err != nil {
		t.Fatal(err)
	}
	set := NewSet()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, name := range []string{"Spin", "Sleep"} {
		g, err := e.NewInstance(set.With(ctx), d, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			item := &host.ActivityItem{InstanceID: "x", Name: name}
			_, _, err := g.RunActivity(set.With(ctx), item, func() *slog.Logger { return e.opts.Logger }, nil)
			errs <- err
		}()
	}
	time.Sleep(500 * time.Millisecond) // let both start; not needed for correctness
	set.Abort()
	within(t, 30*time.Second, "aborted calls", func() bool { wg.Wait(); return true })
	close(errs)
	for err := range errs {
		var gf *replay.GuestFailure
		if !errors.Is(err, ErrAborted) || errors.As(err, &gf) {
			t.Errorf("aborted call: %v; want ErrAborted", err)
		}
	}
	if _, err := e.NewInstance(set.With(ctx), d, false, nil); !errors.Is(err, ErrAborted) {
		t.Errorf("new instance after abort: %v; want ErrAborted", err)
	}
}
