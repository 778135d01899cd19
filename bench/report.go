package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"time"
)

// row is one line of a workload's table.
type row struct {
	metric string
	// dw, rs, gw: durablewasm with the Go module, with the Rust module,
	// go-workflows (NaN: not measured). A zero row has rs 0: build rows
	// with rs set (nan when not measured).
	dw, rs, gw   float64
	higherBetter bool
	prec         int
	noRatio      bool // informational: dw and gw are not compared
}

var nan = math.NaN()

func isNaN(v float64) bool { return math.IsNaN(v) }

// rsRatio is how many times better the Rust module does than the Go one.
func (r row) rsRatio() float64 {
	if math.IsNaN(r.dw) || math.IsNaN(r.rs) || r.dw == 0 || r.rs == 0 {
		return nan
	}
	if r.higherBetter {
		return r.rs / r.dw
	}
	return r.dw / r.rs
}

func (r row) ratio() float64 {
	if r.noRatio || math.IsNaN(r.dw) || math.IsNaN(r.gw) || r.dw == 0 || r.gw == 0 {
		return nan
	}
	if r.higherBetter {
		return r.dw / r.gw
	}
	return r.gw / r.dw
}

func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.2f×", v)
}

// printTable prints rows; with a dw-rust column (and its Rust÷Go ratio) when
// any row has a figure for the Rust module.
func printTable(rows []row) {
	rust := false
	for _, r := range rows {
		rust = rust || (!math.IsNaN(r.rs) && r.rs != 0)
	}
	if !rust {
		fmt.Printf("  %-44s %14s %14s %9s\n", "", "durablewasm", "go-workflows", "ratio")
		for _, r := range rows {
			fmt.Printf("  %-44s %14s %14s %9s\n", r.metric, num(r.dw, r.prec), num(r.gw, r.prec), fmtRatio(r.ratio()))
		}
		return
	}
	fmt.Printf("  %-44s %14s %14s %14s %9s %9s\n", "", "durablewasm", "dw-rust", "go-workflows", "ratio", "Rust÷Go")
	for _, r := range rows {
		fmt.Printf("  %-44s %14s %14s %14s %9s %9s\n", r.metric, num(r.dw, r.prec), num(r.rs, r.prec), num(r.gw, r.prec), fmtRatio(r.ratio()), fmtRatio(r.rsRatio()))
	}
}

func (b *bench) verdict(name string, ok bool, detail string) {
	v := "HOLDS"
	if !ok {
		v = "MISSED"
	}
	b.targets = append(b.targets, fmt.Sprintf("  %-58s %-6s  %s", name, v, detail))
}

// pick returns fn applied to each engine's result, NaN for a missing one.
func pick[T any](res map[string]any, fn func(T) float64) (dw, gw float64) {
	dw, gw = nan, nan
	if r, ok := res["durablewasm"].(T); ok {
		dw = fn(r)
	}
	if r, ok := res["go-workflows"].(T); ok {
		gw = fn(r)
	}
	return
}

// pickRS returns fn applied to the Rust module's result, NaN when missing.
func pickRS[T any](res map[string]any, fn func(T) float64) float64 {
	if r, ok := res[rustEngine].(T); ok {
		return fn(r)
	}
	return nan
}

func perK(d time.Duration, n int) float64 { return d.Seconds() * 1000 / float64(n) }

func (b *bench) run(ctx context.Context, w string) error {
	c := b.cfg
	switch w {
	case "hello5":
		fmt.Printf("\n== hello5: %d × Hello5 (five sequential Bench_Echo activities) started from %d goroutines; %d runs per engine, the median run shown; workers in child processes\n", c.n, c.starters, c.hello5Reps)
		rows, failed, err := b.hello5(ctx, setupOptions{proc: true, rust: true}, c.hello5Reps)
		if err != nil {
			return err
		}
		b.addGuestRows("hello5", rows, "orchestrations/s", "  of which the worker process", rowRSSPeak)
		fmt.Printf("  -- the same on redis-server without persistence (reference; one run per engine, Go module only)\n")
		var ref []row
		var refFailed bool
		err = b.onNoPersist(func() error {
			ref, refFailed, err = b.hello5(ctx, setupOptions{proc: true}, 1)
			return err
		})
		if err != nil {
			return err
		}
		if r := rows[0].ratio(); !math.IsNaN(r) {
			b.verdict("hello5 throughput ≥ 10× go-workflows", r >= 10 && !failed, fmt.Sprintf("%.2f× (%.0f vs %.0f/s; no persistence: %.2f×, %.0f vs %.0f/s)%s",
				r, rows[0].dw, rows[0].gw, ref[0].ratio(), ref[0].dw, ref[0].gw, failedNote(failed || refFailed)))
		}
	case "hello5-local-off":
		fmt.Printf("\n== hello5-local-off: hello5 with durablewasm's local activities off (LocalActivityMax < 0: every Bench_Echo goes through the activity stream); go-workflows unchanged\n")
		rows, failed, err := b.hello5(ctx, setupOptions{proc: true, localOff: true}, c.hello5Reps)
		if err != nil {
			return err
		}
		if r := rows[0].ratio(); !math.IsNaN(r) {
			b.verdict("hello5, local activities off, ≥ 5× go-workflows", r >= 5 && !failed, fmt.Sprintf("%.2f× (%.0f vs %.0f/s)%s", r, rows[0].dw, rows[0].gw, failedNote(failed)))
		}
	case "io":
		url, hostport, err := b.ioServer()
		if err != nil {
			return err
		}
		spec := batchSpec{fn: "Hello5IO", input: func(int) any { return url }, warm: 4}
		fmt.Printf("\n== io: %d × Hello5IO (five sequential Bench_HTTPGet, each a GET of a local server that answers after %s; go-workflows' activity makes the same GET natively) from %d goroutines; both engines at default settings (durablewasm worker.Options defaults: ActivityConcurrency 1,000 in flight, asynchronous activities; %s)\n",
			c.ioN, c.ioDelay, c.starters, gwTuning(false))
		o := setupOptions{proc: true, peer: peerDefault, httpAllow: []string{hostport}, rust: true}
		res, err := b.each(ctx, o, "", func(e engine) (any, error) { return runBatch(ctx, b, e, spec, "io", c.ioN, c.starters) })
		if err != nil {
			return err
		}
		rows := batchRows(res, "orchestrations/s", "orchestrations")
		printTable(rows)
		b.addGuestRows("io", rows, "orchestrations/s", "  of which the worker process", rowRSSPeak)
		failed := anyFailed(res)
		if r := rows[0].ratio(); !math.IsNaN(r) {
			b.verdict("io ≥ 2× go-workflows (default settings)", r >= 2 && !failed, fmt.Sprintf("%.2f× (%.0f vs %.0f/s)%s", r, rows[0].dw, rows[0].gw, failedNote(failed)))
			rss := findRow(rows, rowRSSPeak)
			b.verdict("io worker peak RSS ≤ 2× go-workflows'", rss.dw <= 2*rss.gw, fmt.Sprintf("%.0f vs %.0f MiB (%.2f×)", rss.dw, rss.gw, rss.dw/rss.gw))
		}
		if c.ioConc >= 0 {
			dwTuning := "durablewasm defaults"
			if c.ioConc > 0 {
				dwTuning = fmt.Sprintf("durablewasm ActivityConcurrency %d", c.ioConc)
			}
			fmt.Printf("  -- tuned: %s; go-workflows %s\n", dwTuning, gwTuning(true))
			o.activityConcurrency, o.peer = c.ioConc, peerTuned
			res, err := b.each(ctx, o, "", func(e engine) (any, error) { return runBatch(ctx, b, e, spec, "iot", c.ioN, c.starters) })
			if err != nil {
				return err
			}
			printTable(batchRows(res, "orchestrations/s", "orchestrations"))
		}
	case "cpu":
		native := nativeCompute(c.cpuIters, 15)
		fmt.Printf("\n== cpu: %d × Hello5CPU (five sequential Bench_Compute: benchwork.Compute(%d), %.2f ms natively here; go-workflows runs the same Go code natively) from %d goroutines; workers in child processes\n",
			c.cpuN, c.cpuIters, ms(native), c.starters)
		spec := batchSpec{fn: "Hello5CPU", input: func(int) any { return c.cpuIters }, warm: 4}
		res, err := b.each(ctx, setupOptions{proc: true, rust: true}, "", func(e engine) (any, error) { return runBatch(ctx, b, e, spec, "cpu", c.cpuN, c.starters) })
		if err != nil {
			return err
		}
		rows := batchRows(res, "orchestrations/s", "orchestrations")
		perActF := func(r *batchResult) float64 { return ms(r.workerCPU) / float64(5*r.n) }
		dw, gw := pick(res, perActF)
		perAct := row{metric: "worker process CPU ms / activity", dw: dw, rs: pickRS(res, perActF), gw: gw, prec: 2}
		rows = append(rows, perAct)
		printTable(rows)
		fmt.Printf("  benchwork.Compute(%d) natively in the harness process: %.2f ms (median of 15)\n", c.cpuIters, ms(native))
		b.addGuestRows("cpu", rows, "orchestrations/s", "worker process CPU ms / activity")
		vsNative := func(v float64) float64 { return v / ms(native) }
		b.addGuestRow("cpu", row{metric: "worker CPU / activity ÷ native Compute", dw: vsNative(perAct.dw), rs: vsNative(perAct.rs), gw: vsNative(perAct.gw), prec: 2, noRatio: true})
		failed := anyFailed(res)
		if r := rows[0].ratio(); !math.IsNaN(r) {
			b.verdict("cpu ≥ 0.9× go-workflows", r >= 0.9 && !failed, fmt.Sprintf("%.2f× (%.1f vs %.1f/s)%s", r, rows[0].dw, rows[0].gw, failedNote(failed)))
		}
		if !math.IsNaN(perAct.dw) {
			g := perAct.dw / ms(native)
			b.verdict("cpu: guest compute ≤ 1.25× native", g <= 1.25, fmt.Sprintf("%.2f× (durablewasm worker CPU per activity %.2f ms ÷ native Compute %.2f ms; go-workflows' %.2f ms)", g, perAct.dw, ms(native), perAct.gw))
		}
	case "big":
		payload := bigPayload(c.bigKiB << 10)
		spec := batchSpec{fn: "Hello5", input: func(int) any { return payload }, warm: 4}
		fmt.Printf("\n== big: %d × Hello5 with a %d KiB string input (each Bench_Echo passes it on) from %d goroutines; workers in child processes\n", c.bigN, c.bigKiB, c.starters)
		res, err := b.each(ctx, setupOptions{proc: true}, "", func(e engine) (any, error) { return runBatch(ctx, b, e, spec, "big", c.bigN, c.starters) })
		if err != nil {
			return err
		}
		rows := batchRows(res, "orchestrations/s", "orchestrations")
		// Redis memory: only here, where the payloads dominate it (with small
		// payloads the difference is within the server's own fluctuations).
		dw, gw := pick(res, func(r *batchResult) float64 { return float64(r.redisMem) / 1024 / float64(r.n) })
		rows = append(rows, row{metric: rowRedisMem, dw: dw, gw: gw, prec: 1})
		dw, gw = pick(res, func(r *batchResult) float64 { return float64(r.redisData) / 1024 / float64(r.n) })
		rows = append(rows, row{metric: "  of which used_memory_dataset (KiB)", dw: dw, gw: gw, prec: 1})
		printTable(rows)
		failed := anyFailed(res)
		if cpu := findRow(rows, rowTotalCPU); !math.IsNaN(cpu.ratio()) {
			b.verdict("big: CPU per orchestration ≥ 2× better", cpu.ratio() >= 2 && !failed, fmt.Sprintf("%.2f× (total %.3f vs %.3f CPU s / 1,000)%s", cpu.ratio(), cpu.dw, cpu.gw, failedNote(failed)))
		}
		if mem := findRow(rows, rowRedisMem); !math.IsNaN(mem.ratio()) {
			b.verdict("big: Redis memory per orchestration ≤ go-workflows'", mem.dw <= mem.gw, fmt.Sprintf("%.0f vs %.0f KiB (%.2f×)", mem.dw, mem.gw, mem.ratio()))
		}
	case "single":
		fmt.Printf("\n== single: %d × Hello5, one at a time, polled back to back; then %d polled every 1 ms; then %d awaited with each engine's wait API\n", c.singleN, c.singleN, c.singleN)
		res, err := b.each(ctx, setupOptions{}, "", func(e engine) (any, error) { return runSingle(ctx, e, c.singleN) })
		if err != nil {
			return err
		}
		lat := func(f func(*singleResult) []time.Duration, p float64) func(*singleResult) float64 {
			return func(r *singleResult) float64 { return ms(percentile(f(r), p)) }
		}
		obs := func(r *singleResult) []time.Duration { return r.observed }
		obs1 := func(r *singleResult) []time.Duration { return r.observed1ms }
		wtd := func(r *singleResult) []time.Duration { return r.waited }
		rec := func(r *singleResult) []time.Duration { return r.recorded }
		var rows []row
		for _, x := range []struct {
			name string
			f    func(*singleResult) float64
		}{
			{"p50 latency, start → seen completed (ms)", lat(obs, 50)},
			{"p99 latency, start → seen completed (ms)", lat(obs, 99)},
			{"p50 seen completed, polled every 1 ms (ms)", lat(obs1, 50)},
			{"p99 seen completed, polled every 1 ms (ms)", lat(obs1, 99)},
			{"p50 start → wait API returned (ms)", lat(wtd, 50)},
			{"p99 start → wait API returned (ms)", lat(wtd, 99)},
			{"p50 latency, start → recorded completion (ms)", lat(rec, 50)},
			{"p99 latency, start → recorded completion (ms)", lat(rec, 99)},
		} {
			dw, gw := pick(res, x.f)
			rows = append(rows, row{metric: x.name, dw: dw, gw: gw, prec: 2})
		}
		printTable(rows)
		if r := rows[0].ratio(); !math.IsNaN(r) {
			b.verdict("single latency ≤ 1/4 of go-workflows (p50, seen)", r >= 4, fmt.Sprintf("%.2f× lower (p99: %.2f×)", r, rows[1].ratio()))
		}
	case "fanout":
		fmt.Printf("\n== fanout: FanOut(%d): %d parallel Bench_Echo then WhenAll; %d run(s) one after the other, median\n", c.fanoutN, c.fanoutN, c.fanoutReps)
		res, err := b.each(ctx, setupOptions{}, "", func(e engine) (any, error) { return runFanOut(ctx, b, e, c.fanoutN, c.fanoutReps) })
		if err != nil {
			return err
		}
		wall := func(r *fanoutResult) float64 { return ms(median(r.walls)) }
		dw, gw := pick(res, wall)
		rows := []row{{metric: "wall time, start → completion (ms)", dw: dw, gw: gw, prec: 1}}
		dw, gw = pick(res, func(r *fanoutResult) float64 { return float64(c.fanoutN) / median(r.walls).Seconds() })
		rows = append(rows, row{metric: "activities/s", dw: dw, gw: gw, higherBetter: true, prec: 0})
		acts := c.fanoutN * c.fanoutReps
		dw, gw = pick(res, func(r *fanoutResult) float64 { return perK(r.procCPU, acts) })
		rows = append(rows, row{metric: "process CPU s / 1,000 activities", dw: dw, gw: gw, prec: 3})
		dw, gw = pick(res, func(r *fanoutResult) float64 { return perK(r.redisCPU, acts) })
		rows = append(rows, row{metric: "redis-server CPU s / 1,000 activities", dw: dw, gw: gw, prec: 3})
		printTable(rows)
		if r := rows[1].ratio(); !math.IsNaN(r) {
			b.verdict("fanout ≥ 5× go-workflows (activities/s)", r >= 5, fmt.Sprintf("%.2f×", r))
		}
	case "events":
		fmt.Printf("\n== events: %d × WaitOne parked, then all %d events raised from %d goroutines\n", c.eventsN, c.eventsN, c.starters)
		res, err := b.each(ctx, setupOptions{}, "", func(e engine) (any, error) {
			return runEvents(ctx, b, e, "ev", c.eventsN, c.starters)
		})
		if err != nil {
			return err
		}
		rows := batchRows(res, "events/s (first raise → last completion)", "events")
		rows[1].metric, rows[2].metric = "p50 latency, raise → completion (ms)", "p99 latency, raise → completion (ms)"
		printTable(rows)
	case "longhistory":
		fmt.Printf("\n== longhistory: StepsWait(n) alone on the worker, n sequential steps to about %d history events, then parked on an event\n", c.historyN)
		res, err := b.each(ctx, setupOptions{}, "", func(e engine) (any, error) { return runLongHistory(ctx, e, c.historyN) })
		if err != nil {
			return err
		}
		var rows []row
		add := func(name string, prec int, f func(*longResult) float64) {
			dw, gw := pick(res, f)
			rows = append(rows, row{metric: name, dw: dw, gw: gw, prec: prec})
		}
		info := func(name string, prec int, f func(*longResult) float64) {
			add(name, prec, f)
			rows[len(rows)-1].noRatio = true
		}
		info("steps run (n)", 0, func(r *longResult) float64 { return float64(r.stepsRun) })
		info("history events when parked", 0, func(r *longResult) float64 { return float64(r.events) })
		info("time to run the n steps (s)", 2, func(r *longResult) float64 { return r.buildTime.Seconds() })
		add("step time near event 10 (ms, median of 25)", 3, func(r *longResult) float64 { return ms(r.stepAt10) })
		add(fmt.Sprintf("step time before event %d (ms, median of 25)", c.historyN), 3, func(r *longResult) float64 { return ms(r.stepAt10k) })
		info(fmt.Sprintf("step time at %d ÷ at 10", c.historyN), 2, func(r *longResult) float64 { return float64(r.stepAt10k) / float64(r.stepAt10) })
		add("resume, warm, short history (ms)", 2, func(r *longResult) float64 { return ms(r.warmResume) })
		add(fmt.Sprintf("resume, fresh worker, %d events (ms)", c.historyN), 2, func(r *longResult) float64 { return ms(r.coldResume) })
		add("cold replay = fresh − warm (ms)", 2, func(r *longResult) float64 { return ms(r.coldResume - r.warmResume) })
		printTable(rows)
		if r, ok := res["durablewasm"].(*longResult); ok {
			growth := float64(r.stepAt10k) / float64(r.stepAt10)
			b.verdict(fmt.Sprintf("per-step cost at %d events ≤ 1.5× at 10", c.historyN), growth <= 1.5, fmt.Sprintf("%.2f× (%.3f vs %.3f ms)", growth, ms(r.stepAt10k), ms(r.stepAt10)))
			cold := r.coldResume - r.warmResume
			b.verdict(fmt.Sprintf("cold replay of %d events < 100 ms", r.events), cold < 100*time.Millisecond, fmt.Sprintf("%.1f ms (fresh-worker resume %.1f ms − warm %.1f ms)", ms(cold), ms(r.coldResume), ms(r.warmResume)))
		}
	case "hold":
		fmt.Printf("\n== hold (durablewasm only): %d × WaitOne parked on one worker with MaxWarm %d, then all events raised\n", c.holdN, c.holdMaxWarm)
		if !c.engines["durablewasm"] {
			fmt.Println("  skipped: durablewasm not selected")
			return nil
		}
		res, err := b.each(ctx, setupOptions{maxWarm: c.holdMaxWarm}, "durablewasm", func(e engine) (any, error) {
			return runHold(ctx, b, e, c.holdN, c.starters, c.holdMaxWarm)
		})
		if err != nil {
			return err
		}
		r := res["durablewasm"].(*holdResult)
		mib := func(v int64) string { return fmt.Sprintf("%.0f MiB", float64(v)/(1<<20)) }
		fmt.Printf("  start calls took %.1f s (%.0f/s); all seen parked after %.1f s (bounded by the harness' status polling)\n", r.startTime.Seconds(), float64(r.n)/r.startTime.Seconds(), r.parkTime.Seconds())
		fmt.Printf("  parked: process RSS %s, Go heap in use %s, Redis used_memory %s\n", mib(r.rssParked), mib(int64(r.heapParked)), mib(r.redisMem))
		fmt.Printf("  events: %d/%d completed, %.0f events/s, p50 %.0f ms, p99 %.0f ms raise → completion\n", r.completed, r.n, r.events.rate, ms(percentile(r.events.lat, 50)), ms(percentile(r.events.lat, 99)))
		fmt.Printf("  peak process RSS during the workload %s (budget %s); CPU s / 1,000 events: process %.3f, redis-server %.3f\n",
			mib(r.rssPeak), mib(c.holdBudget), perK(r.events.procCPU, r.n), perK(r.events.redisCPU, r.n))
		b.verdict(fmt.Sprintf("hold: %d waiting, RSS ≤ %s, all complete", r.n, mib(c.holdBudget)), r.completed == r.n && r.rssPeak <= c.holdBudget,
			fmt.Sprintf("%d/%d completed, peak RSS %s", r.completed, r.n, mib(r.rssPeak)))
	case "sweep":
		fmt.Printf("\n== sweep: hello5 throughput vs starting goroutines, %d orchestrations per point\n", c.sweepN)
		fmt.Printf("  %-10s %14s %14s %9s\n", "starters", "durablewasm", "go-workflows", "ratio")
		points := map[string][]float64{}
		for i, s := range c.sweep {
			res, err := b.each(ctx, setupOptions{}, "", func(e engine) (any, error) {
				return runHello5(ctx, b, e, fmt.Sprintf("sw%d", i), c.sweepN, s)
			})
			if err != nil {
				return err
			}
			dw, gw := pick(res, func(r *batchResult) float64 { return r.rate })
			points["durablewasm"] = append(points["durablewasm"], dw)
			points["go-workflows"] = append(points["go-workflows"], gw)
			rw := row{dw: dw, gw: gw, higherBetter: true}
			ratio := "-"
			if v := rw.ratio(); !math.IsNaN(v) {
				ratio = fmt.Sprintf("%.2f×", v)
			}
			fmt.Printf("  %-10d %14s %14s %9s\n", s, num(dw, 0), num(gw, 0), ratio)
		}
		if c.svg != "" {
			svg := chartSVG(c.sweep, points, fmt.Sprintf("hello5 throughput vs starters (%d orchestrations per point, one worker each; %s)", c.sweepN, time.Now().UTC().Format("2006-01-02")))
			if err := os.WriteFile(c.svg, []byte(svg), 0o644); err != nil {
				return err
			}
			fmt.Printf("  chart written to %s\n", c.svg)
		}
	}
	return nil
}

// Metric names findRow looks up.
const (
	rowRSSPeak  = "worker peak RSS (MiB)"
	rowTotalCPU = "total CPU s / 1,000 (harness+worker+redis)"
	rowRedisMem = "Redis used_memory / orchestration (KiB)"
)

func findRow(rows []row, metric string) row {
	for _, r := range rows {
		if r.metric == metric {
			return r
		}
	}
	return row{metric: metric, dw: nan, rs: nan, gw: nan}
}

// anyFailed reports failed instances of durablewasm (Go module) or
// go-workflows, the engines the targets compare.
func anyFailed(res map[string]any) bool {
	for name, r := range res {
		if name == rustEngine {
			continue
		}
		if b, ok := r.(*batchResult); ok && b.failed > 0 {
			return true
		}
	}
	return false
}

func failedNote(failed bool) string {
	if failed {
		return "; some instances FAILED"
	}
	return ""
}

// hello5 runs runBatchReps of Hello5 on both engines and prints its table
// and every run's rate.
func (b *bench) hello5(ctx context.Context, o setupOptions, reps int) ([]row, bool, error) {
	c := b.cfg
	res, err := b.each(ctx, o, "", func(e engine) (any, error) {
		return runBatchReps(ctx, b, e, hello5Spec, "h5", c.n, c.starters, reps)
	})
	if err != nil {
		return nil, false, err
	}
	rows := batchRows(res, "orchestrations/s", "orchestrations")
	printTable(rows)
	for _, name := range []string{"durablewasm", rustEngine, "go-workflows"} {
		if r, ok := res[name].(*batchResult); ok && len(r.rates) > 1 {
			fmt.Printf("  %s runs (orchestrations/s): %s\n", name, formatRates(r.rates))
		}
	}
	return rows, anyFailed(res), nil
}

// onNoPersist runs fn with the redis-server without persistence as the
// current one.
func (b *bench) onNoPersist(fn func() error) error {
	saved := b.redis
	b.redis = b.noPersist
	defer func() { b.redis = saved }()
	return fn()
}

// batchRows: rate, p50/p99 latency, CPU per 1,000 (process, redis-server);
// with worker child processes, the worker's CPU and RSS too. Each row has
// the Rust module's figure when it ran.
func batchRows(res map[string]any, rateName, unit string) []row {
	var rows []row
	proc := false
	for _, r := range res {
		if b, ok := r.(*batchResult); ok && b.rssPeak > 0 {
			proc = true
		}
	}
	add := func(metric string, prec int, higherBetter bool, f func(*batchResult) float64) {
		dw, gw := pick(res, f)
		rows = append(rows, row{metric: metric, dw: dw, rs: pickRS(res, f), gw: gw, higherBetter: higherBetter, prec: prec})
	}
	add(rateName, 0, true, func(r *batchResult) float64 { return r.rate })
	if rows[0].dw < 100 || rows[0].rs < 100 || rows[0].gw < 100 {
		rows[0].prec = 1
	}
	add("p50 latency, start → completion (ms)", 1, false, func(r *batchResult) float64 { return ms(percentile(r.lat, 50)) })
	add("p99 latency, start → completion (ms)", 1, false, func(r *batchResult) float64 { return ms(percentile(r.lat, 99)) })
	if proc {
		add("harness+worker CPU s / 1,000 "+unit, 3, false, func(r *batchResult) float64 { return perK(r.procCPU+r.workerCPU, r.n) })
		add("  of which the worker process", 3, false, func(r *batchResult) float64 { return perK(r.workerCPU, r.n) })
	} else {
		add("process CPU s / 1,000 "+unit, 3, false, func(r *batchResult) float64 { return perK(r.procCPU, r.n) })
	}
	add("redis-server CPU s / 1,000 "+unit, 3, false, func(r *batchResult) float64 { return perK(r.redisCPU, r.n) })
	if proc {
		add(rowTotalCPU, 3, false, func(r *batchResult) float64 { return perK(r.procCPU+r.workerCPU+r.redisCPU, r.n) })
		mib := func(v int64) float64 { return float64(v) / (1 << 20) }
		add(rowRSSPeak, 0, false, func(r *batchResult) float64 { return mib(r.rssPeak) })
		add("worker RSS at the end (MiB)", 0, false, func(r *batchResult) float64 { return mib(r.rssEnd) })
	}
	add("failed", 0, false, func(r *batchResult) float64 { return float64(r.failed) })
	return rows
}
