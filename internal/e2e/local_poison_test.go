package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/internal/redistest"
)

// TestPoisonLocalActivityReachesTheStreamAfterACrash: an activity whose run
// takes its worker process down (here the worker exits when the activity
// logs "Crasher") first runs as a local activity on a warm worker, which
// crashes. The worker that takes over the crashed one's partitions claims
// the pending start message; it must send the activity through the activity
// stream, where every delivery is counted and a poison item is
// dead-lettered, rather than run it locally again (it would crash as well,
// and so would every worker after it, without anything being counted).
func TestPoisonLocalActivityReachesTheStreamAfterACrash(t *testing.T) {
	url := "redis://" + redistest.StartServer(t)
	e := samplesEnv(t, url)
	ledgers := t.TempDir()
	po := procOpts{lease: time.Second, visibility: time.Second, ledgerDir: ledgers, crashOnLog: "name=Crasher"}
	procs := []*workerProc{e.startWorkerProc(po), e.startWorkerProc(po)}
	// Warm both workers: each runs SayHello (the first run of an activity
	// in a process goes through the stream, later ones run locally).
	for i := 0; i < 48; i++ {
		e.start("HelloWorld", fmt.Sprintf("warm-%02d", i), fmt.Sprintf(`"w%d"`, i))
	}
	for i := 0; i < 48; i++ {
		if st := e.wait(fmt.Sprintf("warm-%02d", i), 60*time.Second); st.Status != abi.StatusCompleted {
			t.Fatalf("warm-%02d: %s", i, st.Status)
		}
	}
	e.start("HelloWorld", "poison", `"Crasher"`)
	first := waitFirstExit(t, procs, 30*time.Second)
	if first == nil {
		t.Fatal("no worker crashed running the poison activity")
	}
	if n := deliveriesOf(t, first.ledger, "poison"); n != 0 {
		t.Fatalf("the first crash came from a streamed run (%d deliveries): the test needs it local", n)
	}
	var other *workerProc
	for _, w := range procs {
		if w != first {
			other = w
		}
	}
	if !other.waitExit(30 * time.Second) {
		t.Fatal("the worker that took over did not run the poison activity")
	}
	n := deliveriesOf(t, other.ledger, "poison")
	if n != 1 {
		t.Errorf("the taking-over worker crashed after %d deliveries of the poison activity from the stream, want 1 (it ran it as a local activity)", n)
	}
	t.Logf("figures: first crash: local run in pid %d; second crash: pid %d after %d counted stream deliveries", first.pid(), other.pid(), n)
}

// waitFirstExit returns the first of procs to exit, or nil after timeout.
func waitFirstExit(t *testing.T, procs []*workerProc, timeout time.Duration) *workerProc {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, w := range procs {
			select {
			case <-w.exited:
				return w
			default:
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// deliveriesOf counts the activity-stream deliveries of instance id's
// activities in a ledger file.
func deliveriesOf(t *testing.T, ledger, id string) int {
	t.Helper()
	b, err := os.ReadFile(ledger)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "D ") && strings.Contains(line, fmt.Sprintf("%q", id)) {
			n++
		}
	}
	return n
}
