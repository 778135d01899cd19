package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/worker"
)

// TestFirstStepChecksTheInstanceIsStillFresh covers the worker's fast path
// for new instances: their first step runs on what the start message says
// (no read of the instance), and the commit checks that the instance is
// still that fresh Pending one. An instance force-purged, or purged and
// started again under the same id, before any worker ran must not be
// resurrected or overwritten by the first step of the old start message.
func TestFirstStepChecksTheInstanceIsStillFresh(t *testing.T) {
	backends(t, func(t *testing.T, url string) {
		{
			e := samplesEnv(t, url)
			ctx := context.Background()
			e.start("HelloWorld", "gone", `"gone"`)
			e.start("HelloWorld", "again", `"first"`)
			for _, id := range []string{"gone", "again"} {
				if err := e.client.PurgeInstance(ctx, id, true); err != nil {
					t.Fatal(err)
				}
			}
			e.start("HelloWorld", "again", `"second"`)
			e.start("HelloWorld", "other", `"other"`)
			e.worker(worker.Options{})
			for id, want := range map[string]string{"other": `"Hello other!"`, "again": `"Hello second!"`} {
				if st := e.wait(id, 60*time.Second); st.Status != abi.StatusCompleted || st.Output != want {
					t.Errorf("%s: %s %s, want Completed %s", id, st.Status, st.Output, want)
				}
			}
			// Let the worker get through every pending message.
			time.Sleep(2 * time.Second)
			if st, err := e.client.GetStatus(ctx, "gone"); !errors.Is(err, host.ErrInstanceNotFound) {
				t.Errorf("purged instance: %+v %v, want not found", st, err)
			}
			h, err := e.client.GetHistory(ctx, "again")
			if err != nil {
				t.Fatal(err)
			}
			started := 0
			for _, ev := range h {
				if ev.Type == abi.EventExecutionStarted {
					started++
					if ev.Input != `"second"` {
						t.Errorf("again ran with input %s", ev.Input)
					}
				}
			}
			if started != 1 {
				t.Errorf("again: %d ExecutionStarted events, want 1", started)
			}
		}
	})
}
