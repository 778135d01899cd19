package e2e

import (
	"context"
	"flag"
	"fmt"
	"github.com/durablewasm/durablewasm/host"
	"math/rand"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/internal/redistest"
)

// soakFlag sets the duration of TestSoakKilledWorkers: the short CI version
// runs 15 s; the long one is `go test ./internal/e2e -run Soak -soak=10m
// -timeout 30m` (or DW_SOAK=10m).
var soakFlag = flag.Duration("soak", 0, "duration of TestSoakKilledWorkers (default 15s, or $DW_SOAK)")

func soakDuration() time.Duration {
	if *soakFlag > 0 {
		return *soakFlag
	}
	if d, err := time.ParseDuration(os.Getenv("DW_SOAK")); err == nil && d > 0 {
		return d
	}
	return 15 * time.Second
}

// TestSoakKilledWorkers runs fan-out/fan-in (and sequence, sub-orchestration,
// timer) orchestrations on 3 worker processes while a random worker is
// SIGKILLed every few seconds and replaced. Every instance must complete
// with its exact output; activity re-executions are counted and must not
// exceed what the killed workers had in flight; the takeover time (kill to
// every partition owned again) is measured.
func TestSoakKilledWorkers(t *testing.T) {
	dur := soakDuration()
	url := "redis://" + redistest.StartServer(t)
	e := samplesEnv(t, url)
	ledgers := t.TempDir()
	const lease = 2 * time.Second
	po := procOpts{lease: lease, visibility: 5 * time.Second, ledgerDir: ledgers}
	procs := []*workerProc{e.startWorkerProc(po), e.startWorkerProc(po), e.startWorkerProc(po)}
	want := map[string]string{}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	ctx := context.Background()
	start := time.Now()
	wave, kills := 0, 0
	var killed []*workerProc
	var takeovers []time.Duration
	nextKill := start.Add(3 * time.Second)
	for time.Since(start) < dur {
		for id, w := range e.workload(fmt.Sprint("s", wave), 8, true) {
			want[id] = w
		}
		wave++
		if time.Now().After(nextKill) {
			i := rng.Intn(len(procs))
			victim := procs[i]
			victim.kill()
			killedAt := time.Now()
			kills++
			killed = append(killed, victim)
			// Takeover: every partition leased again, none to the victim.
			tag := fmt.Sprintf("-%d-", victim.pid())
			for {
				ok := true
				for p := 0; p < e.store.Partitions(); p++ {
					owner := e.store.Client().HGet(ctx, fmt.Sprintf("dw:{%s:%d}:lease", e.hub, p), "owner").Val()
					exp, _ := e.store.Client().HGet(ctx, fmt.Sprintf("dw:{%s:%d}:lease", e.hub, p), "exp").Int64()
					if owner == "" || strings.Contains(owner, tag) || exp < time.Now().UnixMilli() {
						ok = false
						break
					}
				}
				if ok {
					takeovers = append(takeovers, time.Since(killedAt))
					break
				}
				if time.Since(killedAt) > 30*time.Second {
					t.Fatalf("partitions of killed worker %d not taken over within 30s", victim.pid())
				}
				time.Sleep(20 * time.Millisecond)
			}
			procs[i] = e.startWorkerProc(po)
			nextKill = time.Now().Add(time.Duration(2000+rng.Intn(2000)) * time.Millisecond)
		}
		time.Sleep(400 * time.Millisecond)
	}
	lost := e.expectOutputs(want, 2*time.Minute)
	r := e.checkInvariants()
	ls := readLedgers(t, globLedgers(t, ledgers))
	bound := 0
	for _, k := range killed {
		bound += ls.inFlight[k.pid()]
	}
	if ls.duplicates > bound {
		t.Errorf("%d duplicate activity executions, more than the %d items the killed workers had in flight", ls.duplicates, bound)
	}
	sort.Slice(takeovers, func(i, j int) bool { return takeovers[i] < takeovers[j] })
	var tmax, tmed time.Duration
	if len(takeovers) > 0 {
		tmax, tmed = takeovers[len(takeovers)-1], takeovers[len(takeovers)/2]
	}
	t.Logf("figures: soak %s: %d SIGKILLs of 3 workers, %d started instances (%d with sub-orchestrations), %d lost, %d activity executions of %d tasks, %d duplicates (bound: %d in flight at the kills), takeover median %s max %s (lease TTL %s)",
		dur, kills, len(want), r.Total(), lost, ls.executions, ls.tasks, ls.duplicates, bound, tmed.Round(time.Millisecond), tmax.Round(time.Millisecond), lease)
}

// TestSplitBrainStaleWorkerIsFenced pauses a worker (SIGSTOP) right before it
// commits a batch, lets its leases expire and a second worker take the
// partitions over and run the work, then resumes the first: its commit must
// be refused by the fencing epoch, and every history stays well formed (no
// interleaved or doubled steps).
func TestSplitBrainStaleWorkerIsFenced(t *testing.T) {
	// Only on one redis-server: on a cluster the resumed worker's pending
	// commit often fails on its stale connections (MOVED/timeouts) before
	// it reaches the fencing check, so "refused" cannot be asserted there.
	t.Run("redis-server", func(t *testing.T) { testSplitBrain(t, "redis://"+redistest.StartServer(t)) })
}

func testSplitBrain(t *testing.T, url string) {
	e := samplesEnv(t, url)
	po := procOpts{lease: time.Second, visibility: 2 * time.Second}
	want := e.workload("sb", 8, false)
	o := po
	o.pause = "before-commit:3"
	a := e.startWorkerProc(o)
	if !a.waitLog("PAUSED", 30*time.Second) {
		t.Fatal("worker A never paused")
	}
	pausedAt := time.Now()
	b := e.startWorkerProc(po)
	// Let B take over (after A's leases expire) and finish the work.
	lost := e.expectOutputs(want, 60*time.Second)
	if lost > 0 {
		for id := range want {
			for _, x := range []string{id, id + ":0", id + ":hello"} {
				st, err := e.client.GetStatus(context.Background(), x)
				if err != nil || st.Status.Terminal() {
					continue
				}
				h, _ := e.client.GetHistory(context.Background(), x)
				var evs []string
				for _, ev := range h {
					evs = append(evs, fmt.Sprintf("%s(%d/%d)", ev.Type, ev.EventID, ev.TaskScheduledID))
				}
				t.Logf("unfinished %s (%s, partition %d): %v", x, st.Status, host.PartitionFor(x, e.store.Partitions()), evs)
			}
		}
	}
	t.Logf("worker B finished the work %s after A was paused", time.Since(pausedAt).Round(time.Millisecond))
	a.signal(syscall.SIGCONT)
	if !a.waitLog("RESUMED", 10*time.Second) {
		t.Fatal("worker A did not resume")
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.logCount("REFUSED stale commit") == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	refused := a.logCount("REFUSED stale commit")
	if refused == 0 {
		t.Error("the resumed stale worker's commit was not refused")
	}
	time.Sleep(2 * time.Second) // let A notice it lost its leases and hand over
	_ = b
	r := e.checkInvariants()
	t.Logf("figures: split brain: %d stale commits refused, %d instances, %d lost", refused, r.Total(), lost)
}
