package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/worker"
)

// TestDeadLetters dead-letters an activity and replays it.
//
// Redelivery is exercised for real: the worker running the activities (they
// sleep 3 s) stops with a short grace, so they are interrupted and left
// pending in its consumer, as when a worker crashes; it is no longer alive,
// so the next worker reclaims them within about a lease TTL, and that
// second delivery, over MaxDeliveries (1), is dead-lettered: the
// orchestration sees a PoisonMessage failure and the item is parked. (A
// trap or a deadline would not do: they complete the item with a failure,
// they are not redeliveries.)
func TestDeadLetters(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, miniURL(t))
	e.deploy("slow", buildGuest(t, "testdata/guests/slow"))
	first := e.worker(worker.Options{MaxDeliveries: 1, ShutdownGrace: 100 * time.Millisecond})
	e.start("Slow", "nap", "3000")
	e.start("SlowCatch", "caught", "3000")
	for _, id := range []string{"nap", "caught"} {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			h, _ := e.client.GetHistory(ctx, id)
			if countType(h, abi.EventTaskScheduled) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s scheduled no activity", id)
			}
		}
	}
	time.Sleep(time.Second) // the activity reader takes them at once; a second is ample
	first()
	stop := e.worker(worker.Options{MaxDeliveries: 1})
	st := e.wait("nap", 30*time.Second)
	if st.Status != abi.StatusFailed || st.Failure == nil || !strings.Contains(st.Failure.Error(), "PoisonMessage") {
		t.Fatalf("nap: %s %+v", st.Status, st.Failure)
	}
	if st := e.wait("caught", 30*time.Second); st.Output != `"caught"` {
		t.Fatalf("caught: %s %s", st.Status, st.Output)
	}
	dls, err := e.client.ListDeadLetters(ctx, 0)
	if err != nil || len(dls) != 2 {
		t.Fatalf("dead letters: %+v, %v", dls, err)
	}
	byID := map[string]host.DeadLetter{}
	for _, d := range dls {
		byID[d.InstanceID] = d
		if d.Kind != host.DeadLetterActivity || d.Activity != "Nap" || d.Input != "3000" || d.Deliveries != 2 || !strings.Contains(d.Reason, "giving up after 1") {
			t.Errorf("dead letter %+v", d)
		}
	}
	stop()
	e.worker(worker.Options{})

	// Continued past the failure: kept, unless forced.
	d := byID["caught"]
	out, detail, err := e.client.ReplayDeadLetter(ctx, &d, false)
	if err != nil || out != client.ReplayStale || !strings.Contains(detail, "continued past the failure") {
		t.Errorf("replay of a handled failure: %s %q %v", out, detail, err)
	}
	if out, _, err := e.client.ReplayDeadLetter(ctx, &d, true); err != nil || out != client.ReplayRemoved {
		t.Errorf("forced: %s %v", out, err)
	}
	// Failed: rewound, and the activity runs again (on a worker with the
	// default visibility timeout it completes).
	found, err := e.client.FindDeadLetter(ctx, byID["nap"].ID)
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := e.client.ReplayDeadLetter(ctx, found, false); err != nil || out != client.ReplayRewound {
		t.Fatalf("replay: %s %v", out, err)
	}
	e.waitStatus("nap", abi.StatusRunning, 10*time.Second)
	if st := e.wait("nap", 30*time.Second); st.Status != abi.StatusCompleted || st.Output != `"rested"` {
		t.Errorf("nap after replay: %s %s %v", st.Status, st.Output, st.Failure)
	}
	if dls, _ := e.client.ListDeadLetters(ctx, 0); len(dls) != 0 {
		t.Errorf("dead letters left: %+v", dls)
	}
}
