package worker_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/worker"
)

// FuzzStartAnyID fuzzes the whole path id → start → step → commit on
// miniredis with one running worker: whatever the id (and whether it came
// through the client, which validates it, or was written to the store by a
// writer that does not), an instance started after it on the same
// partition still completes. `go test` runs the seeds; run it for minutes
// with `go test ./host/worker -run '^$' -fuzz FuzzStartAnyID -fuzztime 5m
// -fuzzminimizetime 2s` (each input takes milliseconds, so the default
// minimization of new inputs looks like a stall).
func FuzzStartAnyID(f *testing.F) {
	for _, s := range []string{"a\xffb", "a\xffb0", ".", "..", "{x}", "x:y*z", "@entity@key", "", " ", "\x00", "a/b",
		"\u2028", "\xed\xa0\x80", "%FF", "a\ufffdb", "東京", string(make([]byte, 300))} {
		f.Add(s, "orders")
	}
	e := newHub(f, 16)
	app, err := e.store.GetApp(context.Background(), "samples")
	if err != nil {
		f.Fatal(err)
	}
	e.run(worker.Options{})
	n := e.store.Partitions()
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, id, event string) {
		ctx, cancelAll := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancelAll()
		k := seq.Add(1)
		if _, err := e.cl.StartNew(ctx, client.StartOptions{FunctionName: "HelloWorld", InstanceID: id, Input: `"x"`}); err != nil &&
			!errors.Is(err, host.ErrInvalidInput) && !errors.Is(err, host.ErrInstanceExists) {
			t.Fatalf("start %q: unexpected error %v", id, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("start %q did not return", id)
		}
		if err := e.cl.RaiseEvent(ctx, id, event, `1`); err != nil && !errors.Is(err, host.ErrInvalidInput) &&
			!errors.Is(err, host.ErrInstanceNotFound) && !errors.Is(err, host.ErrInstanceFinished) {
			t.Fatalf("raise %q on %q: unexpected error %v", event, id, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("raise %q on %q did not return", event, id)
		}
		// A writer that does not validate.
		if id != "" {
			raw := fmt.Sprintf("%s~raw%d", id, k)
			now := time.Now().UTC()
			x := fmt.Sprintf("x%d", k)
			st := host.InstanceState{InstanceID: raw, Name: "HelloWorld", ExecutionID: x, Status: abi.StatusPending,
				Input: `"x"`, CreatedAt: now, UpdatedAt: now, App: app.Name, Digest: app.Digest}
			start := host.ControlMessage{InstanceID: raw, ExecutionID: x, Event: abi.HistoryEvent{EventID: -1,
				Type: abi.EventExecutionStarted, Timestamp: now.UnixNano(), Name: "HelloWorld", Input: `"x"`, InstanceID: raw, ExecutionID: x},
				Fresh: &host.FreshInstance{App: app.Name, Digest: app.Digest, CreatedAt: now}}
			if err := e.store.CreateInstance(ctx, st, start); err != nil && !errors.Is(err, host.ErrInstanceExists) {
				t.Logf("raw create %q: %v", raw, err)
			}
			id = raw
		}
		after := idOnPartition(fmt.Sprintf("after%d", k), host.PartitionFor(id, n), n)
		if _, err := e.cl.StartNew(ctx, client.StartOptions{FunctionName: "HelloWorld", InstanceID: after, Input: `"Zed"`}); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		st, err := e.cl.WaitForCompletion(wctx, after, 20*time.Millisecond)
		if err != nil || st.Status != abi.StatusCompleted || st.Output != `"Hello Zed!"` {
			t.Fatalf("instance started after %q on partition %d: %+v %v", id, host.PartitionFor(id, n), st, err)
		}
	})
}
