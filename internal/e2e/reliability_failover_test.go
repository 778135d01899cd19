package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestClusterFailoverMidRun runs orchestrations on a 3-master Redis Cluster
// with one replica per master and fails a master over to its replica
// (CLUSTER FAILOVER, which loses no acknowledged write) while they run: every
// instance completes with the exact output, and the worker needs no restart.
func TestClusterFailoverMidRun(t *testing.T) {
	c := redistest.StartClusterWithReplicas(t, 3)
	e := samplesEnv(t, c.URL())
	e.worker(host.WorkerOptions{VisibilityTimeout: 5 * time.Second})
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
	replica := redis.NewClient(&redis.Options{Addr: c.Replicas[0].Addr()})
	defer replica.Close()
	start := time.Now()
	if err := replica.Do(ctx, "CLUSTER", "FAILOVER").Err(); err != nil {
		t.Fatalf("CLUSTER FAILOVER: %v", err)
	}
	for {
		info, _ := replica.Info(ctx, "replication").Result()
		if strings.Contains(info, "role:master") {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("the replica did not become master:\n%s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("failover done in %s", time.Since(start).Round(time.Millisecond))
	for id, w := range want {
		st := e.wait(id, 60*time.Second)
		if st.Status != abi.StatusCompleted || st.Output != w {
			t.Errorf("%s: %s output %s failure %v; want %s", id, st.Status, st.Output, st.Failure, w)
		}
	}
}
