// Command bench is the benchmark harness of issues 6 and 14: it runs the
// same workloads on durablewasm (the samples guest module, one worker) and
// on github.com/cschleiden/go-workflows v1.2.0 with its Redis backend (one
// worker, tuned), one after the other on a redis-server it starts itself
// (AOF with appendfsync always; a second one without persistence for the
// reference rows), and prints both engines' figures and their ratio. The
// workers of the throughput workloads run in child processes (the harness
// re-executes itself with -role worker) so that their RSS and CPU are their
// own. hello5, io and cpu also run durablewasm with the Rust samples module
// (samples/rust, built at the start with Debian's cargo when it is
// installed; issue 18) beside the Go one.
//
//	cd bench && go run . -workload all
//	cd bench && go run . -quick -workload hello5
//
// See docs/benchmarks.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/durablewasm/durablewasm/samples/flows/benchwork"
)

var workloads = []string{"hello5", "hello5-local-off", "io", "cpu", "big", "single", "fanout", "events", "longhistory", "hold", "sweep"}

type config struct {
	workload    string
	engines     map[string]bool
	quick       bool
	n           int
	starters    int
	singleN     int
	hello5Reps  int
	fanoutN     int
	fanoutReps  int
	eventsN     int
	historyN    int
	holdN       int
	holdMaxWarm int
	holdBudget  int64
	sweep       []int
	sweepN      int
	svg         string
	peerDefault bool
	redisBin    string
	cpuprofile  string
	ioN         int
	ioDelay     time.Duration
	ioConc      int
	cpuN        int
	cpuIters    int
	bigN        int
	bigKiB      int
	instancesN  int
}

// rustWorkloads are the workloads that run the Rust guest too.
var rustWorkloads = []string{"hello5", "io", "cpu"}

type bench struct {
	cfg config
	// redis is the server the current workload runs on: persist (AOF,
	// appendfsync always) for every main row, noPersist for the reference
	// rows.
	redis, persist, noPersist *redisServer
	// ioURL is the io workload's HTTP server, once started.
	ioURL string
	// targets collects the verdicts printed at the end.
	targets []string
	// rustWasm is the Rust samples module, nil when it was not built
	// (rustSkip says why).
	rustWasm []byte
	rustSkip string
	// goGuest and rustGuest are the modules' sizes and instance creation
	// times; guestRows the guests summary printed at the end.
	goGuest, rustGuest *guestFacts
	guestRows          []row
}

func main() {
	var c config
	var engines, sweep string
	flag.StringVar(&c.workload, "workload", "all", "workload to run: all, "+strings.Join(workloads, ", "))
	flag.StringVar(&engines, "engines", "durablewasm,"+rustEngine+",go-workflows", "engines to run (comma-separated; "+rustEngine+" is durablewasm with the Rust samples module, in hello5, io and cpu)")
	flag.BoolVar(&c.quick, "quick", false, "smoke run: small instance counts (explicit flags still win)")
	flag.IntVar(&c.n, "n", 2000, "hello5: orchestrations")
	flag.IntVar(&c.hello5Reps, "hello5-runs", 3, "hello5: runs per engine (the median run is reported)")
	flag.IntVar(&c.starters, "starters", 16, "hello5, events, hold: goroutines starting orchestrations (or raising events)")
	flag.IntVar(&c.singleN, "single-n", 200, "single: sequential orchestrations")
	flag.IntVar(&c.fanoutN, "fanout-n", 1000, "fanout: activities per orchestration")
	flag.IntVar(&c.fanoutReps, "fanout-reps", 3, "fanout: orchestrations, one after the other (the median is reported)")
	flag.IntVar(&c.eventsN, "events-n", 10000, "events: waiting orchestrations")
	flag.IntVar(&c.historyN, "history-n", 10000, "longhistory: history length (events)")
	flag.IntVar(&c.holdN, "hold-n", 100000, "hold: waiting orchestrations (durablewasm only)")
	flag.IntVar(&c.holdMaxWarm, "hold-maxwarm", 10000, "hold: the worker's MaxWarm (orchestrations kept in memory)")
	var budget int
	flag.IntVar(&budget, "hold-budget-mib", 1024, "hold: memory budget (RSS of the whole harness process, MiB)")
	flag.StringVar(&sweep, "sweep", "1,4,16,64", "sweep: starter counts")
	flag.IntVar(&c.sweepN, "sweep-n", 2000, "sweep: orchestrations per point")
	flag.StringVar(&c.svg, "svg", "../docs/bench-throughput.svg", "sweep: chart output (\"\" for none)")
	flag.BoolVar(&c.peerDefault, "peer-default", false, "run go-workflows with its default worker options instead of tuned")
	flag.StringVar(&c.redisBin, "redis-server", "redis-server", "redis-server binary")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.IntVar(&c.ioN, "io-n", 1000, "io: orchestrations")
	flag.DurationVar(&c.ioDelay, "io-delay", 50*time.Millisecond, "io: how long the local HTTP server takes to answer")
	flag.IntVar(&c.ioConc, "io-concurrency", 0, "io: durablewasm's ActivityConcurrency in the tuned row (0: its default; -1: no tuned row)")
	flag.IntVar(&c.cpuN, "cpu-n", 200, "cpu: orchestrations")
	flag.IntVar(&c.cpuIters, "cpu-iterations", benchwork.Iterations, "cpu: benchwork.Compute's input per activity")
	flag.IntVar(&c.bigN, "big-n", 300, "big: orchestrations")
	flag.IntVar(&c.bigKiB, "big-kib", 64, "big: payload size (KiB)")
	flag.IntVar(&c.instancesN, "instances-n", 200, "guests: module instances created per module to time instance creation")
	var role, spec string
	flag.StringVar(&role, "role", "", "internal: \"worker\" runs a worker child process")
	flag.StringVar(&spec, "worker-spec", "", "internal: the worker child's workerSpec (JSON)")
	flag.Parse()
	if role == "worker" {
		runWorkerRole(spec)
		return
	}
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.quick {
		quick := map[string]func(){
			"n": func() { c.n = 300 }, "hello5-runs": func() { c.hello5Reps = 1 }, "single-n": func() { c.singleN = 30 }, "fanout-n": func() { c.fanoutN = 200 },
			"fanout-reps": func() { c.fanoutReps = 1 }, "events-n": func() { c.eventsN = 500 },
			"history-n": func() { c.historyN = 1000 }, "hold-n": func() { c.holdN = 5000 },
			"hold-maxwarm": func() { c.holdMaxWarm = 500 }, "sweep-n": func() { c.sweepN = 200 },
			"io-n": func() { c.ioN = 100 }, "cpu-n": func() { c.cpuN = 30 }, "big-n": func() { c.bigN = 50 },
			"instances-n": func() { c.instancesN = 30 },
		}
		for name, f := range quick {
			if !set[name] {
				f()
			}
		}
		if !set["svg"] {
			c.svg = "" // a smoke run does not overwrite the committed chart
		}
	}
	c.holdBudget = int64(budget) << 20
	c.engines = map[string]bool{}
	for _, e := range strings.Split(engines, ",") {
		c.engines[strings.TrimSpace(e)] = true
	}
	for _, s := range strings.Split(sweep, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatalf("bad -sweep %q", sweep)
		}
		c.sweep = append(c.sweep, n)
	}
	var run []string
	if c.workload == "all" {
		run = workloads
	} else {
		for _, w := range strings.Split(c.workload, ",") {
			if !contains(workloads, w) {
				fatalf("unknown workload %q (have all, %s)", w, strings.Join(workloads, ", "))
			}
			run = append(run, w)
		}
	}
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			fatalf("%v", err)
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	rs, err := startRedis(c.redisBin, true)
	if err != nil {
		fatalf("%v", err)
	}
	defer rs.stop()
	ref, err := startRedis(c.redisBin, false)
	if err != nil {
		rs.stop()
		fatalf("%v", err)
	}
	defer ref.stop()
	b := &bench{cfg: c, redis: rs, persist: rs, noPersist: ref}
	b.header()
	began := time.Now()
	b.buildRust(run)
	if err := b.guests(context.Background()); err != nil {
		rs.stop()
		ref.stop()
		fatalf("guests: %v", err)
	}
	for _, w := range run {
		if err := b.run(context.Background(), w); err != nil {
			rs.stop()
			ref.stop()
			fatalf("%s: %v", w, err)
		}
	}
	if len(b.guestRows) > 0 {
		fmt.Printf("\n== guests (issue 18): durablewasm with the Go and the Rust samples module, beside go-workflows (informational, no targets)\n")
		printTable(b.guestRows)
		if b.rustSkip != "" {
			fmt.Printf("  Rust rows skipped: %s\n", b.rustSkip)
		}
	}
	fmt.Printf("\n== targets (issues 6 and 14; main rows on Redis with AOF, appendfsync always)\n")
	for _, t := range b.targets {
		fmt.Println(t)
	}
	fmt.Printf("\ntotal time %.0f s; load average at the end: %s\n", time.Since(began).Seconds(), loadavg())
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "?"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

func modVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "?"
	}
	for _, d := range bi.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	return "?"
}

// rev names the durablewasm source the harness was built from; set it with
// -ldflags "-X main.rev=..." when building from an export of a commit.
var rev string

func gitRev() string {
	if rev != "" {
		return rev
	}
	out, err := exec.Command("git", "-C", "..", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func (b *bench) header() {
	fmt.Printf("durablewasm benchmark harness (issues 6 and 14), %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s, %s RAM; load average at the start: %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(), memTotal(), loadavg())
	fmt.Printf("versions: %s, redis-server %s, go-workflows %s, durablewasm %s\n",
		runtime.Version(), b.redis.version(), modVersion("github.com/cschleiden/go-workflows"), gitRev())
	fmt.Printf("redis-server (every row unless marked): %s, %s (AOF in a temp dir; the durability docs/reliability.md requires), flushed before each engine's run of a workload\n", b.persist.addr, b.persist.persistence())
	fmt.Printf("redis-server (rows marked \"no persistence\", for reference): %s, %s\n", b.noPersist.addr, b.noPersist.persistence())
	fmt.Printf("durablewasm: samples/samples.wasm (samples/flows/bench.go), one worker, worker.Options defaults unless a workload says otherwise\n")
	fmt.Printf("go-workflows: one worker, %s unless a workload says otherwise; Redis backend defaults (MaxHistorySize raised to allow 10,000-event histories)\n", gwTuning(!b.cfg.peerDefault))
	fmt.Printf("workers: in a child process each (its RSS and CPU apart from the harness') for hello5, hello5-local-off, io, cpu and big; in the harness process for the others\n")
	fmt.Printf("ratio: how many times better durablewasm is (its rate ÷ the peer's; the peer's time or CPU ÷ its own); column dw-rust: durablewasm with the Rust samples module, and Rust÷Go how many times better it is than with the Go module\n")
}

// buildRust builds the Rust samples module when the Rust rows are wanted,
// or says why they are skipped.
func (b *bench) buildRust(run []string) {
	wanted := false
	for _, w := range run {
		wanted = wanted || contains(rustWorkloads, w)
	}
	if !b.cfg.engines[rustEngine] || !wanted {
		return
	}
	wasm, took, skip := buildRustGuest()
	if skip != "" {
		b.rustSkip = skip
		fmt.Printf("%s: the Rust rows are skipped: %s\n", rustEngine, skip)
		return
	}
	b.rustWasm = wasm
	ver, _ := exec.Command(debianRustc, "--version").Output()
	fmt.Printf("%s: samples/rust (%s, wasm32-wasi, release: opt-level s, LTO) built in %.1f s, %d bytes; deployed as app \"bench\" in hub %s (its function names are the Go samples')\n",
		rustEngine, strings.TrimSpace(string(ver)), took.Seconds(), len(wasm), rustHub)
}

// engineRun is one engine's result for one workload.
type engineRun struct {
	e   engine
	res any
}

func (b *bench) newEngines(rust bool) []engine {
	var out []engine
	if b.cfg.engines["durablewasm"] {
		out = append(out, newDW(b.redis.url(), nil))
	}
	if rust && b.rustWasm != nil {
		out = append(out, newDW(b.redis.url(), b.rustWasm))
	}
	if b.cfg.engines["go-workflows"] {
		out = append(out, newGW(b.redis.addr, !b.cfg.peerDefault))
	}
	return out
}

// each runs fn on every engine in turn, each on a flushed Redis with a
// fresh worker.
func (b *bench) each(ctx context.Context, o setupOptions, only string, fn func(e engine) (any, error)) (map[string]any, error) {
	out := map[string]any{}
	for _, e := range b.newEngines(o.rust) {
		if only != "" && e.name() != only {
			continue
		}
		if err := b.redis.flush(); err != nil {
			return nil, err
		}
		if err := e.setup(ctx, o); err != nil {
			return nil, fmt.Errorf("%s: setup: %w", e.name(), err)
		}
		res, err := fn(e)
		e.teardown()
		if err != nil {
			return nil, err
		}
		out[e.name()] = res
		runtime.GC()
	}
	return out, nil
}
