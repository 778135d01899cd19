package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
)

// TestWaitIsWokenByTheCompletion: WaitForCompletion reads the status when
// the store announces the completion, not only every polling interval. With
// an interval of an hour, waits that began while their instances were
// waiting for an event must return once the events complete them — and a
// wait for an instance that does not finish must keep waiting.
func TestWaitIsWokenByTheCompletion(t *testing.T) {
	allBackends(t, func(t *testing.T, url string) {
		e := samplesEnv(t, url)
		e.worker(host.WorkerOptions{})
		// Warm up: the module compiled, leases held.
		e.start("HelloWorld", "warm", `"warm"`)
		e.wait("warm", 60*time.Second)
		ids := make([]string, 8)
		done := make(chan error, len(ids))
		for i := range ids {
			ids[i] = fmt.Sprintf("waited-%d", i)
			e.start("WaitOne", ids[i], "")
		}
		for _, id := range ids {
			e.waitStatus(id, abi.StatusRunning, 30*time.Second)
		}
		started := make(chan struct{}, len(ids))
		for i := range ids {
			go func(id string) {
				started <- struct{}{}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				st, err := e.client.WaitForCompletion(ctx, id, time.Hour)
				if err == nil && st.Status != abi.StatusCompleted {
					err = fmt.Errorf("%s: %s", id, st.Status)
				}
				done <- err
			}(ids[i])
		}
		for range ids {
			<-started
		}
		time.Sleep(200 * time.Millisecond) // let the waits read the status and block
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
