package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/internal/redistest"
)

// TestWaitIsWokenByTheCompletion: WaitForCompletion reads the status when
// the store announces the completion, not only every polling interval. With
// an interval of an hour, waits that began while their instances were
// waiting for an event must return once the events complete them — and a
// wait for an instance that does not finish must keep waiting.
func TestWaitIsWokenByTheCompletion(t *testing.T) {
	allBackends(t, func(t *testing.T, url string) {
		e := samplesEnv(t, url)
		e.worker(worker.Options{})
		// Warm up: the module compiled, leases held.
		e.start("HelloWorld", "warm", `"warm"`)
		e.wait("warm", 60*time.Second)
		ids := e.startWaitingForEvents("waited-", 8)
		done := e.startLongWaits(ids)
		for i, id := range ids {
			if err := e.client.RaiseEvent(context.Background(), id, "go", fmt.Sprintf("%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		for range ids {
			if err := <-done; err != nil {
				t.Fatalf("wait with an hour's polling interval: %v (the completion did not wake it)", err)
			}
		}
		// An instance waiting for an event never completes: its wait must
		// end only with its context.
		e.start("WaitOne", "never", "")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := e.client.WaitForCompletion(ctx, "never", time.Hour)
		if err == nil || st == nil || st.Status.Terminal() {
			t.Fatalf("wait for a waiting instance returned %+v, %v; want its context's error", st, err)
		}
	})
}

// TestWaitIsWokenAfterAClusterFailover: a CLUSTER FAILOVER moves the done
// channels' slots to the promoted replica, and Redis ends the shard-channel
// subscriptions on the old master. The waiters' store must subscribe again
// (on the new master) so that waits begun after the failover are still
// woken by their completions, with an hour's polling interval.
func TestWaitIsWokenAfterAClusterFailover(t *testing.T) {
	c := redistest.StartClusterWithReplicas(t, 3)
	e := samplesEnv(t, c.URL())
	e.worker(worker.Options{VisibilityTimeout: 5 * time.Second})
	ctx := context.Background()
	// Subscribe to every partition's channel before the failover.
	ids := e.startWaitingForEvents("fw-", 32)
	for _, id := range ids {
		_, release := e.client.WatchFinished(ctx, id)
		release()
	}
	for _, r := range c.Replicas {
		failOver(t, r)
	}
	c.WaitReady(t, 30*time.Second)
	done := e.startLongWaits(ids)
	for i, id := range ids {
		for {
			err := e.client.RaiseEvent(ctx, id, "go", fmt.Sprintf("%d", i))
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond) // clients still learning the new slot map
		}
	}
	woken := 0
	for range ids {
		if err := <-done; err != nil {
			t.Errorf("after the failover: %v (the completion did not wake the wait)", err)
		} else {
			woken++
		}
	}
	t.Logf("figures: %d of %d waits woken by their completions after failing over all 3 masters", woken, len(ids))
}

// startWaitingForEvents starts n WaitOne instances (ids prefix0, prefix1,
// ...) and waits until each runs, parked on its event.
func (e *env) startWaitingForEvents(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%02d", prefix, i)
		e.start("WaitOne", ids[i], "")
	}
	for _, id := range ids {
		e.waitStatus(id, abi.StatusRunning, 30*time.Second)
	}
	return ids
}

// startLongWaits starts a WaitForCompletion with an hour's polling interval
// (and a 30 s context) on each of ids and returns once they have had time to
// read the status and block; each reports on the channel (nil: Completed).
func (e *env) startLongWaits(ids []string) <-chan error {
	done := make(chan error, len(ids))
	for _, id := range ids {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := e.client.WaitForCompletion(ctx, id, time.Hour)
			if err == nil && st.Status != abi.StatusCompleted {
				err = fmt.Errorf("%s: %s", id, st.Status)
			}
			done <- err
		}()
	}
	time.Sleep(time.Second) // the waits read the status and block
	return done
}
