package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/replay"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/internal/redistest"
	"github.com/durablewasm/durablewasm/samples/flows"
	"github.com/durablewasm/durablewasm/samples/flows/benchwork"
)

// Debian's toolchain (rustc/cargo 1.63 with libstd-rust-dev-wasm32); a
// rustup toolchain earlier on PATH usually lacks the wasm32-wasi target, so
// the test names the binaries explicitly.
const (
	debianCargo = "/usr/bin/cargo"
	debianRustc = "/usr/bin/rustc"
)

// rustToolchain skips the test when Debian's cargo or the wasm32-wasi std
// is missing, except under CI=true, where it fails.
func rustToolchain(t *testing.T) {
	t.Helper()
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
	if missing == "" {
		return
	}
	msg := "Rust guest tests need " + missing + ": apt-get install rustc cargo libstd-rust-dev-wasm32 librust-serde-dev librust-serde-json-dev librust-serde-derive-dev"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// buildRustSamples builds samples/rust (with the given cargo features) with
// Debian's cargo, offline, into a target directory under os.TempDir() that
// survives test runs, so reruns only relink when nothing changed.
func buildRustSamples(t *testing.T, features string) []byte {
	t.Helper()
	rustToolchain(t)
	key := "rust:" + features
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := built[key]; ok {
		return b
	}
	target := filepath.Join(os.TempDir(), "durablewasm-rust-target")
	args := []string{"build", "--release", "--offline", "--target", "wasm32-wasi", "--target-dir", target}
	if features != "" {
		args = append(args, "--features", features)
	}
	cmd := exec.Command(debianCargo, args...)
	cmd.Dir = "../../samples/rust"
	cmd.Env = append(os.Environ(), "RUSTC="+debianRustc, "CARGO_BUILD_JOBS=2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cargo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	b, err := os.ReadFile(filepath.Join(target, "wasm32-wasi/release/durablewasm_samples.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	built[key] = b
	return b
}

func rustEnv(t *testing.T, url string) *env {
	e := newEnv(t, url)
	e.deploy("rust-samples", buildRustSamples(t, ""))
	return e
}

// TestRustSamples runs the Rust ports of the samples through the same
// checks as TestSamples (plus the bench's Hello5, FanOut and Hello5CPU), on miniredis
// and on redis-server.
func TestRustSamples(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		e := rustEnv(t, url)
		e.worker(worker.Options{})
		ctx := context.Background()
		clear, _ := json.Marshal(flows.MonitorRequest{Location: "Phoenix", Phone: "555", ExpiryTime: time.Now().Add(time.Hour), PollingInterval: 100 * time.Millisecond})
		cloudy, _ := json.Marshal(flows.MonitorRequest{Location: "Redmond", Phone: "555", ExpiryTime: time.Now().Add(3 * time.Second), PollingInterval: 200 * time.Millisecond})
		cases := []struct {
			name, fn, input string
			act             func(id string)
			want            string
		}{
			{name: "hello", fn: "E1_HelloSequence", want: `["Hello Tokyo!","Hello Seattle!","Hello London!"]`},
			{name: "helloworld", fn: "HelloWorld", input: `"Ada"`, want: `"Hello Ada!"`},
			{name: "helloworld-default", fn: "HelloWorld", want: `"Hello World!"`},
			{name: "fanout", fn: "E2_BackupSiteContent", input: `"/site"`, want: fmt.Sprint(backupTotal("/site"))},
			{name: "suborch", fn: "E5_SubOrchestration", input: `"Bob"`, want: `{"sequence":["Hello Tokyo!","Hello Seattle!","Hello London!"],"hello":"Hello Bob!"}`},
			{name: "monitor", fn: "E3_Monitor", input: string(clear), want: `{"alerted":true,"checks":1}`},
			{name: "monitor-expires", fn: "E3_Monitor", input: string(cloudy), want: ""},
			{name: "sms", fn: "E4_SmsPhoneVerification", input: `"+1555"`, want: "true", act: func(id string) {
				e.waitStatus(id, abi.StatusRunning, 10*time.Second)
				if err := e.client.RaiseEvent(ctx, id, "SmsChallengeResponse", "1"); err != nil {
					t.Error(err)
				}
				if err := e.client.RaiseEvent(ctx, id, "SmsChallengeResponse", fmt.Sprint(flows.ChallengeCode("+1555"))); err != nil {
					t.Error(err)
				}
			}},
			{name: "counter", fn: "Counter", input: "5", want: "6", act: func(id string) {
				for _, op := range []string{`"incr"`, `"incr"`, `"decr"`, `"end"`} {
					if err := e.client.RaiseEvent(ctx, id, "operation", op); err != nil {
						t.Error(err)
					}
				}
			}},
			{name: "hello5", fn: "Hello5", input: `{"n":1,"s":"x"}`, want: `{"n":1,"s":"x"}`},
			{name: "benchfanout", fn: "FanOut", input: "20", want: "190"},
			{name: "hello5cpu", fn: "Hello5CPU", input: "3", want: fmt.Sprint(benchwork.Compute(3))},
		}
		for _, c := range cases {
			e.start(c.fn, c.name, c.input)
			if c.act != nil {
				c.act(c.name)
			}
		}
		for _, c := range cases {
			st := e.wait(c.name, 30*time.Second)
			if st.Status != abi.StatusCompleted {
				t.Errorf("%s: status %s, failure %v", c.name, st.Status, st.Failure)
				continue
			}
			if c.want != "" && st.Output != c.want {
				t.Errorf("%s: output %s, want %s", c.name, st.Output, c.want)
			}
		}
		st, _ := e.client.GetStatus(ctx, "monitor-expires")
		var res flows.MonitorResult
		if err := json.Unmarshal([]byte(st.Output), &res); err != nil || res.Alerted || res.Checks < 2 || res.Checks > 16 {
			t.Errorf("expiring monitor output %s: want not alerted after 2-16 checks", st.Output)
		}
		sub, err := e.client.GetStatus(ctx, "suborch:hello")
		if err != nil || sub.Status != abi.StatusCompleted || sub.ParentInstanceID != "suborch" {
			t.Errorf("sub-orchestration: %+v %v", sub, err)
		}
		// An orchestrator error fails the instance with its message.
		e.start("E4_SmsPhoneVerification", "sms-missing", "")
		if st := e.wait("sms-missing", 20*time.Second); st.Status != abi.StatusFailed || !strings.Contains(st.Failure.Message, "a phone number is required") {
			t.Errorf("sms without input: %s %+v", st.Status, st.Failure)
		}
	})
}

// TestRustCapabilitiesAndRetry: an activity reads its configuration and
// makes an HTTP request (parking on ErrPending, resumed by
// activity_resume), the orchestration makes a durable HTTP request, and a
// retry policy schedules every attempt with a timer in between.
func TestRustCapabilitiesAndRetry(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		fmt.Fprint(w, "pong")
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	e := newEnv(t, miniURL(t))
	if _, err := e.client.DeployWithSettings(context.Background(), "rust-samples", buildRustSamples(t, ""), host.AppSettings{
		Config: map[string]string{"greeting": "hi"}, HTTPAllow: []string{u.Host}, HTTPTimeout: 5 * time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	e.worker(worker.Options{})
	for i := 0; i < 5; i++ {
		e.start("RustCaps", fmt.Sprint("caps", i), `"`+srv.URL+`"`)
	}
	e.start("Hello5IO", "io", `"`+srv.URL+`"`)
	e.start("RetryDemo", "retry", "")
	for i := 0; i < 5; i++ {
		if st := e.wait(fmt.Sprint("caps", i), 20*time.Second); st.Status != abi.StatusCompleted || st.Output != `"hi | pong | 200"` {
			t.Errorf("caps%d: %s %s %+v", i, st.Status, st.Output, st.Failure)
		}
	}
	if st := e.wait("io", 20*time.Second); st.Status != abi.StatusCompleted || st.Output != "20" {
		t.Errorf("Hello5IO: %s %s %+v", st.Status, st.Output, st.Failure)
	}
	st := e.wait("retry", 20*time.Second)
	if st.Status != abi.StatusFailed || st.Failure == nil || !strings.Contains(st.Failure.Message, "it always fails") {
		t.Fatalf("retry: %s %+v", st.Status, st.Failure)
	}
	h, _ := e.client.GetHistory(context.Background(), "retry")
	if n, timers := countType(h, abi.EventTaskScheduled), countType(h, abi.EventTimerCreated); n != 3 || timers != 2 {
		t.Errorf("retry: %d attempts and %d timers in history, want 3 and 2", n, timers)
	}
}

// TestRustColdReplay stops the worker while an orchestration waits for an
// event; a new worker replays its history on the Rust module and finishes it.
func TestRustColdReplay(t *testing.T) {
	e := rustEnv(t, miniURL(t))
	stop := e.worker(worker.Options{})
	e.start("Ordered", "cold", "")
	e.start("Counter", "count", "1")
	waitHistory(t, e, "cold", func(h []abi.HistoryEvent) bool { return countType(h, abi.EventTaskCompleted) == 1 })
	if err := e.client.RaiseEvent(context.Background(), "count", "operation", `"incr"`); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("count", abi.StatusRunning, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	stop()
	e.worker(worker.Options{})
	for _, id := range []string{"cold"} {
		if err := e.client.RaiseEvent(context.Background(), id, "go", ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.client.RaiseEvent(context.Background(), "count", "operation", `"end"`); err != nil {
		t.Fatal(err)
	}
	if st := e.wait("cold", 20*time.Second); st.Status != abi.StatusCompleted || st.Output != `"AB"` {
		t.Errorf("cold: %s %s %+v", st.Status, st.Output, st.Failure)
	}
	if st := e.wait("count", 20*time.Second); st.Status != abi.StatusCompleted || st.Output != "2" {
		t.Errorf("count: %s %s %+v", st.Status, st.Output, st.Failure)
	}
}

// TestRustWorkerKilledMidOrchestration kills a `durablewasm serve` process
// with SIGKILL while Rust orchestrations are in flight; a fresh worker
// replays them and every instance completes with the right output.
func TestRustWorkerKilledMidOrchestration(t *testing.T) {
	url := "redis://" + redistest.StartServer(t)
	e := rustEnv(t, url)
	ctx := context.Background()
	first := serveProcess(t, url)
	const n = 40
	want := e.startSequencesAndFanOuts("k", n)
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := 0
		for id := range want {
			if st, err := e.client.GetStatus(ctx, id); err == nil && st.Status.Terminal() {
				done++
			}
		}
		h, _ := e.client.GetHistory(ctx, "k1")
		if done < n && countType(h, abi.EventTaskScheduled) > 0 {
			t.Logf("killing the worker with %d of %d instances finished", done, n)
			break
		}
		if done == n || time.Now().After(deadline) {
			t.Fatalf("could not catch the worker mid-run (%d of %d finished)", done, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	serveProcess(t, url)
	for id, w := range want {
		st := e.wait(id, 60*time.Second)
		if st.Status != abi.StatusCompleted || st.Output != w {
			t.Errorf("%s: %s output %s failure %v; want %s", id, st.Status, st.Output, st.Failure, w)
		}
	}
}

// TestRustChangedOrderFailsOnReplay runs "Ordered" on the Rust module,
// deploys the module built with the feature ordered-v2 (the two activity
// calls swapped) and migrates the instance to it: the replay fails with
// DW1001, while an instance left on v1 and a new one on v2 complete.
func TestRustChangedOrderFailsOnReplay(t *testing.T) {
	v1 := buildRustSamples(t, "")
	v2 := buildRustSamples(t, "ordered-v2")
	e := newEnv(t, miniURL(t))
	ctx := context.Background()
	e.deploy("rust-ordered", v1)
	stop := e.worker(worker.Options{})
	for _, id := range []string{"moved", "stays"} {
		e.start("Ordered", id, "")
	}
	for _, id := range []string{"moved", "stays"} {
		waitHistory(t, e, id, func(h []abi.HistoryEvent) bool { return countType(h, abi.EventTaskCompleted) == 1 })
	}
	stop()
	e.deploy("rust-ordered", v2)
	app, err := e.store.GetApp(ctx, "rust-ordered")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.Migrate(ctx, "moved", app.Digest); err != nil {
		t.Fatal(err)
	}
	e.worker(worker.Options{})
	e.start("Ordered", "fresh", "")
	for _, id := range []string{"stays", "fresh"} {
		if err := e.client.RaiseEvent(ctx, id, "go", ""); err != nil {
			t.Fatal(err)
		}
	}
	st := e.wait("moved", 20*time.Second)
	if st.Status != abi.StatusFailed || st.Failure == nil || st.Failure.Code != replay.CodeMismatch || st.Digest != app.Digest {
		t.Fatalf("moved: status %s on %s, failure %+v", st.Status, st.Digest, st.Failure)
	}
	for _, want := range []string{"event 0", `"Step" with input "A"`, `"Step" with input "B"`} {
		if !strings.Contains(st.Failure.Message, want) {
			t.Errorf("failure message %q lacks %q", st.Failure.Message, want)
		}
	}
	if st := e.wait("stays", 20*time.Second); st.Status != abi.StatusCompleted || st.Output != `"AB"` {
		t.Errorf("stays (v1): %s %s %v", st.Status, st.Output, st.Failure)
	}
	if st := e.wait("fresh", 20*time.Second); st.Status != abi.StatusCompleted || st.Output != `"AB"` {
		t.Errorf("fresh (v2): %s %s %v", st.Status, st.Output, st.Failure)
	}
	h, _ := e.client.GetHistory(ctx, "fresh")
	if first := firstScheduled(h); first != `"B"` {
		t.Errorf("fresh ran on v2, whose first call is B; history's first call has input %s", first)
	}
}

// TestRustUnitTests runs `cargo test` (native, with the SDK's fake-clock
// harness durablewasm::testing) in the SDK and the Rust samples, so that
// `go test ./...` covers them.
func TestRustUnitTests(t *testing.T) {
	rustToolchain(t)
	target := filepath.Join(os.TempDir(), "durablewasm-rust-target")
	for _, dir := range []string{"../../guest-sdk/rust", "../../samples/rust"} {
		cmd := exec.Command(debianCargo, "test", "--offline", "--target-dir", target)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "RUSTC="+debianRustc, "RUSTDOC=/usr/bin/rustdoc", "CARGO_BUILD_JOBS=2")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("cargo test in %s: %v\n%s", dir, err, out)
		}
	}
}
