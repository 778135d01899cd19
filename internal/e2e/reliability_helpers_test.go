package e2e

// Helpers of the reliability (fault) tests: worker processes re-executed
// from this test binary (so a test can SIGKILL, SIGSTOP or crash them at a
// named point), an activity ledger, a standard workload with known outputs,
// and the invariant check run after every scenario.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/sandbox"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/internal/invariant"
	"github.com/durablewasm/durablewasm/redisstore"
	"github.com/durablewasm/durablewasm/samples/flows"
)

// Environment of a helper worker process (see TestHelperWorkerProcess).
const (
	envWorker     = "DW_TEST_WORKER"       // "1" runs the helper
	envURL        = "DW_TEST_WORKER_URL"   // Redis URL
	envHub        = "DW_TEST_WORKER_HUB"   // task hub
	envCrash      = "DW_TEST_WORKER_CRASH" // "<point>:<n>": exit(137) at the n-th hit of point
	envLedger     = "DW_TEST_WORKER_LEDGER"
	envSkew       = "DW_TEST_WORKER_SKEW" // clock skew, a duration
	envLeaseTTL   = "DW_TEST_WORKER_LEASE"
	envVisibility = "DW_TEST_WORKER_VISIBILITY"
	envPause      = "DW_TEST_WORKER_PAUSE" // "<point>:<n>": SIGSTOP itself at the n-th hit of point
	// envCrashOnLog: exit(137) when a log record's message or attributes
	// contain this text (a guest can log it: an activity that takes its
	// worker process down).
	envCrashOnLog = "DW_TEST_WORKER_CRASH_ON_LOG"
	// envReload, a duration: on a redis+cluster:// URL the worker's cluster
	// client reloads the slot map this often (see clusterClient).
	envReload = "DW_TEST_WORKER_CLUSTER_RELOAD"
)

// crashPoints are the named points where faultStore can crash the worker
// process. They sit at the worker's store calls, i.e. at the boundaries of
// every durable step:
//
//	read-batch            after a batch of control messages was read (nothing committed)
//	claim-batch           after a new owner reclaimed pending control messages
//	before-commit         after the guest ran the batch's steps, before the commit scripts
//	mid-commit            after the first commit script of a pipelined batch only
//	after-commit          after the commit scripts ran (history, acks, activities, timers written), before the reply is used
//	before-ack/after-ack  around the fenced ack of dropped messages (acks of stepped messages are part of the commit)
//	before-outbox/after-outbox  around the delivery of cross-partition messages (sub-orchestrations, events)
//	activity-read         after activity items were delivered, before they run
//	before-activity-result/after-activity-result  around posting an activity's result (which acks the item)
//	after-fire-timers     after due timers were moved into the control stream
var crashPoints = []string{"read-batch", "claim-batch", "before-commit", "mid-commit", "after-commit",
	"before-outbox", "after-outbox", "activity-read", "before-activity-result", "after-activity-result",
	"after-fire-timers"}

// faultStore wraps a worker.Store: it crashes the process at a named point and
// records activity deliveries and completions in a ledger file.
type faultStore struct {
	worker.Store
	point  string
	at     int64
	hits   atomic.Int64
	pause  string
	pauseN int64
	phits  atomic.Int64
	ledger *os.File
	mu     sync.Mutex
	// With a pause point: resumed is set once the process was resumed
	// (SIGCONT), and preEpoch[p] is the highest lease epoch of partition p
	// it acquired before the pause. A commit started after the resume at
	// such an epoch is stale (the split-brain test lets another worker take
	// every partition over first); Commit logs how each one ended.
	resumed  atomic.Bool
	preEpoch map[int]int64
}

func (f *faultStore) hit(name string) {
	if name == f.pause && f.phits.Add(1) == f.pauseN {
		fmt.Fprintf(os.Stderr, "PAUSED at %s\n", name)
		// kill(2) of SIGSTOP to itself returns before every thread has
		// stopped, so this goroutine could run on (and commit at a still
		// valid epoch) before the pause: wait for the SIGCONT instead,
		// which only comes after the stop.
		cont := make(chan os.Signal, 1)
		signal.Notify(cont, syscall.SIGCONT)
		_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP) // until the test sends SIGCONT
		<-cont
		signal.Stop(cont)
		f.resumed.Store(true)
		fmt.Fprintf(os.Stderr, "RESUMED at %s\n", name)
	}
	if name != f.point {
		return
	}
	if f.hits.Add(1) == f.at {
		fmt.Fprintf(os.Stderr, "CRASH at %s\n", name)
		os.Exit(137) // like SIGKILL: no deferred cleanup, no lease release
	}
}

func (f *faultStore) log(kind string, items ...host.ActivityItem) {
	if f.ledger == nil || len(items) == 0 {
		return
	}
	var b bytes.Buffer
	for _, it := range items {
		fmt.Fprintf(&b, "%s %d %s %s %d\n", kind, os.Getpid(), strconv.Quote(it.InstanceID), it.ExecutionID, it.TaskID)
	}
	f.mu.Lock()
	_, _ = f.ledger.Write(b.Bytes()) // one write(2) per call: survives a SIGKILL right after
	f.mu.Unlock()
}

func (f *faultStore) ReadControl(ctx context.Context, p int, c string, max int, block time.Duration) ([]host.ControlMessage, error) {
	m, err := f.Store.ReadControl(ctx, p, c, max, block)
	if len(m) > 0 {
		f.hit("read-batch")
	}
	return m, err
}

func (f *faultStore) ClaimControl(ctx context.Context, p int, c string) ([]host.ControlMessage, error) {
	m, err := f.Store.ClaimControl(ctx, p, c)
	if len(m) > 0 {
		f.hit("claim-batch")
	}
	return m, err
}

func (f *faultStore) Commit(ctx context.Context, cs []host.Commit) ([]error, error) {
	f.hit("before-commit")
	if f.point == "mid-commit" && len(cs) > 1 {
		f.Store.Commit(ctx, cs[:1])
		f.hit("mid-commit")
	}
	afterResume := f.resumed.Load()
	errs, err := f.Store.Commit(ctx, cs)
	for _, e := range errs {
		if errors.Is(e, host.ErrStaleEpoch) {
			fmt.Fprintf(os.Stderr, "REFUSED stale commit: %v\n", e)
		}
	}
	if afterResume {
		f.logStaleCommits(cs, errs, err)
	}
	f.hit("after-commit")
	return errs, err
}

// Outcomes of a stale commit (logStaleCommits).
const (
	staleApplied = "STALE COMMIT reported applied"
	staleRefused = "STALE COMMIT refused"
	staleFailed  = "STALE COMMIT failed"
)

// logStaleCommits logs how each commit of cs made at an epoch acquired
// before the pause ended: reported applied (the store answered success;
// whether it really wrote is for the test to check in Redis: the line
// ends with the commit id, which an applied commit leaves in the
// instance's lc field), refused (ErrStaleEpoch: the fencing check) or
// failed (any other error, e.g. on the connection, before the check ran).
func (f *faultStore) logStaleCommits(cs []host.Commit, errs []error, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range cs {
		if pe, ok := f.preEpoch[c.Partition]; !ok || c.Epoch > pe {
			continue // acquired after the resume: not stale
		}
		cerr := err
		if cerr == nil && i < len(errs) {
			cerr = errs[i]
		}
		outcome := staleApplied
		switch {
		case errors.Is(cerr, host.ErrStaleEpoch):
			outcome = staleRefused
		case cerr != nil:
			outcome = staleFailed
		}
		fmt.Fprintf(os.Stderr, "%s: %q partition %d epoch %d: %v; commit %s\n", outcome, c.State.InstanceID, c.Partition, c.Epoch, cerr, c.CommitID)
	}
}

func (f *faultStore) AcquireLease(ctx context.Context, p int, owner string, ttl time.Duration) (int64, bool, error) {
	epoch, ok, err := f.Store.AcquireLease(ctx, p, owner, ttl)
	if ok && err == nil && f.pause != "" && !f.resumed.Load() {
		f.mu.Lock()
		if f.preEpoch == nil {
			f.preEpoch = map[int]int64{}
		}
		f.preEpoch[p] = max(f.preEpoch[p], epoch)
		f.mu.Unlock()
	}
	return epoch, ok, err
}

func (f *faultStore) AckControl(ctx context.Context, p int, epoch int64, ids []string) error {
	f.hit("before-ack")
	err := f.Store.AckControl(ctx, p, epoch, ids)
	f.hit("after-ack")
	return err
}

func (f *faultStore) DeliverOutbox(ctx context.Context, p int, epoch int64) (int, error) {
	f.hit("before-outbox")
	n, err := f.Store.DeliverOutbox(ctx, p, epoch)
	if n > 0 {
		f.hit("after-outbox")
	}
	return n, err
}

func (f *faultStore) FireDueTimers(ctx context.Context, p int, epoch int64, now time.Time, max int) (int, time.Time, error) {
	n, next, err := f.Store.FireDueTimers(ctx, p, epoch, now, max)
	if n > 0 {
		f.hit("after-fire-timers")
	}
	return n, next, err
}

func (f *faultStore) ReadActivities(ctx context.Context, p int, c string, max int, block time.Duration) ([]host.ActivityItem, error) {
	items, err := f.Store.ReadActivities(ctx, p, c, max, block)
	f.log("D", items...)
	if len(items) > 0 {
		f.hit("activity-read")
	}
	return items, err
}

func (f *faultStore) ClaimActivities(ctx context.Context, p int, c string, minIdle time.Duration, max int) ([]host.ActivityItem, error) {
	items, err := f.Store.ClaimActivities(ctx, p, c, minIdle, max)
	f.log("D", items...)
	if len(items) > 0 {
		f.hit("activity-read")
	}
	return items, err
}

func (f *faultStore) ReclaimActivities(ctx context.Context, p int, c string, live []string, minIdle time.Duration, max int) ([]host.ActivityItem, error) {
	items, err := f.Store.ReclaimActivities(ctx, p, c, live, minIdle, max)
	f.log("D", items...)
	if len(items) > 0 {
		f.hit("activity-read")
	}
	return items, err
}

// CompleteActivities completes one item at a time through CompleteActivity,
// so that each result passes its fault points.
func (f *faultStore) CompleteActivities(ctx context.Context, items []host.ActivityItem, results []host.ControlMessage) []error {
	errs := make([]error, len(items))
	for i := range items {
		errs[i] = f.CompleteActivity(ctx, items[i], results[i])
	}
	return errs
}

func (f *faultStore) CompleteActivity(ctx context.Context, item host.ActivityItem, result host.ControlMessage) error {
	f.hit("before-activity-result")
	err := f.Store.CompleteActivity(ctx, item, result)
	if err == nil {
		f.log("C", item)
	}
	f.hit("after-activity-result")
	return err
}

// TestHelperWorkerProcess is not a test: the reliability tests run this test
// binary again with DW_TEST_WORKER=1 to get a worker process they can kill.
// It runs a worker until SIGTERM.
func TestHelperWorkerProcess(t *testing.T) {
	if os.Getenv(envWorker) != "1" {
		t.Skip("helper process for the reliability tests")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	var st *redisstore.Store
	var err error
	if d, perr := time.ParseDuration(os.Getenv(envReload)); perr == nil && d > 0 {
		st, err = redisstore.New(ctx, clusterClient(os.Getenv(envURL), d), os.Getenv(envHub), redisstore.Options{})
	} else {
		st, err = redisstore.Open(ctx, os.Getenv(envURL), os.Getenv(envHub), redisstore.Options{})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	fs := &faultStore{Store: st}
	if c := os.Getenv(envCrash); c != "" {
		i := strings.LastIndexByte(c, ':')
		fs.point = c[:i]
		fs.at, _ = strconv.ParseInt(c[i+1:], 10, 64)
	}
	if c := os.Getenv(envPause); c != "" {
		i := strings.LastIndexByte(c, ':')
		fs.pause = c[:i]
		fs.pauseN, _ = strconv.ParseInt(c[i+1:], 10, 64)
	}
	if p := os.Getenv(envLedger); p != "" {
		fs.ledger, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ledger:", err)
			os.Exit(3)
		}
	}
	// Warnings and errors go to stderr, which the test reads (and prints
	// when it fails); E2E_LOG=1 logs everything.
	logger := testLogger(t)
	if os.Getenv("E2E_LOG") == "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if s := os.Getenv(envCrashOnLog); s != "" {
		logger = slog.New(&crashOnLog{Handler: logger.Handler(), text: s})
	}
	eng, err := sandbox.NewEngine(ctx, sandbox.EngineOptions{CacheDir: filepath.Join(os.TempDir(), "durablewasm-test-cache"), Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine:", err)
		os.Exit(3)
	}
	opts := worker.Options{Logger: logger, LeaseTTL: 2 * time.Second, VisibilityTimeout: 3 * time.Second}
	if d, err := time.ParseDuration(os.Getenv(envLeaseTTL)); err == nil {
		opts.LeaseTTL = d
	}
	if d, err := time.ParseDuration(os.Getenv(envVisibility)); err == nil {
		opts.VisibilityTimeout = d
	}
	if d, err := time.ParseDuration(os.Getenv(envSkew)); err == nil {
		opts.Now = func() time.Time { return time.Now().Add(d) }
	}
	if err := worker.New(fs, eng, opts).Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// workerProc is a helper worker process.
type workerProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	logs   *bytes.Buffer
	ledger string
	exited chan struct{}
}

// procOpts configure a helper worker process.
type procOpts struct {
	crash      string // "<point>:<n>"
	pause      string // "<point>:<n>"
	skew       time.Duration
	lease      time.Duration
	visibility time.Duration
	ledgerDir  string // one ledger file per process in this directory
	// clusterReload, when set, makes the worker's cluster client reload the
	// slot map this often (go-redis' default is 60 s).
	clusterReload time.Duration
	// crashOnLog: the process exits(137) when it logs a record containing
	// this text (see envCrashOnLog).
	crashOnLog string
}

// crashOnLog is a slog.Handler that exits the process, like a SIGKILL, when
// a record (at any level) contains text; other records go to Handler.
type crashOnLog struct {
	slog.Handler
	text string
}

func (h *crashOnLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *crashOnLog) Handle(ctx context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	if strings.Contains(line, h.text) {
		fmt.Fprintf(os.Stderr, "CRASH on log %q\n", line)
		os.Exit(137)
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h *crashOnLog) WithAttrs(as []slog.Attr) slog.Handler {
	// The attributes are checked too: keep them visible to Handle.
	return &crashOnLogAttrs{crashOnLog: crashOnLog{Handler: h.Handler.WithAttrs(as), text: h.text}, attrs: as}
}

func (h *crashOnLog) WithGroup(name string) slog.Handler {
	return &crashOnLog{Handler: h.Handler.WithGroup(name), text: h.text}
}

// crashOnLogAttrs is crashOnLog below a With: its attributes count too.
type crashOnLogAttrs struct {
	crashOnLog
	attrs []slog.Attr
}

func (h *crashOnLogAttrs) Handle(ctx context.Context, r slog.Record) error {
	for _, a := range h.attrs {
		if strings.Contains(a.String(), h.text) {
			fmt.Fprintf(os.Stderr, "CRASH on log attribute %s\n", a)
			os.Exit(137)
		}
	}
	return h.crashOnLog.Handle(ctx, r)
}

var procLogMu sync.Mutex

// startWorkerProc starts a helper worker process on e's hub.
func (e *env) startWorkerProc(o procOpts) *workerProc {
	t := e.t.(*testing.T)
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWorkerProcess$", "-test.v=false")
	env := append(os.Environ(), envWorker+"=1", envURL+"="+e.url, envHub+"="+e.hub)
	if o.crash != "" {
		env = append(env, envCrash+"="+o.crash)
	}
	if o.pause != "" {
		env = append(env, envPause+"="+o.pause)
	}
	if o.skew != 0 {
		env = append(env, envSkew+"="+o.skew.String())
	}
	if o.lease != 0 {
		env = append(env, envLeaseTTL+"="+o.lease.String())
	}
	if o.visibility != 0 {
		env = append(env, envVisibility+"="+o.visibility.String())
	}
	if o.clusterReload != 0 {
		env = append(env, envReload+"="+o.clusterReload.String())
	}
	if o.crashOnLog != "" {
		env = append(env, envCrashOnLog+"="+o.crashOnLog)
	}
	w := &workerProc{t: t, logs: &bytes.Buffer{}, exited: make(chan struct{})}
	if o.ledgerDir != "" {
		f, err := os.CreateTemp(o.ledgerDir, "ledger-*.txt")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		w.ledger = f.Name()
		env = append(env, envLedger+"="+w.ledger)
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &lockedWriter{b: w.logs}, &lockedWriter{b: w.logs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.cmd = cmd
	go func() { _ = cmd.Wait(); close(w.exited) }()
	t.Cleanup(func() {
		w.kill()
		if t.Failed() {
			procLogMu.Lock()
			t.Logf("worker process %d log:\n%s", cmd.Process.Pid, w.logs.String())
			procLogMu.Unlock()
		}
	})
	return w
}

type lockedWriter struct{ b *bytes.Buffer }

func (l *lockedWriter) Write(p []byte) (int, error) {
	procLogMu.Lock()
	defer procLogMu.Unlock()
	return l.b.Write(p)
}

func (w *workerProc) pid() int { return w.cmd.Process.Pid }

// kill sends SIGKILL and waits for the process to exit.
func (w *workerProc) kill() {
	select {
	case <-w.exited:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.exited
}

func (w *workerProc) signal(sig syscall.Signal) { _ = w.cmd.Process.Signal(sig) }

// waitExit waits for the process to exit by itself (e.g. at a crash point).
func (w *workerProc) waitExit(timeout time.Duration) bool {
	select {
	case <-w.exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// --- workload ----------------------------------------------------------------

// workload starts n instances of the samples (sequences, fan-out/fan-in,
// sub-orchestrations and, when withTimers, a timer loop with ContinueAsNew)
// and returns their expected outputs ("" = any output, must complete).
func (e *env) workload(prefix string, n int, withTimers bool) map[string]string {
	e.t.Helper()
	want := map[string]string{}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		switch k := i % 4; {
		case k == 0:
			e.start("E1_HelloSequence", id, "")
			want[id] = `["Hello Tokyo!","Hello Seattle!","Hello London!"]`
		case k == 1:
			dir := fmt.Sprintf("/site/%s/%d", prefix, i)
			e.start("E2_BackupSiteContent", id, `"`+dir+`"`)
			want[id] = fmt.Sprint(backupTotal(dir))
		case k == 2:
			e.start("E5_SubOrchestration", id, `"Bob"`)
			want[id] = `{"sequence":["Hello Tokyo!","Hello Seattle!","Hello London!"],"hello":"Hello Bob!"}`
		case k == 3 && withTimers:
			req, _ := json.Marshal(flows.MonitorRequest{Location: "Redmond", Phone: "555",
				ExpiryTime: time.Now().Add(1500 * time.Millisecond), PollingInterval: 300 * time.Millisecond})
			e.start("E3_Monitor", id, string(req))
			want[id] = ""
		default:
			e.start("HelloWorld", id, `"Ada"`)
			want[id] = `"Hello Ada!"`
		}
	}
	return want
}

// finished counts the instances of want that are in a terminal state.
func (e *env) finished(want map[string]string) int {
	n := 0
	for id := range want {
		if st, err := e.client.GetStatus(context.Background(), id); err == nil && st.Status.Terminal() {
			n++
		}
	}
	return n
}

// expectOutputs waits for every instance of want and checks its output;
// it returns how many did not complete as expected.
func (e *env) expectOutputs(want map[string]string, timeout time.Duration) (lost int) {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for id, w := range want {
		st, err := e.client.WaitForCompletion(ctx, id, 25*time.Millisecond)
		if err != nil {
			lost++
			status := "unknown"
			if st != nil {
				status = string(st.Status)
			}
			hist, _ := e.client.GetHistory(context.Background(), id)
			t.Errorf("%s did not finish within %s (status %s): %v; history has %d events", id, timeout, status, err, len(hist))
			continue
		}
		if st.Status != abi.StatusCompleted || w != "" && st.Output != w {
			lost++
			t.Errorf("%s: %s output %s failure %v; want %s", id, st.Status, st.Output, st.Failure, w)
		}
	}
	return lost
}

// checkInvariants runs the invariant checker on the hub and fails the test on
// any problem or on instances left waiting (the workloads never wait for an
// external event).
func (e *env) checkInvariants() *invariant.Report {
	e.t.Helper()
	r, err := invariant.CheckStable(context.Background(), e.store, 5)
	if err != nil {
		e.t.Fatalf("invariant check: %v", err)
	}
	for _, p := range r.Problems {
		e.t.Errorf("invariant: %s", p)
	}
	if len(r.Waiting) > 0 {
		e.t.Errorf("invariant: instances waiting with nothing in flight: %v", r.Waiting)
	}
	return r
}

// --- activity ledger ---------------------------------------------------------

type taskKey struct {
	instance, execution string
	task                int32
}

// ledgerStats summarises the ledgers of worker processes.
type ledgerStats struct {
	executions int // activity deliveries (executions started)
	tasks      int // distinct (instance, execution, task)
	duplicates int // executions - tasks
	// inFlight[pid] is the number of items delivered to pid and not
	// completed by it: what a kill of pid could make run again.
	inFlight map[int]int
}

func readLedgers(t testing.TB, files []string) ledgerStats {
	s := ledgerStats{inFlight: map[int]int{}}
	seen := map[taskKey]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		open := map[taskKey]int{}
		pid := 0
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var kind, q, exec string
			var task int32
			if _, err := fmt.Sscanf(sc.Text(), "%s %d %q %s %d", &kind, &pid, &q, &exec, &task); err != nil {
				t.Fatalf("ledger %s: %q: %v", f, sc.Text(), err)
			}
			k := taskKey{q, exec, task}
			if kind == "D" {
				seen[k]++
				s.executions++
				open[k]++
			} else if open[k] > 0 {
				open[k]--
			}
		}
		for _, n := range open {
			s.inFlight[pid] += n
		}
	}
	s.tasks = len(seen)
	s.duplicates = s.executions - s.tasks
	return s
}

func globLedgers(t testing.TB, dir string) []string {
	files, err := filepath.Glob(filepath.Join(dir, "ledger-*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// logContains reports how many lines of the process's log contain s.
func (w *workerProc) logCount(s string) int {
	procLogMu.Lock()
	defer procLogMu.Unlock()
	return strings.Count(w.logs.String(), s)
}

// waitLog waits until the process's log contains s.
func (w *workerProc) waitLog(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if w.logCount(s) > 0 {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// logLines returns the lines of the process's log that contain s.
func (w *workerProc) logLines(s string) []string {
	procLogMu.Lock()
	defer procLogMu.Unlock()
	var out []string
	for _, l := range strings.Split(w.logs.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// checkWorkersAlive fails the test for every worker of procs that exited
// (during names what was going on, for the message).
func checkWorkersAlive(t *testing.T, procs []*workerProc, during string) {
	t.Helper()
	for i, p := range procs {
		select {
		case <-p.exited:
			t.Errorf("worker %d exited during %s:\n%s", i, during, p.logs.String())
		default:
		}
	}
}
