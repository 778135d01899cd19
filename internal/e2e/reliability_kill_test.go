package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/host"

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
// interleaved or doubled steps). On one redis-server; see
// TestSplitBrainStaleWorkerIsFencedOnCluster for the cluster.
func TestSplitBrainStaleWorkerIsFenced(t *testing.T) {
	t.Run("redis-server", func(t *testing.T) { testSplitBrain(t, "redis://"+redistest.StartServer(t), true) })
}

// TestSplitBrainStaleWorkerIsFencedOnCluster is the split-brain test on a
// 3-master Redis Cluster. There the resumed worker's pending commit may
// also fail on its stale connections before the script (and its fencing
// check) runs, so a refusal is not required: every stale commit must be
// refused or fail, none may land, nothing may change after the resume,
// plus no CROSSSLOT. (Stale commits once seemed to be answered "ok" here:
// the test's own pause was racy — kill(SIGSTOP) returns before the process
// has stopped, so commits were sent, at a valid epoch, after "resumed" was
// set; the pause now waits for SIGCONT.)
func TestSplitBrainStaleWorkerIsFencedOnCluster(t *testing.T) {
	testSplitBrain(t, redistest.StartCluster(t, 3).URL(), false)
}

// testSplitBrain runs the split-brain scenario on url. Worker A pauses
// (SIGSTOP) before its 8th commit; B takes every partition over once A's
// leases expire and completes every instance; then A is resumed. It
// asserts:
//   - every instance completes with its exact output;
//   - every commit A started after the resume at an epoch acquired before
//     the pause (all of them stale: B owns every partition by then) was
//     refused by the fencing epoch or failed; none was answered success,
//     none landed (its commit id is not the instance's last applied one);
//     with requireRefusal (one server), at least one was refused by the
//     epoch check;
//   - nothing changed after the resume: every instance's status and
//     history are what they were when B had finished (a stale commit that
//     landed would append events or overwrite the state), and no history
//     has an event twice;
//   - the invariants hold (well-formed histories, nothing stuck) and no
//     worker logged CROSSSLOT.
func testSplitBrain(t *testing.T, url string, requireRefusal bool) {
	began := time.Now()
	e := samplesEnv(t, url)
	ctx := context.Background()
	po := procOpts{lease: time.Second, visibility: 2 * time.Second}
	want := e.workload("sb", 8, false)
	o := po
	// The 8th commit is past the first steps (whose commits the store also
	// refuses once the instance is no longer fresh), so only the fencing
	// epoch stops it.
	o.pause = "before-commit:8"
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
				st, err := e.client.GetStatus(ctx, x)
				if err != nil || st.Status.Terminal() {
					continue
				}
				h, _ := e.client.GetHistory(ctx, x)
				var evs []string
				for _, ev := range h {
					evs = append(evs, fmt.Sprintf("%s(%d/%d)", ev.Type, ev.EventID, ev.TaskScheduledID))
				}
				t.Logf("unfinished %s (%s, partition %d): %v", x, st.Status, host.PartitionFor(x, e.store.Partitions()), evs)
			}
		}
	}
	finishedAfter := time.Since(pausedAt)
	t.Logf("worker B finished the work %s after A was paused", finishedAfter.Round(time.Millisecond))
	// Every partition leased to B (so every epoch A acquired before the
	// pause is stale) before A resumes.
	tag := fmt.Sprintf("-%d-", b.pid())
	deadline := time.Now().Add(20 * time.Second)
	for p := 0; p < e.store.Partitions(); {
		key := fmt.Sprintf("dw:{%s:%d}:lease", e.hub, p)
		if owner := e.store.Client().HGet(ctx, key, "owner").Val(); strings.Contains(owner, tag) {
			p++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition %d not leased to worker B within 20s", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := e.snapshotInstances()
	if len(before) < len(want) {
		t.Fatalf("snapshot has %d instances, want at least %d", len(before), len(want))
	}
	a.signal(syscall.SIGCONT)
	if !a.waitLog("RESUMED", 10*time.Second) {
		t.Fatal("worker A did not resume")
	}
	resumedAt := time.Now()
	deadline = time.Now().Add(15 * time.Second)
	for a.logCount(staleRefused)+a.logCount(staleFailed)+a.logCount(staleApplied) == 0 ||
		requireRefusal && a.logCount("REFUSED stale commit") == 0 {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	outcomeAfter := time.Since(resumedAt)
	refused := a.logCount("REFUSED stale commit")
	if requireRefusal && refused == 0 {
		t.Error("the resumed stale worker's commit was not refused")
	}
	time.Sleep(2 * time.Second) // let A notice it lost its leases and hand over
	refused = a.logCount("REFUSED stale commit")
	staleRef, staleFail := a.logCount(staleRefused), a.logCount(staleFailed)
	// A success reply to a stale commit must not mean it landed: its
	// commit id must not be the instance's last applied one (lc). On one
	// server no stale commit may even be answered success.
	after := e.snapshotInstances()
	phantom, landed := 0, 0
	for _, l := range a.logLines(staleApplied) {
		var id, commit string
		var p int
		var epoch int64
		rest := strings.TrimPrefix(l[strings.Index(l, staleApplied):], staleApplied+": ")
		if _, err := fmt.Sscanf(rest, "%q partition %d epoch %d:", &id, &p, &epoch); err != nil {
			t.Fatalf("cannot parse %q: %v", l, err)
		}
		commit = rest[strings.LastIndex(rest, "; commit ")+len("; commit "):]
		lc := e.store.Client().HGet(ctx, fmt.Sprintf("dw:{%s:%d}:i:%s", e.hub, p, id), "lc").Val()
		if lc == commit {
			landed++
			t.Errorf("a stale commit landed after the takeover: %s (partition %d, epoch %d, commit %s is the instance's last applied commit)", id, p, epoch, commit)
			continue
		}
		phantom++
		t.Errorf("the store answered success to a stale commit that did not land: %s", l)
	}
	if staleRef+staleFail+phantom+landed == 0 {
		t.Error("no commit of the resumed stale worker was seen after the resume (no outcome logged)")
	}
	changed := 0
	for id, s := range before {
		if after[id] != s {
			changed++
			t.Errorf("%s changed after the stale worker resumed:\nbefore %s\nafter  %s", id, s, after[id])
		}
	}
	for id := range after {
		if _, ok := before[id]; !ok {
			changed++
			t.Errorf("%s appeared after the stale worker resumed: %s", id, after[id])
		}
	}
	dupEvents := 0
	for id := range after {
		h, err := e.client.GetHistory(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, ev := range h {
			j, _ := json.Marshal(ev)
			if seen[string(j)] {
				dupEvents++
				t.Errorf("%s: event twice in the history: %s", id, j)
			}
			seen[string(j)] = true
		}
	}
	r := e.checkInvariants()
	checkNoCrossSlot(t, nil, a, b)
	firstFail := ""
	if l := a.logLines(staleFailed); len(l) > 0 {
		firstFail = ": " + strings.TrimSpace(l[0])
	}
	t.Logf("figures: split brain: %d stale commits refused (REFUSED lines); of the stale worker's commits started after the resume: %d refused by the epoch check, %d failed before it%s, %d answered success without landing, 0 landed; %d instances, %d lost, %d changed after the resume, %d duplicate events; B finished %s after the pause; outcome %s after the resume; test %s",
		refused, staleRef, staleFail, firstFail, phantom, r.Total(), lost, changed, dupEvents,
		finishedAfter.Round(time.Millisecond), outcomeAfter.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// snapshotInstances returns every instance of the hub (sub-orchestrations
// too) with its status and history, as JSON.
func (e *env) snapshotInstances() map[string]string {
	e.t.Helper()
	ctx := context.Background()
	page, err := e.client.QueryInstances(ctx, host.InstanceQuery{PageSize: 1000})
	if err != nil {
		e.t.Fatalf("query instances: %v", err)
	}
	out := map[string]string{}
	for _, st := range page.Instances {
		full, err := e.client.GetStatus(ctx, st.InstanceID)
		if err != nil {
			e.t.Fatalf("status of %s: %v", st.InstanceID, err)
		}
		h, err := e.client.GetHistory(ctx, st.InstanceID)
		if err != nil {
			e.t.Fatalf("history of %s: %v", st.InstanceID, err)
		}
		j, _ := json.Marshal(struct {
			Status  any
			History any
		}{full, h})
		out[st.InstanceID] = string(j)
	}
	return out
}
