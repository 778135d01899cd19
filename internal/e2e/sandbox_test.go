package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/dfjson"
	"github.com/durablewasm/durablewasm/host/replay"
	"github.com/durablewasm/durablewasm/host/sandbox"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/redisstore"
)

// TestHostileGuestsAreContained runs orchestrators that loop forever, block
// outside await, panic and exhaust memory next to a well-behaved one: each
// bad one fails with a clear error and the worker keeps serving the rest.
func TestHostileGuestsAreContained(t *testing.T) {
	e := newEnv(t, miniURL(t))
	e.engineOpts = sandbox.EngineOptions{StepTimeout: 3 * time.Second, MemoryLimitBytes: 256 << 20}
	e.deploy("hostile", buildGuest(t, "testdata/guests/hostile"))
	e.worker(worker.Options{OrchestrationInstances: 1})
	cases := []struct {
		fn, code, typ, msg string
	}{
		{"Spin", replay.CodeGuestTrap, "GuestTrap", "deadline"},
		{"Block", replay.CodeStuck, "Stuck", "blocked"},
		{"Panic", "", "Panic", "nil map"},
		{"Grow", replay.CodeGuestTrap, "GuestTrap", "of the 256 MiB limit"},
		// JSON is checked by the host, for guests in any language.
		{"BadOutput", replay.CodeInvalidJSON, "InvalidJSON", "orchestrator output is not valid JSON"},
		{"BadInput", replay.CodeInvalidJSON, "InvalidJSON", "input of activity Echo is not valid JSON"},
		{"BadActivityResult", "", "OrchestratorError", "the activity's result is not valid JSON"},
	}
	for _, c := range cases {
		e.start(c.fn, c.fn, "")
		e.start("Fine", "fine-"+c.fn, "")
	}
	for _, c := range cases {
		st := e.wait(c.fn, 60*time.Second)
		if st.Status != abi.StatusFailed || st.Failure == nil {
			t.Errorf("%s: status %s, want Failed", c.fn, st.Status)
			continue
		}
		f := st.Failure
		t.Logf("%s: %s", c.fn, dfjson.FailureText(f))
		if f.Code != c.code || f.Type != c.typ || !strings.Contains(f.Message+f.Stack, c.msg) {
			t.Errorf("%s: failure %+v; want code %q type %q mentioning %q", c.fn, f, c.code, c.typ, c.msg)
		}
		if st := e.wait("fine-"+c.fn, 60*time.Second); st.Status != abi.StatusCompleted || st.Output != `"ok"` {
			t.Errorf("fine-%s: %s %s %v", c.fn, st.Status, st.Output, st.Failure)
		}
	}
}

// hostileInit returns the host/sandbox/testdata/guests/hostileinit guest with its
// six-letter mode marker set (see that file): "normal", "initsp" (its
// _initialize loops), "actspi" (it loops in activity instances and at deploy
// only), or any other name for a well-behaved module with its own digest.
func hostileInit(t *testing.T, mode string) []byte {
	t.Helper()
	wasm := buildGuest(t, "host/sandbox/testdata/guests/hostileinit")
	marker := []byte("dw-mode:normal")
	if len(mode) != 6 || bytes.Count(wasm, marker) != 1 {
		t.Fatalf("cannot set mode %q", mode)
	}
	return bytes.Replace(wasm, marker, []byte("dw-mode:"+mode), 1)
}

// putModule stores wasm as app's module without deploy's checks, as if it
// had passed them (the functions are those of the well-behaved variant), and
// returns its digest and a fresh client (no cached function lookups).
func (e *env) putModule(t *testing.T, app string, wasm []byte) (string, *client.Client) {
	t.Helper()
	ctx := context.Background()
	info, err := e.engine.Inspect(ctx, hostileInit(t, "normal"))
	if err != nil {
		t.Fatal(err)
	}
	d := sandbox.Digest(wasm)
	if err := e.store.PutModuleSettings(ctx, d, host.AppSettings{}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutModule(ctx, app, d, wasm, info.Functions); err != nil {
		t.Fatal(err)
	}
	return d, client.New(e.store, e.engine)
}

// logCounter counts the log records whose message contains each of its
// words.
type logCounter struct {
	mu     sync.Mutex
	counts map[string]int
	words  []string
}

func newLogCounter(words ...string) *logCounter {
	return &logCounter{counts: map[string]int{}, words: words}
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	if os.Getenv("DBG") != "" {
		fmt.Fprintln(os.Stderr, time.Now().Format("15:04:05.000"), r.Level, r.Message)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.words {
		if strings.Contains(r.Message, w) {
			l.counts[w]++
		}
	}
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

func (l *logCounter) count(w string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[w]
}

// waitCount waits until word was logged at least n times.
func (l *logCounter) waitCount(t *testing.T, word string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for l.count(word) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%q logged %d times within %s; want %d", word, l.count(word), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ownWorker runs a worker with its own engine, both logging to log, until
// the returned stop function returns (also called at cleanup).
func (e *env) ownWorker(t *testing.T, eo sandbox.EngineOptions, wo worker.Options, log *slog.Logger) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := redisstore.Open(ctx, e.url, e.hub, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eo.CacheDir, eo.Logger = filepath.Join(os.TempDir(), "durablewasm-test-cache"), log
	eng, err := sandbox.NewEngine(ctx, eo)
	if err != nil {
		t.Fatal(err)
	}
	wo.Logger, wo.LeaseTTL = log, 2*time.Second
	w := worker.New(st, eng, wo)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			t.Errorf("worker: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		cancel()
		<-done
		once.Do(func() {
			eng.Close(context.Background())
			st.Close()
		})
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			stop()
		case <-time.After(60 * time.Second):
			t.Error("the worker did not stop within 60 s of its context ending")
		}
	})
	return stop
}

// TestHostileInstantiationFailsFast: deploy refuses modules whose
// _initialize loops, at the instantiation deadline; a module that passed
// deploy and loops only afterwards (here: in activity instances) fails its
// activities at once with a GuestTrap [DW2002] that the orchestration sees,
// instead of each spending the deadline and being redelivered after the
// visibility timeout; and an orchestration on a module whose orchestration
// instances loop at instantiation fails with that error instead of being
// retried for ever.
func TestHostileInstantiationFailsFast(t *testing.T) {
	e := newEnv(t, miniURL(t))
	ctx := context.Background()
	for _, mode := range []string{"initsp", "actspi"} {
		wasm := hostileInit(t, mode)
		_, err := e.client.Deploy(ctx, mode, wasm)
		if err == nil || !errors.Is(err, sandbox.ErrInvalidModule) || !strings.Contains(err.Error(), "instantiation deadline") || !strings.Contains(err.Error(), sandbox.Digest(wasm)) {
			t.Fatalf("deploy %s: %v; want it refused at the instantiation deadline, naming the digest", mode, err)
		}
	}
	log := slog.New(newLogCounter())
	e.ownWorker(t, sandbox.EngineOptions{InstantiateTimeout: time.Second}, worker.Options{}, log)

	act, cl := e.putModule(t, "actspi", hostileInit(t, "actspi"))
	const n = 20
	for i := 0; i < n; i++ {
		if _, err := cl.StartNew(ctx, client.StartOptions{FunctionName: "CallNoop", InstanceID: fmt.Sprintf("act-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		st := e.wait(fmt.Sprintf("act-%d", i), 60*time.Second)
		if st.Status != abi.StatusCompleted || !strings.Contains(st.Output, "failed: ") || !strings.Contains(st.Output, "instantiate module "+act) ||
			!strings.Contains(st.Output, "instantiation deadline") {
			t.Fatalf("act-%d: %s %s %v; want the activity failed with the instantiation failure of %s", i, st.Status, st.Output, st.Failure, act)
		}
		if i == 0 {
			t.Logf("act-0: %s", st.Output)
		}
	}

	orch, cl := e.putModule(t, "actspi", hostileInit(t, "initsp")) // a new version of the app
	for i := 0; i < 3; i++ {
		if _, err := cl.StartNew(ctx, client.StartOptions{FunctionName: "CallNoop", InstanceID: fmt.Sprintf("orch-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		st := e.wait(fmt.Sprintf("orch-%d", i), 60*time.Second)
		f := st.Failure
		if st.Status != abi.StatusFailed || f == nil || f.Type != "GuestTrap" || f.Code != replay.CodeGuestTrap ||
			!strings.Contains(f.Message, "instantiate module "+orch) || !strings.Contains(f.Message, "instantiation deadline") {
			t.Fatalf("orch-%d: %s %v; want Failed with the GuestTrap of %s's instantiation", i, st.Status, f, orch)
		}
	}
}

// TestActivitySlotsAreShared: a module whose activities never end cannot
// take every activity slot from another module active on the worker: it
// keeps at most ActivityConcurrency minus the reserve, and the other
// module's activities run.
func TestActivitySlotsAreShared(t *testing.T) {
	e := newEnv(t, miniURL(t))
	logs := newLogCounter("activity spinning")
	e.ownWorker(t, sandbox.EngineOptions{ActivityTimeout: time.Hour},
		worker.Options{ActivityConcurrency: 4, LocalActivityMax: -1, ShutdownGrace: time.Second}, slog.New(logs))
	good := hostileInit(t, "goodie")
	e.deploy("good", good)
	e.start("CallNoop", "good-1", "")
	if st := e.wait("good-1", 60*time.Second); st.Output != `"ok"` {
		t.Fatalf("good-1: %s %s", st.Status, st.Output)
	}
	// Four endless activities, in one partition other than good-2's: the
	// reserve is what lets good-2 run (a partition's items run in order).
	e.deploy("good", hostileInit(t, "hoggie")) // a new version of the app
	parts := e.store.Partitions()
	busy := host.PartitionFor("good-2", parts)
	hogs := (busy + 1) % parts
	for i, n := 0, 0; n < 4; i++ {
		id := fmt.Sprintf("hog-%d", i)
		if host.PartitionFor(id, parts) != hogs {
			continue
		}
		e.start("CallSpin", id, "")
		n++
	}
	logs.waitCount(t, "activity spinning", 3, 60*time.Second)
	// Give a fourth time to start (it does without the cap; the test then
	// fails below).
	for deadline := time.Now().Add(10 * time.Second); logs.count("activity spinning") < 4 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	e.deploy("good", good)
	e.start("CallNoop", "good-2", "")
	if st := e.wait("good-2", 60*time.Second); st.Output != `"ok"` {
		t.Fatalf("good-2: %s %s", st.Status, st.Output)
	}
	if n := logs.count("activity spinning"); n != 3 {
		t.Errorf("%d endless activities ran at once; want 3 (4 slots less a reserve of 1)", n)
	}
}

// TestShutdownInterruptsHostileGuests: a worker whose guests spin or sleep
// for ever (an orchestration step, an activity in a loop, an activity in
// time.Sleep) still stops soon after its context ends: past ShutdownGrace
// their calls are interrupted, and their work is neither completed nor
// failed but left for redelivery.
func TestShutdownInterruptsHostileGuests(t *testing.T) {
	e := newEnv(t, miniURL(t))
	logs := newLogCounter("orchestrator spinning", "activity spinning", "sleeping")
	stop := e.ownWorker(t, sandbox.EngineOptions{ActivityTimeout: time.Hour, StepTimeout: time.Hour},
		worker.Options{LocalActivityMax: -1, ShutdownGrace: time.Second}, slog.New(logs))
	e.deploy("hostile", hostileInit(t, "normal"))
	e.start("CallSpin", "call-spin", "")
	e.start("CallSleep", "call-sleep", "")
	logs.waitCount(t, "activity spinning", 1, 60*time.Second)
	logs.waitCount(t, "sleeping", 1, 60*time.Second)
	// On another module: a spinning step holds its module instance.
	e.deploy("hostile", hostileInit(t, "spinny"))
	e.start("SpinStep", "spin", "")
	logs.waitCount(t, "orchestrator spinning", 1, 60*time.Second)
	done := make(chan struct{})
	go func() {
		stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not stop within 30 s of its context ending (shutdown grace 1 s)")
	}
	for _, id := range []string{"spin", "call-spin", "call-sleep"} {
		st, err := e.client.GetStatus(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status.Terminal() {
			t.Errorf("%s: %s %s %v; the interrupted work must stay pending", id, st.Status, st.Output, st.Failure)
		}
		h, _ := e.client.GetHistory(context.Background(), id)
		for _, ev := range h {
			if ev.Type == abi.EventTaskCompleted || ev.Type == abi.EventTaskFailed {
				t.Errorf("%s: %s %+v after an interrupted activity", id, ev.Type, ev)
			}
		}
	}
}
