package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/durablewasm/durablewasm/samples/flows/benchwork"
)

// parallel runs fn(i) for i in [0,n) on `workers` goroutines, in index
// order as far as the goroutines allow, and returns the first error.
func parallel(n, workers int, fn func(i int) error) error {
	if workers > n {
		workers = n
	}
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// startAll starts fn for every id from `starters` goroutines and returns
// each instance's start time (taken just before its start call).
func startAll(ctx context.Context, e engine, fn string, ids []string, starters int, input func(i int) any) ([]time.Time, error) {
	starts := make([]time.Time, len(ids))
	err := parallel(len(ids), starters, func(i int) error {
		starts[i] = time.Now()
		if err := e.start(ctx, fn, ids[i], input(i)); err != nil {
			return fmt.Errorf("%s: start %s: %w", e.name(), ids[i], err)
		}
		return nil
	})
	return starts, err
}

// awaitAll polls every instance (in order, from `pollers` goroutines, every
// `every` while not yet there) until pred holds, and returns the states.
func awaitAll(ctx context.Context, e engine, ids []string, pollers int, every time.Duration, timeout time.Duration, pred func(instState) bool) ([]instState, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := make([]instState, len(ids))
	err := parallel(len(ids), pollers, func(i int) error {
		for {
			st, err := e.state(ctx, ids[i])
			if err == nil && pred(st) {
				out[i] = st
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: instance %s: %v (last error %v)", e.name(), ids[i], ctx.Err(), err)
			case <-time.After(every):
			}
		}
	})
	return out, err
}

func isDone(s instState) bool    { return s.done }
func isStarted(s instState) bool { return s.started }

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%06d", prefix, i)
	}
	return out
}

// batchResult is a batch of orchestrations run concurrently.
type batchResult struct {
	n         int
	wall      time.Duration // first start (or raise) to last recorded completion
	lat       []time.Duration
	procCPU   time.Duration // the harness process
	workerCPU time.Duration // the worker child process (0: in-process worker)
	redisCPU  time.Duration
	failed    int
	rate      float64 // n / wall
	lastDone  time.Time
	firstTime time.Time
	// rssPeak and rssEnd are the worker child process' peak RSS (VmHWM,
	// over its whole life: setup, warm-up and every run so far) and its RSS
	// at the end of the run; 0 for an in-process worker.
	rssPeak, rssEnd int64
	// redisMem and redisData are Redis' used_memory and
	// used_memory_dataset (used_memory without the server's overhead:
	// client buffers, the AOF buffer, scripts) after the run minus before it.
	redisMem, redisData int64
	// rates: every run's rate, in run order, when the result is the median
	// of several runs (runBatchReps).
	rates []float64
}

// batchSpec is a batch workload: n instances of orchestration fn, started
// concurrently.
type batchSpec struct {
	fn    string
	input func(i int) any
	// warm instances of fn run (after warmUp's Hello5) before the timed
	// part, so that the activities' paths are warm too (and durablewasm's
	// worker has seen its activities run).
	warm int
}

var hello5Spec = batchSpec{fn: "Hello5", input: func(int) any { return "hello" }}

// runBatchReps runs runBatch reps times on the same worker (new instance
// ids each time) and returns the run with the median rate, with every run's
// rate in rates: one run's rate moves by ±15 % on this shared VM, the
// median of three much less.
func runBatchReps(ctx context.Context, b *bench, e engine, spec batchSpec, prefix string, n, starters, reps int) (*batchResult, error) {
	var runs []*batchResult
	for i := 0; i < max(reps, 1); i++ {
		r, err := runBatch(ctx, b, e, spec, fmt.Sprintf("%sr%d", prefix, i), n, starters)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	rates := make([]float64, len(runs))
	for i, r := range runs {
		rates[i] = r.rate
	}
	sorted := append([]*batchResult(nil), runs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].rate < sorted[j].rate })
	med := sorted[len(sorted)/2]
	med.rates = rates
	return med, nil
}

// formatRates prints rates as "2,801  3,012  2,950".
func formatRates(rates []float64) string {
	var parts []string
	for _, r := range rates {
		parts = append(parts, fmt.Sprintf("%.0f", r))
	}
	return strings.Join(parts, "  ")
}

func summarize(r *batchResult, t0 time.Time, begin []time.Time, states []instState) {
	r.firstTime = t0
	for i, st := range states {
		if st.failed {
			r.failed++
		}
		if st.completed.After(r.lastDone) {
			r.lastDone = st.completed
		}
		r.lat = append(r.lat, st.completed.Sub(begin[i]))
	}
	r.n = len(states)
	r.wall = r.lastDone.Sub(t0)
	r.rate = float64(r.n) / r.wall.Seconds()
}

// warmUp runs a few Hello5 so the module is compiled, leases are held and
// connection pools are filled before anything is timed.
func warmUp(ctx context.Context, e engine, n int) error {
	return warmWith(ctx, e, hello5Spec, n)
}

func warmWith(ctx context.Context, e engine, spec batchSpec, n int) error {
	id := ids("warm-"+fmt.Sprint(time.Now().UnixNano()), n)
	if _, err := startAll(ctx, e, spec.fn, id, 4, spec.input); err != nil {
		return err
	}
	st, err := awaitAll(ctx, e, id, 4, 2*time.Millisecond, 2*time.Minute, isDone)
	if err != nil {
		return err
	}
	for i, s := range st {
		if s.failed {
			return fmt.Errorf("%s: warm-up %s %s failed", e.name(), spec.fn, id[i])
		}
	}
	return nil
}

// runHello5 is runBatch of Hello5.
func runHello5(ctx context.Context, b *bench, e engine, prefix string, n, starters int) (*batchResult, error) {
	return runBatch(ctx, b, e, hello5Spec, prefix, n, starters)
}

// runBatch starts n instances of spec.fn from `starters` goroutines and
// waits for all. Latency is each instance's recorded completion time minus
// the time its start call began; the rate counts from the first start to
// the last recorded completion.
func runBatch(ctx context.Context, b *bench, e engine, spec batchSpec, prefix string, n, starters int) (*batchResult, error) {
	if err := warmUp(ctx, e, 20); err != nil {
		return nil, err
	}
	if spec.warm > 0 {
		if err := warmWith(ctx, e, spec, spec.warm); err != nil {
			return nil, err
		}
	}
	list := ids(prefix, n)
	mem, data := b.redis.usedMemory(), b.redis.memInfo("used_memory_dataset")
	m := newCPUMeter(b.redis, e.worker())
	t0 := time.Now()
	var states []instState
	var awaitErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		states, awaitErr = awaitAll(ctx, e, list, 4, 20*time.Millisecond, 10*time.Minute, isDone)
	}()
	starts, err := startAll(ctx, e, spec.fn, list, starters, spec.input)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if awaitErr != nil {
		return nil, awaitErr
	}
	r := &batchResult{}
	r.procCPU, r.redisCPU = m.stop()
	r.workerCPU = m.workerCPU()
	if w := e.worker(); w != nil {
		r.rssPeak, r.rssEnd = w.status("VmHWM"), w.status("VmRSS")
	}
	r.redisMem = b.redis.usedMemory() - mem
	r.redisData = b.redis.memInfo("used_memory_dataset") - data
	summarize(r, t0, starts, states)
	return r, nil
}

type singleResult struct {
	// observed: start call to the poll that saw it completed, polling back
	// to back; observed1ms: the same, polling every millisecond.
	observed, observed1ms []time.Duration
	// recorded: start call to the engine's recorded completion (both
	// passes).
	recorded []time.Duration
	// waited: start call to the return of the engine's own wait API.
	waited []time.Duration
}

// runSingle runs n Hello5 one after the other, three times: first each is
// polled back to back (the next state read is sent as soon as the previous
// one returns), then every millisecond, then awaited with the engine's own
// wait API. Back to back measures when a caller can
// see the completion, to within one state read; a 1 ms poll quantizes what
// it measures to the poll period, which is longer than durablewasm's whole
// latency.
func runSingle(ctx context.Context, e engine, n int) (*singleResult, error) {
	if err := warmUp(ctx, e, 5); err != nil {
		return nil, err
	}
	r := &singleResult{}
	for pass, pause := range []time.Duration{0, time.Millisecond} {
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("single-%d-%06d", pass, i)
			t0 := time.Now()
			if err := e.start(ctx, "Hello5", id, "hello"); err != nil {
				return nil, err
			}
			deadline := t0.Add(time.Minute)
			for {
				st, err := e.state(ctx, id)
				if err == nil && st.done {
					seen := time.Since(t0)
					if pause == 0 {
						r.observed = append(r.observed, seen)
					} else {
						r.observed1ms = append(r.observed1ms, seen)
					}
					r.recorded = append(r.recorded, st.completed.Sub(t0))
					break
				}
				if time.Now().After(deadline) {
					return nil, fmt.Errorf("%s: %s did not complete in a minute (%v)", e.name(), id, err)
				}
				if pause > 0 {
					time.Sleep(pause)
				}
			}
		}
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("single-w-%06d", i)
		t0 := time.Now()
		if err := e.start(ctx, "Hello5", id, "hello"); err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := e.wait(wctx, id)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s: wait for %s: %w", e.name(), id, err)
		}
		r.waited = append(r.waited, time.Since(t0))
	}
	return r, nil
}

type fanoutResult struct {
	walls             []time.Duration
	procCPU, redisCPU time.Duration
}

// runFanOut runs FanOut(n) reps times, one at a time; wall is the start
// call to the recorded completion.
func runFanOut(ctx context.Context, b *bench, e engine, n, reps int) (*fanoutResult, error) {
	if err := warmUp(ctx, e, 5); err != nil {
		return nil, err
	}
	// Warm the fan-out path too.
	if _, err := runOne(ctx, e, "FanOut", "fanout-warm", 20); err != nil {
		return nil, err
	}
	r := &fanoutResult{}
	m := newCPUMeter(b.redis, e.worker())
	for i := 0; i < reps; i++ {
		d, err := runOne(ctx, e, "FanOut", fmt.Sprintf("fanout-%d", i), n)
		if err != nil {
			return nil, err
		}
		r.walls = append(r.walls, d)
	}
	r.procCPU, r.redisCPU = m.stop()
	return r, nil
}

// runOne starts one instance and returns start call to recorded completion.
func runOne(ctx context.Context, e engine, fn, id string, input any) (time.Duration, error) {
	t0 := time.Now()
	if err := e.start(ctx, fn, id, input); err != nil {
		return 0, err
	}
	st, err := awaitAll(ctx, e, []string{id}, 1, 5*time.Millisecond, 5*time.Minute, isDone)
	if err != nil {
		return 0, err
	}
	if st[0].failed {
		return 0, fmt.Errorf("%s: %s failed", e.name(), id)
	}
	return st[0].completed.Sub(t0), nil
}

// runEvents starts n WaitOne, waits until each has run its first step (and
// waits for its event), then raises all events from `starters` goroutines.
// The rate counts from the first raise to the last recorded completion;
// latency is each raise call's start to its instance's completion.
func runEvents(ctx context.Context, b *bench, e engine, prefix string, n, starters int) (*batchResult, error) {
	if err := warmUp(ctx, e, 5); err != nil {
		return nil, err
	}
	list := ids(prefix, n)
	if _, err := startAll(ctx, e, "WaitOne", list, starters, func(int) any { return "" }); err != nil {
		return nil, err
	}
	if _, err := awaitAll(ctx, e, list, 4, 20*time.Millisecond, 10*time.Minute, isStarted); err != nil {
		return nil, err
	}
	m := newCPUMeter(b.redis, e.worker())
	t1 := time.Now()
	var states []instState
	var awaitErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		states, awaitErr = awaitAll(ctx, e, list, 4, 20*time.Millisecond, 10*time.Minute, isDone)
	}()
	raises := make([]time.Time, n)
	err := parallel(n, starters, func(i int) error {
		raises[i] = time.Now()
		return e.raise(ctx, list[i], "go", "data")
	})
	wg.Wait()
	if err != nil {
		return nil, fmt.Errorf("%s: raise: %w", e.name(), err)
	}
	if awaitErr != nil {
		return nil, awaitErr
	}
	r := &batchResult{}
	r.procCPU, r.redisCPU = m.stop()
	summarize(r, t1, raises, states)
	return r, nil
}

type longResult struct {
	stepsRun   int
	events     int
	stepAt10   time.Duration // median step interval near the start of the history
	stepAt10k  time.Duration // median step interval before event 10,000
	warmResume time.Duration // raise → completion, short history, warm worker
	coldResume time.Duration // raise → completion, 10,000 events, fresh worker
	buildTime  time.Duration
}

// runLongHistory: see docs/benchmarks.md, "longhistory".
func runLongHistory(ctx context.Context, e engine, target int) (*longResult, error) {
	if err := warmUp(ctx, e, 5); err != nil {
		return nil, err
	}
	// Calibrate the events a step adds with two short instances; they also
	// give the warm baseline of a resume.
	lens := map[int]int{}
	for _, n := range []int{20, 40} {
		id := fmt.Sprintf("short-%d", n)
		if err := e.start(ctx, "StepsWait", id, n); err != nil {
			return nil, err
		}
		if err := waitParked(ctx, e, id, n, time.Minute); err != nil {
			return nil, err
		}
		_, l, err := e.steps(ctx, id)
		if err != nil {
			return nil, err
		}
		lens[n] = l
	}
	per := float64(lens[40]-lens[20]) / 20
	base := float64(lens[20]) - 20*per
	n := int((float64(target)-base)/per) + 1
	r := &longResult{stepsRun: n}
	t0 := time.Now()
	if err := e.start(ctx, "StepsWait", "long", n); err != nil {
		return nil, err
	}
	if err := waitParked(ctx, e, "long", n, 8*time.Minute); err != nil {
		return nil, err
	}
	r.buildTime = time.Since(t0)
	steps, l, err := e.steps(ctx, "long")
	if err != nil {
		return nil, err
	}
	r.events = l
	// Step intervals: time between consecutive activity completions.
	var early, late []time.Duration
	for i := 1; i < len(steps); i++ {
		d := steps[i].at.Sub(steps[i-1].at)
		switch {
		case steps[i].index <= 10+25*int(per+0.5) && i >= 2:
			early = append(early, d)
		case steps[i].index <= target && steps[i].index > target-25*int(per+0.5):
			late = append(late, d)
		}
	}
	r.stepAt10, r.stepAt10k = median(early), median(late)
	// Warm resume: the short instances on the warm worker.
	var warm []time.Duration
	for _, n := range []int{20, 40} {
		d, err := resume(ctx, e, fmt.Sprintf("short-%d", n))
		if err != nil {
			return nil, err
		}
		warm = append(warm, d)
	}
	r.warmResume = min(warm[0], warm[1])
	// Cold: a new worker (empty caches), warmed with a few Hello5 so its
	// leases, module and connections are ready, then the event.
	if err := e.restartWorker(ctx); err != nil {
		return nil, err
	}
	if err := warmUp(ctx, e, 5); err != nil {
		return nil, err
	}
	r.coldResume, err = resume(ctx, e, "long")
	return r, err
}

func waitParked(ctx context.Context, e engine, id string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := e.parked(ctx, id, n)
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not parked after %s (%v)", e.name(), id, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// resume raises "go" on a parked StepsWait and returns the raise call's
// start to the recorded completion (one step that replays nothing when the
// instance is warm, then the last activity, then the final step).
func resume(ctx context.Context, e engine, id string) (time.Duration, error) {
	t0 := time.Now()
	if err := e.raise(ctx, id, "go", "x"); err != nil {
		return 0, err
	}
	st, err := awaitAll(ctx, e, []string{id}, 1, time.Millisecond, 2*time.Minute, isDone)
	if err != nil {
		return 0, err
	}
	if st[0].failed {
		return 0, fmt.Errorf("%s: %s failed", e.name(), id)
	}
	return st[0].completed.Sub(t0), nil
}

type holdResult struct {
	n, completed int
	maxWarm      int
	startTime    time.Duration
	parkTime     time.Duration
	rssParked    int64
	rssPeak      int64
	heapParked   uint64
	redisMem     int64
	events       *batchResult
}

// runHold parks n WaitOne on one worker that keeps at most maxWarm of them
// in memory, samples RSS, then raises all events and waits for all.
func runHold(ctx context.Context, b *bench, e engine, n, starters, maxWarm int) (*holdResult, error) {
	if err := warmUp(ctx, e, 5); err != nil {
		return nil, err
	}
	r := &holdResult{n: n, maxWarm: maxWarm}
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if v := procStatus("VmRSS"); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	list := ids("hold", n)
	t0 := time.Now()
	if _, err := startAll(ctx, e, "WaitOne", list, starters, func(int) any { return "" }); err != nil {
		return nil, err
	}
	r.startTime = time.Since(t0)
	if _, err := awaitAll(ctx, e, list, 8, 20*time.Millisecond, 10*time.Minute, isStarted); err != nil {
		return nil, err
	}
	r.parkTime = time.Since(t0)
	runtime.GC()
	time.Sleep(500 * time.Millisecond)
	r.rssParked = procStatus("VmRSS")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.heapParked = ms.HeapInuse
	r.redisMem = b.redis.usedMemory()
	m := newCPUMeter(b.redis, e.worker())
	t1 := time.Now()
	raises := make([]time.Time, n)
	var states []instState
	var awaitErr error
	var wg2 sync.WaitGroup
	wg2.Add(1)
	go func() {
		defer wg2.Done()
		states, awaitErr = awaitAll(ctx, e, list, 8, 20*time.Millisecond, 10*time.Minute, isDone)
	}()
	err := parallel(n, starters, func(i int) error {
		raises[i] = time.Now()
		return e.raise(ctx, list[i], "go", "data")
	})
	wg2.Wait()
	if err != nil {
		return nil, err
	}
	if awaitErr != nil {
		return nil, awaitErr
	}
	ev := &batchResult{}
	ev.procCPU, ev.redisCPU = m.stop()
	summarize(ev, t1, raises, states)
	r.events = ev
	for _, st := range states {
		if st.done && !st.failed {
			r.completed++
		}
	}
	r.rssPeak = peak.Load()
	return r, nil
}

// ioServer starts (once) the io workload's HTTP server on a free loopback
// port: it answers every request after -io-delay with a short body. It
// returns the URL the activities get and its host:port (the allowlist
// entry).
func (b *bench) ioServer() (url, hostport string, err error) {
	if b.ioURL == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", err
		}
		delay := b.cfg.ioDelay
		body := []byte("hello from the io workload's server\n")
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay)
			w.Write(body)
		})}
		go srv.Serve(l)
		b.ioURL = "http://" + l.Addr().String() + "/io"
	}
	hostport = strings.TrimSuffix(strings.TrimPrefix(b.ioURL, "http://"), "/io")
	return b.ioURL, hostport, nil
}

// nativeCompute returns the median time of runs calls of
// benchwork.Compute(iterations) in this process.
func nativeCompute(iterations, runs int) time.Duration {
	ds := make([]time.Duration, runs)
	for i := range ds {
		t0 := time.Now()
		benchwork.Compute(iterations)
		ds[i] = time.Since(t0)
	}
	return median(ds)
}

// bigPayload returns n pseudo-random letters and digits (xorshift32, fixed
// seed): incompressible enough, and nothing to escape in JSON.
func bigPayload(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-"
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = alphabet[x%uint32(len(alphabet))]
	}
	return string(b)
}
