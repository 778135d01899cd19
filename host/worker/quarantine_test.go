package worker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/replay"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/internal/invariant"
	"github.com/durablewasm/durablewasm/samples"
)

// idOnPartition returns an id with prefix that hashes to partition p of n.
func idOnPartition(prefix string, p, n int) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if host.PartitionFor(id, n) == p {
			return id
		}
	}
}

// createRaw creates an instance with the store directly, as a writer that
// does not validate (an older version, a bug) would, so the worker meets a
// message that cannot be processed.
func createRaw(t *testing.T, e *hub, id, digest string) {
	t.Helper()
	now := time.Now().UTC()
	st := host.InstanceState{InstanceID: id, Name: "HelloWorld", ExecutionID: "x1", Status: abi.StatusPending,
		Input: `"Ann"`, CreatedAt: now, UpdatedAt: now, App: "samples", Digest: digest}
	start := host.ControlMessage{InstanceID: id, ExecutionID: "x1", Event: abi.HistoryEvent{EventID: -1,
		Type: abi.EventExecutionStarted, Timestamp: now.UnixNano(), Name: "HelloWorld", Input: `"Ann"`, InstanceID: id, ExecutionID: "x1"},
		Fresh: &host.FreshInstance{App: "samples", Digest: digest, CreatedAt: now}}
	if err := e.store.CreateInstance(context.Background(), st, start); err != nil {
		t.Fatal(err)
	}
}

// TestPoisonMessageIsQuarantinedAndThePartitionGoesOn: an instance id with
// an invalid UTF-8 byte, written past the client's validation, used to make
// its partition's commits fail forever (its message's JSON turned the id
// into another one, of another partition), and every other instance of the
// partition stayed Pending. The message is now quarantined after
// QuarantineAfter attempts and the partition goes on.
func TestPoisonMessageIsQuarantinedAndThePartitionGoesOn(t *testing.T) {
	// The hub of the report: 16 partitions.
	e := newHub(t, 16)
	app, err := e.store.GetApp(context.Background(), "samples")
	if err != nil {
		t.Fatal(err)
	}
	bad := "a\xffb" // its JSON form, "a\ufffdb", is in another partition of 16
	n := e.store.Partitions()
	if host.PartitionFor(bad, n) == host.PartitionFor("a\ufffdb", n) {
		t.Fatalf("%q and its JSON form are in the same partition of %d", bad, n)
	}
	p := host.PartitionFor(bad, n)
	createRaw(t, e, bad, app.Digest)
	good := idOnPartition("after-poison", p, n)
	e.start("HelloWorld", good, `"Bob"`)
	e.run(worker.Options{})
	if st := e.wait(good); st.Status != abi.StatusCompleted || st.Output != `"Hello Bob!"` {
		t.Fatalf("instance after the poison message: %s %s", st.Status, st.Output)
	}
	dls, err := e.cl.ListDeadLetters(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 || dls[0].Kind != host.DeadLetterControl || dls[0].Partition != p || dls[0].Event != string(abi.EventExecutionStarted) ||
		!strings.Contains(dls[0].Reason, "failed 3 times") {
		t.Fatalf("dead letters: %+v", dls)
	}
	// The raw message is kept byte for byte (the bad id's JSON escape),
	// and dropping it works.
	if !strings.Contains(dls[0].Raw, `"ExecutionStarted"`) {
		t.Fatalf("raw message not kept: %q", dls[0].Raw)
	}
	// doctor names it.
	rep, err := invariant.Check(context.Background(), e.store)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, pr := range rep.Problems {
		found = found || pr.Kind == "quarantined" && pr.Instance == "a\ufffdb" && strings.Contains(pr.Detail, "dead-letters replay")
	}
	if !found {
		t.Fatalf("doctor does not name the quarantined message: %+v", rep.Problems)
	}
	if err := e.cl.RemoveDeadLetter(context.Background(), &dls[0]); err != nil {
		t.Fatal(err)
	}
	if err := e.cl.RemoveDeadLetter(context.Background(), &dls[0]); !errors.Is(err, host.ErrDeadLetterNotFound) {
		t.Fatalf("second remove: %v", err)
	}
}

// TestQuarantinedInstanceFailsAndReplayRunsIt: an instance whose module is
// missing cannot be stepped; after QuarantineAfter attempts its start
// message is quarantined and the instance is Failed with DW3001. Once the
// module is there again, replaying the dead letter rewinds the instance and
// puts the message back, and the instance completes.
func TestQuarantinedInstanceFailsAndReplayRunsIt(t *testing.T) {
	e := newHub(t, 4)
	// The samples module with a custom section appended: the same
	// functions under another digest, which is not stored yet.
	other := append(append([]byte(nil), samples.Wasm...), 0, 6, 3, 'f', 'i', 'x', 1, 2)
	sum := sha256.Sum256(other)
	missing := "sha256:" + hex.EncodeToString(sum[:])
	createRaw(t, e, "needs-missing-module", missing)
	e.run(worker.Options{})
	st := e.wait("needs-missing-module")
	if st.Status != abi.StatusFailed || st.Failure == nil || st.Failure.Code != replay.CodeQuarantined || st.Failure.Type != abi.FailureQuarantined ||
		!strings.Contains(st.Failure.Message, "dead-letters replay") {
		t.Fatalf("status %s, failure %+v", st.Status, st.Failure)
	}
	dls, err := e.cl.ListDeadLetters(context.Background(), 0)
	if err != nil || len(dls) != 1 || dls[0].InstanceID != "needs-missing-module" {
		t.Fatalf("dead letters %+v, %v", dls, err)
	}
	// The operator fixes the cause: the module is stored under its digest.
	if err := e.store.PutModule(context.Background(), "restored", missing, other, nil); err != nil {
		t.Fatal(err)
	}
	out, detail, err := e.cl.ReplayDeadLetter(context.Background(), &dls[0], false)
	if err != nil || out != client.ReplayRequeued || !strings.Contains(detail, "rewound") {
		t.Fatalf("replay: %s %q %v", out, detail, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err = e.cl.GetStatus(context.Background(), "needs-missing-module")
		if err == nil && st.Status == abi.StatusCompleted {
			break
		}
		if time.Now().After(deadline) {
			hist, _ := e.cl.GetHistory(context.Background(), "needs-missing-module")
			t.Fatalf("after replay: %+v %v\nhistory %+v", st, err, hist)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Output != `"Hello Ann!"` {
		t.Fatalf("output %s", st.Output)
	}
	if dls, _ := e.cl.ListDeadLetters(context.Background(), 0); len(dls) != 0 {
		t.Fatalf("dead letter still there: %+v", dls)
	}
}
