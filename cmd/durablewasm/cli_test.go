package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/dfjson"
	"github.com/durablewasm/durablewasm/host/sandbox"
	"github.com/durablewasm/durablewasm/redisstore"
	"github.com/durablewasm/durablewasm/samples"
)

// mainEnv makes the test binary run the CLI's main (see cliProcess).
const mainEnv = "DURABLEWASM_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		// A test runs the CLI as a process: bound its address space, so that
		// a regression that reads without limit fails instead of filling
		// the machine's memory.
		lim := syscall.Rlimit{Cur: 2 << 30, Max: 2 << 30}
		_ = syscall.Setrlimit(syscall.RLIMIT_AS, &lim)
		main()
		return
	}
	redis.SetLogger(quietRedis{})
	os.Exit(m.Run())
}

// runCLI runs the app in-process and returns stdout, stderr and the exit code.
func runCLI(ctx context.Context, args ...string) (string, string, int) {
	return runCLIInput(ctx, "", args...)
}

// runCLIInput is runCLI with stdin.
func runCLIInput(ctx context.Context, stdin string, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter, app.Reader = &out, &errb, strings.NewReader(stdin)
	code := run(ctx, app, append([]string{"durablewasm"}, args...))
	return out.String(), errb.String(), code
}

// startStack runs miniredis, deploys the samples and runs `serve` in-process.
func startStack(t *testing.T) string {
	t.Helper()
	return startStackOn(t, "redis://"+miniredis.RunT(t).Addr())
}

// startStackOn deploys the samples on the Redis at url and runs `serve`
// in-process. The test fails if serve exits with an error or logs a
// CROSSSLOT error (a script or command touching keys of two hash slots, which
// Redis Cluster refuses).
func startStackOn(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	deploySamples(t, url)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, errs, code := runCLI(ctx, "serve", "--redis-url", url, "--lease-ttl", "2s", "--log-level", "error")
		if code != 0 {
			t.Errorf("serve exited %d: %s", code, errs)
		}
		if strings.Contains(errs, "CROSSSLOT") {
			t.Errorf("serve logged CROSSSLOT errors:\n%s", errs)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return url
}

// deploySamples deploys the samples as app "samples" in the default hub of
// the Redis at url.
func deploySamples(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	st, err := redisstore.Open(ctx, url, "DurableFunctionsHub", redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := sandbox.NewEngine(ctx, sandbox.EngineOptions{CacheDir: filepath.Join(os.TempDir(), "durablewasm-test-cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	if _, err := client.New(st, eng).Deploy(ctx, "samples", samples.Wasm); err != nil {
		t.Fatal(err)
	}
}

func TestQuickStart(t *testing.T) {
	url := startStack(t)
	ctx := context.Background()
	out, errs, code := runCLI(ctx, "start-new", "--function-name", "E1_HelloSequence", "--id", "x1", "--redis-url", url)
	if code != 0 || !strings.Contains(out, "Instance ID: 'x1'") {
		t.Fatalf("start-new: %d %q %q", code, out, errs)
	}
	var st dfjson.StatusPayload
	deadline := time.Now().Add(20 * time.Second)
	for st.RuntimeStatus != "Completed" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		out, errs, code = runCLI(ctx, "get-runtime-status", "--id", "x1", "--show-output", "true", "--redis-url", url)
		if code != 0 {
			t.Fatalf("get-runtime-status: %d %s", code, errs)
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status is not JSON: %v\n%s", err, out)
		}
	}
	var compact bytes.Buffer
	_ = json.Compact(&compact, st.Output)
	if compact.String() != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
		t.Fatalf("output %s", st.Output)
	}
	// Keys in Durable Functions' order.
	keys := []string{`"name"`, `"instanceId"`, `"runtimeStatus"`, `"input"`, `"customStatus"`, `"output"`, `"createdTime"`, `"lastUpdatedTime"`}
	last := -1
	for _, k := range keys {
		i := strings.Index(out, k)
		if i < last {
			t.Fatalf("key %s out of order in %s", k, out)
		}
		last = i
	}
	out, _, code = runCLI(ctx, "get-history", "--id", "x1", "--redis-url", url)
	if code != 0 || !strings.Contains(out, "TaskCompleted") || !strings.Contains(out, `result="Hello London!"`) {
		t.Fatalf("get-history: %s", out)
	}
	out, _, _ = runCLI(ctx, "get-history", "--id", "x1", "--output", "json", "--redis-url", url)
	var hist []map[string]any
	if err := json.Unmarshal([]byte(out), &hist); err != nil || len(hist) < 10 {
		t.Fatalf("get-history json: %v %s", err, out)
	}
}

func TestInputFileEventsAndWait(t *testing.T) {
	url := startStack(t)
	ctx := context.Background()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.json"), []byte(`"Grace"`), 0o644)
	out, errs, code := runCLI(ctx, "start-new", "--function-name", "HelloWorld", "--input", "@"+filepath.Join(dir, "in.json"), "--wait", "--redis-url", url)
	if code != 0 || !strings.Contains(out, `"Hello Grace!"`) {
		t.Fatalf("start-new --wait: %d %q %q", code, out, errs)
	}
	// Events raised while Pending are kept until the orchestration waits.
	os.Setenv("MY_REDIS", url)
	defer os.Unsetenv("MY_REDIS")
	if _, errs, code := runCLI(ctx, "start-new", "--function-name", "Counter", "--id", "ctr", "--input", "1", "--connection-string-setting", "MY_REDIS"); code != 0 {
		t.Fatal(errs)
	}
	os.WriteFile(filepath.Join(dir, "op.json"), []byte(`"end"`), 0o644)
	for _, data := range []string{"incr", "@" + filepath.Join(dir, "op.json")} {
		out, errs, code := runCLI(ctx, "raise-event", "--id", "ctr", "--event-name", "operation", "--event-data", data, "--redis-url", url)
		if code != 0 || !strings.Contains(out, "Raised event 'operation' to instance 'ctr'.") {
			t.Fatalf("raise-event: %d %q %q", code, out, errs)
		}
	}
	out, errs, code = runCLI(ctx, "wait", "--id", "ctr", "--timeout", "20s", "--retry-interval", "50ms", "--redis-url", url)
	if code != 0 || strings.TrimSpace(out) != "2" {
		t.Fatalf("wait: %d %q %q", code, out, errs)
	}
	// A finished instance refuses events, with exit code 1.
	_, errs, code = runCLI(ctx, "raise-event", "--id", "ctr", "--event-name", "operation", "--redis-url", url)
	if code != 1 || !strings.Contains(errs, "already finished") {
		t.Fatalf("event to finished: %d %q", code, errs)
	}
}

func TestErrors(t *testing.T) {
	url := startStack(t)
	ctx := context.Background()
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"get-runtime-status", "--id", "nope", "--redis-url", url}, 1, `no instance with id "nope"`},
		{[]string{"start-new", "--function-name", "Nope", "--redis-url", url}, 1, "deployed orchestrators: Counter, E1_HelloSequence"},
		{[]string{"start-new", "--function-name", "HelloWorld", "--id", "a/b", "--redis-url", url}, 1, "not accepted"},
		{[]string{"start-new", "--function-name", "HelloWorld", "--input", "@/does/not/exist.json", "--redis-url", url}, 1, "exist.json"},
		{[]string{"get-runtime-status", "--id", "x", "--redis-url", "redis://127.0.0.1:1"}, 1, "cannot reach Redis at 127.0.0.1:1"},
		{[]string{"get-runtime-status", "--id", "x", "--redis-url", "nonsense"}, 1, "invalid Redis URL"},
		{[]string{"get-runtime-status", "--id", "x", "--redis-url", url, "--task-hub-name", "bad-hub"}, 1, "task hub"},
		{[]string{"get-runtime-status", "--id", "x", "--connection-string-setting", "UNSET_VAR_FOR_TEST"}, 1, "UNSET_VAR_FOR_TEST"},
		{[]string{"deploy", "--redis-url", url}, 2, "exactly one argument"},
	}
	for _, c := range cases {
		_, errs, code := runCLI(ctx, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
}

func TestDeployRefusesBadModules(t *testing.T) {
	url := startStack(t)
	dir := t.TempDir()
	notWasm := filepath.Join(dir, "x.wasm")
	os.WriteFile(notWasm, []byte("hello"), 0o644)
	_, errs, code := runCLI(context.Background(), "deploy", notWasm, "--redis-url", url)
	if code != 1 || !strings.Contains(errs, "not a WebAssembly binary") {
		t.Fatalf("deploy of a text file: %d %q", code, errs)
	}
	good := filepath.Join(dir, "samples.wasm")
	os.WriteFile(good, samples.Wasm, 0o644)
	out, errs, code := runCLI(context.Background(), "deploy", good, "--name", "samples2", "--redis-url", url)
	if code != 1 || !strings.Contains(errs, "samples") {
		// Same functions as the deployed "samples" app: refused, naming both.
		t.Fatalf("deploy of a second app owning the same functions: %d %q %q", code, out, errs)
	}
	out, errs, code = runCLI(context.Background(), "deploy", good, "--redis-url", url)
	if code != 0 || !strings.Contains(out, "Deployed 'samples' as sha256:") || !strings.Contains(out, "orchestrator E1_HelloSequence") {
		t.Fatalf("redeploy: %d %q %q", code, out, errs)
	}
}

func TestNormalizeArgs(t *testing.T) {
	cases := []struct{ in, want string }{
		{"x get-runtime-status --id a --show-input true", "x get-runtime-status --id a --show-input=true"},
		{"x get-runtime-status --show-output FALSE --id a", "x get-runtime-status --show-output=false --id a"},
		{"x get-runtime-status -show-input true", "x get-runtime-status --show-input=true"},
		{"x get-runtime-status --show-input --id a", "x get-runtime-status --show-input --id a"},
		{"x start-new --input true", "x start-new --input true"},
		{"x deploy app.wasm --name a --redis-url u", "x deploy --name a --redis-url u app.wasm"},
		{"x deploy --name a app.wasm", "x deploy --name a app.wasm"},
		{"x deploy app.wasm --show-input --name a", "x deploy --show-input --name a app.wasm"},
	}
	for _, c := range cases {
		if got := strings.Join(normalizeArgs(strings.Fields(c.in)), " "); got != c.want {
			t.Errorf("normalizeArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
