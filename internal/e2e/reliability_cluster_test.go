package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/internal/redistest"
)

// TestClusterKilledWorkers runs the reliability workload on a 3-master
// Redis Cluster with two worker processes, SIGKILLs one mid-run and starts
// a replacement: every instance completes exactly, management operations
// (terminate, query, purge) work, and the invariant checker (which reads
// every partition's keys through the cluster client) finds nothing wrong.
// Any CROSSSLOT error would fail a script and the test.
func TestClusterKilledWorkers(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	e := samplesEnv(t, c.URL())
	ctx := context.Background()
	po := procOpts{lease: 2 * time.Second, visibility: 3 * time.Second, ledgerDir: t.TempDir()}
	a := e.startWorkerProc(po)
	b := e.startWorkerProc(po)
	want := e.workload("c", 24, true)
	e.start("Counter", "counter", "0")
	waitProgress(t, e, want)
	a.kill()
	c2 := e.startWorkerProc(po)
	lost := e.expectOutputs(want, 90*time.Second)
	if err := e.client.Terminate(ctx, "counter", "test", true); err != nil {
		t.Fatalf("terminate: %v", err)
	}
	e.waitStatus("counter", abi.StatusTerminated, 30*time.Second)
	page, err := e.client.QueryInstances(ctx, host.InstanceQuery{Statuses: []abi.RuntimeStatus{abi.StatusTerminated}})
	if err != nil || len(page.Instances) != 1 {
		t.Errorf("query terminated: %v %v", page, err)
	}
	r := e.checkInvariants()
	checkNoCrossSlot(t, nil, a, b, c2)
	if err := e.client.PurgeInstance(ctx, "counter", false); err != nil {
		t.Errorf("purge: %v", err)
	}
	ls := readLedgers(t, globLedgers(t, po.ledgerDir))
	t.Logf("figures: cluster (3 masters): 1 SIGKILL, %d instances, %d lost, %d activity executions, %d duplicates", r.Total(), lost, ls.executions, ls.duplicates)
}
