package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/internal/redistest"
	"github.com/durablewasm/durablewasm/redisstore"
)

// TestClusterFailoverMidRun runs orchestrations on a 3-master Redis Cluster
// with one replica per master and fails a master over to its replica
// (CLUSTER FAILOVER, which loses no acknowledged write) while they run: every
// instance completes with the exact output, and the worker needs no restart.
func TestClusterFailoverMidRun(t *testing.T) {
	c := redistest.StartClusterWithReplicas(t, 3)
	e := samplesEnv(t, c.URL())
	e.worker(worker.Options{VisibilityTimeout: 5 * time.Second})
	ctx := context.Background()
	want := e.startSequencesAndFanOuts("fo", 30)
	// Fail over as soon as some work is done but not all.
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := 0
		for id := range want {
			if st, err := e.client.GetStatus(ctx, id); err == nil && st.Status.Terminal() {
				done++
			}
		}
		if done > 0 && done < len(want) || time.Now().After(deadline) {
			t.Logf("failing over with %d of %d instances finished", done, len(want))
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("failover done in %s", failOver(t, c.Replicas[0]).Round(time.Millisecond))
	for id, w := range want {
		st := e.wait(id, 60*time.Second)
		if st.Status != abi.StatusCompleted || st.Output != w {
			t.Errorf("%s: %s output %s failure %v; want %s", id, st.Status, st.Output, st.Failure, w)
		}
	}
}

// TestClusterForcedFailoverAfterMasterCrash SIGKILLs a master of a 3-master
// Redis Cluster with one replica per master while a client keeps starting
// instances and two worker processes run them; the cluster promotes the
// master's replica by itself (after cluster-node-timeout, 2 s). Redis
// replication is asynchronous, so the writes the replica had not received
// are lost: acknowledged starts that the hub no longer knows are counted and
// logged, not failed. Everything else must complete with its exact output,
// without restarting a worker; instances started after the failover must
// complete too (the system makes progress), and the invariants hold.
//
// The workers and the client use the cluster client redisstore.Open builds
// (what `durablewasm serve` runs). go-redis reloads the slot map on MOVED but
// not when the master it routes to refuses connections; with its default
// reload interval (60 s) the dead master's partitions stayed unreachable for
// up to a minute. Open now sets redisstore.ClusterStateReloadInterval (2 s),
// and every instance must be reachable again within 20 s of the promotion.
func TestClusterForcedFailoverAfterMasterCrash(t *testing.T) {
	testForcedFailover(t, 0)
}

// clusterClient returns a cluster client for a redis+cluster:// URL that
// reloads its slot map every reload.
func clusterClient(url string, reload time.Duration) *redis.ClusterClient {
	hosts := strings.TrimSuffix(strings.TrimPrefix(url, "redis+cluster://"), "/")
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(hosts, ","), ClusterStateReloadInterval: reload})
}

// testForcedFailover runs the forced failover; reload 0 uses the stores
// redisstore.Open builds, else cluster clients reloading the slot map every
// reload.
func testForcedFailover(t *testing.T, reload time.Duration) {
	c := redistest.StartClusterWithReplicas(t, 3)
	e := samplesEnv(t, c.URL())
	po := procOpts{lease: 2 * time.Second, visibility: 3 * time.Second, clusterReload: reload}
	if reload > 0 {
		cl := clusterClient(c.URL(), reload)
		st, err := redisstore.New(context.Background(), cl, e.hub, redisstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close(); cl.Close() })
		e.store, e.client = st, client.New(st, e.engine)
	}
	procs := []*workerProc{e.startWorkerProc(po), e.startWorkerProc(po)}
	s := e.startStarter("ff")
	ctx := context.Background()
	victim := c.Nodes[0]
	var replica *redis.Client
	for _, r := range c.Replicas {
		cl := redis.NewClient(&redis.Options{Addr: r.Addr()})
		info, err := cl.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, fmt.Sprintf("master_port:%s\r", strings.TrimPrefix(victim.Addr(), "127.0.0.1:"))) {
			replica = cl
			break
		}
		cl.Close()
	}
	if replica == nil {
		t.Fatalf("no replica follows %s", victim.Addr())
	}
	defer replica.Close()
	time.Sleep(1500 * time.Millisecond)
	killedAt := time.Now()
	victim.Stop(syscall.SIGKILL)
	waitMaster(t, replica, killedAt, 30*time.Second)
	promoted := time.Since(killedAt)
	c.WaitReady(t, 30*time.Second)
	afterFailover := time.Now()
	// Starts must work again: wait (on a loaded machine the clients take a
	// few seconds to see the new slot map) for one acknowledged after the
	// failover, then run on a little.
	s.waitAckedAfter(afterFailover, 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	want, acked := s.finish()
	// Every acknowledged start readable again (found or not found, no
	// connection error).
	var unreachable []string
	for deadline := afterFailover.Add(20 * time.Second); ; {
		unreachable = unreachable[:0]
		for id := range want {
			if _, err := e.client.GetStatus(ctx, id); err != nil && !errors.Is(err, host.ErrInstanceNotFound) {
				unreachable = append(unreachable, id)
			}
		}
		if len(unreachable) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	reachable := time.Since(killedAt)
	if len(unreachable) > 0 {
		t.Fatalf("%d instances still unreachable %s after the kill (replica promoted after %s): %v",
			len(unreachable), reachable.Round(time.Millisecond), promoted.Round(time.Millisecond), unreachable)
	}
	checkWorkersAlive(t, procs, "the failover")
	lostStarts := e.lostStarts(want)
	newStarts := 0
	for id := range want {
		if acked[id].After(afterFailover) {
			newStarts++
		}
	}
	if newStarts == 0 {
		t.Errorf("no instance could be started after the failover")
	}
	lost := e.expectOutputs(want, 60*time.Second)
	r := e.checkInvariants()
	checkNoCrossSlot(t, s, procs...)
	t.Logf("figures: forced failover after a master SIGKILL: replica promoted %s after the kill, every instance reachable after %s; %d acknowledged starts (%d refused: %v), %d lost by the failover %v, %d started after it, %d did not complete as expected, %d instances checked",
		promoted.Round(time.Millisecond), reachable.Round(time.Millisecond), len(acked), s.failed, s.errs, len(lostStarts), lostStarts, newStarts, lost, r.Total())
}

// failOver makes replica take over from its master (CLUSTER FAILOVER, which
// loses no acknowledged write) and returns how long that took.
func failOver(t *testing.T, replica *redistest.Server) time.Duration {
	t.Helper()
	cl := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	defer cl.Close()
	start := time.Now()
	if err := cl.Do(context.Background(), "CLUSTER", "FAILOVER").Err(); err != nil {
		t.Fatalf("CLUSTER FAILOVER on %s: %v", replica.Addr(), err)
	}
	waitMaster(t, cl, start, 20*time.Second)
	return time.Since(start)
}

// waitMaster waits until replica reports itself master, failing the test
// when that takes more than timeout from since.
func waitMaster(t *testing.T, replica *redis.Client, since time.Time, timeout time.Duration) {
	t.Helper()
	for {
		info, _ := replica.Info(context.Background(), "replication").Result()
		if strings.Contains(info, "role:master") {
			return
		}
		if time.Since(since) > timeout {
			t.Fatalf("the replica did not become master within %s:\n%s", timeout, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
