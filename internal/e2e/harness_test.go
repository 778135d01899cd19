package e2e

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/sandbox"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/redisstore"
)

var (
	buildMu sync.Mutex
	built   = map[string][]byte{}
)

// buildGuest compiles a guest main package (relative to the repo root) to
// Wasm once per test binary.
func buildGuest(t testing.TB, pkg string) []byte {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := built[pkg]; ok {
		return b
	}
	out := filepath.Join(t.TempDir(), "guest.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, "./"+pkg)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	built[pkg] = b
	return b
}

// env is one task hub with a client and any number of workers.
type env struct {
	t testing.TB
	// engineOpts configure the engines of workers started later.
	engineOpts sandbox.EngineOptions
	url        string
	hub        string
	store      *redisstore.Store
	engine     *sandbox.Engine
	client     *client.Client
	// workerEngines are the engines of the workers started, in order.
	workerEngines []*sandbox.Engine
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("E2E_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return quiet
}

func newEnv(t testing.TB, url string) *env {
	t.Helper()
	ctx := context.Background()
	st, err := redisstore.Open(ctx, url, "TestHub", redisstore.Options{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := sandbox.NewEngine(ctx, sandbox.EngineOptions{CacheDir: filepath.Join(os.TempDir(), "durablewasm-test-cache"), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	return &env{t: t, url: url, hub: "TestHub", store: st, engine: eng, client: client.New(st, eng)}
}

func miniURL(t testing.TB) string {
	m := miniredis.RunT(t)
	return "redis://" + m.Addr()
}

// worker runs a worker until the returned stop function is called (or the
// test ends). Each worker has its own engine, like a separate process.
func (e *env) worker(opts worker.Options) (stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := redisstore.Open(ctx, e.url, e.hub, redisstore.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	eo := e.engineOpts
	eo.CacheDir, eo.Logger = filepath.Join(os.TempDir(), "durablewasm-test-cache"), testLogger(e.t)
	eng, err := sandbox.NewEngine(ctx, eo)
	if err != nil {
		e.t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(e.t)
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = 2 * time.Second
	}
	e.workerEngines = append(e.workerEngines, eng)
	w := worker.New(st, eng, opts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			e.t.Errorf("worker: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			eng.Close(context.Background())
			st.Close()
		})
	}
	e.t.Cleanup(stop)
	return stop
}

func (e *env) deploy(app string, wasm []byte) {
	e.t.Helper()
	if _, err := e.client.Deploy(context.Background(), app, wasm); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) start(name, id, input string) {
	e.t.Helper()
	if _, err := e.client.StartNew(context.Background(), client.StartOptions{FunctionName: name, InstanceID: id, Input: input}); err != nil {
		e.t.Fatal(err)
	}
}

// wait waits for an instance to finish and returns its state.
func (e *env) wait(id string, timeout time.Duration) *host.InstanceState {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := e.client.WaitForCompletion(ctx, id, 20*time.Millisecond)
	if err != nil {
		status := "unknown"
		if st != nil {
			status = string(st.Status)
		}
		hist, _ := e.client.GetHistory(context.Background(), id)
		e.t.Fatalf("instance %s did not finish within %s (status %s): %v\nhistory: %+v", id, timeout, status, err, hist)
	}
	return st
}

// waitStatus waits until an instance reaches status.
func (e *env) waitStatus(id string, want abi.RuntimeStatus, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := e.client.GetStatus(context.Background(), id)
		if err == nil && st.Status == want {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("instance %s: status %v (err %v), want %s", id, st, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var _ = redis.Nil
