package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/cschleiden/go-workflows/backend"
	gwredis "github.com/cschleiden/go-workflows/backend/redis"
	gwworker "github.com/cschleiden/go-workflows/worker"
	"github.com/durablewasm/durablewasm/host/sandbox"
	dwworker "github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/redisstore"
	"github.com/redis/go-redis/v9"
)

// workerSpec describes the worker a child process runs (-role worker): the
// harness re-executes itself so that a worker's RSS and CPU are its own,
// apart from the harness' client work, its HTTP server and the other
// engine.
type workerSpec struct {
	Engine string `json:"engine"`
	// Addr is the redis-server's host:port.
	Addr string `json:"addr"`
	// Hub is durablewasm's task hub (default dwHub).
	Hub string `json:"hub,omitempty"`
	// durablewasm: worker.Options fields (zero: the default) and the
	// engine's compilation cache.
	MaxWarm             int           `json:"maxWarm,omitempty"`
	LocalActivityMax    time.Duration `json:"localActivityMax,omitempty"`
	ActivityConcurrency int           `json:"activityConcurrency,omitempty"`
	CacheDir            string        `json:"cacheDir,omitempty"`
	// go-workflows: tuned options (gwOptions) or worker.DefaultOptions.
	GWTuned bool `json:"gwTuned,omitempty"`
}

func (s workerSpec) dwOptions() dwworker.Options {
	return dwworker.Options{Logger: discard, MaxWarm: s.MaxWarm, LocalActivityMax: s.LocalActivityMax, ActivityConcurrency: s.ActivityConcurrency}
}

// runWorkerRole is the child process: it runs the worker until its stdin is
// closed (or the parent dies), then stops it and exits.
func runWorkerRole(specJSON string) {
	var s workerSpec
	if err := json.Unmarshal([]byte(specJSON), &s); err != nil {
		fatalf("worker: bad spec: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	var err error
	switch s.Engine {
	case "durablewasm":
		err = runDWChild(ctx, s)
	case "go-workflows":
		err = runGWChild(ctx, s)
	default:
		err = fmt.Errorf("unknown engine %q", s.Engine)
	}
	if err != nil && ctx.Err() == nil {
		fatalf("worker %s: %v", s.Engine, err)
	}
}

func ready() { fmt.Println("ready") }

func runDWChild(ctx context.Context, s workerSpec) error {
	hub := s.Hub
	if hub == "" {
		hub = dwHub
	}
	st, err := redisstore.Open(ctx, "redis://"+s.Addr, hub, redisstore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	eng, err := sandbox.NewEngine(ctx, sandbox.EngineOptions{CacheDir: s.CacheDir, Logger: discard})
	if err != nil {
		return err
	}
	defer eng.Close(context.Background())
	w := dwworker.New(st, eng, s.dwOptions())
	if path := os.Getenv("DW_BENCH_PROBE"); path != "" {
		go probe(ctx, path, eng)
	}
	if path := os.Getenv("DW_BENCH_CPUPROFILE"); path != "" {
		// The worker child's CPU profile, written when it is told to stop.
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	ready()
	return w.Run(ctx)
}

// probe (DW_BENCH_PROBE=file) writes, every second, the worker's RSS, Go
// memory and module instantiations to file, and a heap profile beside it:
// where the worker's memory goes.
func probe(ctx context.Context, path string, eng *sandbox.Engine) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	for ctx.Err() == nil {
		time.Sleep(time.Second)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		status, _ := os.ReadFile("/proc/self/status")
		var rss []string
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "RssAnon") || strings.HasPrefix(l, "RssFile") {
				rss = append(rss, strings.Join(strings.Fields(l), " "))
			}
		}
		fmt.Fprintf(f, "%s; heap in use %d MiB, stacks %d MiB, Go sys %d MiB, goroutines %d, instantiations %d\n",
			strings.Join(rss, ", "), ms.HeapInuse>>20, ms.StackInuse>>20, ms.Sys>>20, runtime.NumGoroutine(), eng.Instantiations())
		if hp, err := os.Create(path + ".heap"); err == nil {
			pprof.WriteHeapProfile(hp)
			hp.Close()
		}
	}
}

func runGWChild(ctx context.Context, s workerSpec) error {
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, PoolSize: 64})
	b, err := newGWBackend(rdb)
	if err != nil {
		return err
	}
	defer b.Close()
	opts := gwOptions(s.GWTuned)
	w := gwworker.New(b, &opts)
	if err := gwRegister(w); err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	ready()
	<-ctx.Done()
	return w.WaitForCompletion()
}

func newGWBackend(rdb *redis.Client) (backend.Backend, error) {
	return gwredis.NewRedisBackend(rdb, gwredis.WithBackendOptions(
		backend.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		// Allow the 10,000-event histories of longhistory (default 10,000).
		backend.WithMaxHistorySize(1_000_000),
	))
}

// workerProc is a worker child process, seen from the harness.
type workerProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

func startWorkerProc(s workerSpec) (*workerProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	spec, _ := json.Marshal(s)
	cmd := exec.Command(exe, "-role", "worker", "-worker-spec", string(spec))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &workerProc{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		l, _ := r.ReadString('\n')
		line <- strings.TrimSpace(l)
		io.Copy(os.Stdout, r)
		p.done <- cmd.Wait()
	}()
	select {
	case l := <-line:
		if l != "ready" {
			p.kill()
			return nil, fmt.Errorf("%s worker process did not start (%q)", s.Engine, l)
		}
	case <-time.After(2 * time.Minute):
		p.kill()
		return nil, fmt.Errorf("%s worker process not ready after 2 minutes", s.Engine)
	}
	return p, nil
}

func (p *workerProc) kill() {
	p.cmd.Process.Kill()
	p.stdin.Close()
}

// stop closes the child's stdin (it stops its worker and exits) and waits;
// it kills the child if it has not exited in 30 s.
func (p *workerProc) stop() {
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *workerProc) pid() int { return p.cmd.Process.Pid }

// status returns a field of /proc/<pid>/status in bytes (VmRSS, VmHWM).
func (p *workerProc) status(field string) int64 { return procStatusOf(strconv.Itoa(p.pid()), field) }

// cpu is the child's user+system CPU time so far.
func (p *workerProc) cpu() time.Duration { return pidCPU(p.pid()) }

// pidCPU returns a process' user+system CPU time so far, from
// /proc/<pid>/stat (utime and stime, in clock ticks of 1/100 s).
func pidCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	rest := string(b[bytes.LastIndexByte(b, ')')+2:])
	f := strings.Fields(rest)
	// rest starts at field 3 (state); utime is field 14, stime field 15.
	ut, _ := strconv.ParseInt(f[14-3], 10, 64)
	st, _ := strconv.ParseInt(f[15-3], 10, 64)
	return time.Duration(ut+st) * (time.Second / clockTicks)
}
