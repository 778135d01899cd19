package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/internal/redistest"
)

// TestCrashPoints crashes a worker process at each named point of the worker
// (see crashPoints) in the middle of a workload of sequences, fan-out/fan-in,
// sub-orchestrations and timer loops, then starts a fresh worker: every
// instance must complete exactly as expected, histories must be well formed
// (no step applied twice), and nothing may be left stuck or dangling.
// Activities may run again (at least once); the duplicates are counted.
func TestCrashPoints(t *testing.T) {
	total := struct{ crashes, instances, lost, dups, execs int }{}
	// The commit points also run on a 3-master cluster.
	onCluster := map[string]bool{"before-commit": true, "mid-commit": true, "after-commit": true}
	var runs []string
	for _, point := range crashPoints {
		runs = append(runs, point)
		if onCluster[point] {
			runs = append(runs, point+"/cluster")
		}
	}
	for _, run := range runs {
		point, cluster := strings.CutSuffix(run, "/cluster")
		t.Run(run, func(t *testing.T) {
			url := "redis://" + redistest.StartServer(t)
			if cluster {
				url = redistest.StartCluster(t, 3).URL()
			}
			e := samplesEnv(t, url)
			ledgers := t.TempDir()
			po := procOpts{lease: time.Second, visibility: time.Second, ledgerDir: ledgers}
			want := e.workload(point, 8, true)
			if point == "claim-batch" {
				// A claim happens when a new owner takes over pending
				// messages: crash a first worker right after it read a
				// batch, so that there are some.
				o := po
				o.crash = "read-batch:1"
				if !e.startWorkerProc(o).waitExit(30 * time.Second) {
					t.Fatal("the first worker did not crash after reading a batch")
				}
			}
			o := po
			o.crash = point + ":2"
			if point == "claim-batch" {
				o.crash = point + ":1"
			}
			w := e.startWorkerProc(o)
			crashed := w.waitExit(30 * time.Second)
			if !crashed {
				t.Fatalf("worker never reached crash point %s (%d of %d instances finished)", point, e.finished(want), len(want))
			}
			done := e.finished(want)
			t.Logf("crashed at %s with %d of %d instances finished", point, done, len(want))
			e.startWorkerProc(po)
			lost := e.expectOutputs(want, 60*time.Second)
			r := e.checkInvariants()
			ls := readLedgers(t, globLedgers(t, ledgers))
			t.Logf("figures: point=%s instances=%d lost=%d activity executions=%d tasks=%d duplicates=%d", point, r.Total(), lost, ls.executions, ls.tasks, ls.duplicates)
			total.crashes++
			total.instances += r.Total()
			total.lost += lost
			total.dups += ls.duplicates
			total.execs += ls.executions
		})
	}
	t.Logf("figures: crash points: %d crashes, %d instances, %d lost, %d activity executions, %d duplicate executions",
		total.crashes, total.instances, total.lost, total.execs, total.dups)
}

// waitProgress waits until some but not all instances of want have finished
// and some activity work was done.
func waitProgress(t *testing.T, e *env, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := e.finished(want)
		if done > 0 && done < len(want) {
			return
		}
		if done == len(want) {
			t.Logf("every instance finished before the fault")
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
