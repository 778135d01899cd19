package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/sandbox"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/redisstore"
	"github.com/durablewasm/durablewasm/samples"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// hub is a task hub on miniredis with the samples deployed, a client and
// (after run) one worker.
type hub struct {
	t     testing.TB
	url   string
	store *redisstore.Store
	cl    *client.Client
}

// newHub makes a hub of partitions partitions.
func newHub(t testing.TB, partitions int) *hub {
	t.Helper()
	ctx := context.Background()
	url := "redis://" + miniredis.RunT(t).Addr()
	st, err := redisstore.Open(ctx, url, "WorkerTest", redisstore.Options{Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng := engine(t)
	h := &hub{t: t, url: url, store: st, cl: client.New(st, eng)}
	if _, err := h.cl.Deploy(ctx, "samples", samples.Wasm); err != nil {
		t.Fatal(err)
	}
	return h
}

func engine(t testing.TB) *sandbox.Engine {
	t.Helper()
	eng, err := sandbox.NewEngine(context.Background(), sandbox.EngineOptions{
		CacheDir: filepath.Join(os.TempDir(), "durablewasm-test-cache"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	return eng
}

// run starts a worker with opts on its own store and engine, as a separate
// process would have, until the test ends.
func (h *hub) run(opts worker.Options) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := redisstore.Open(ctx, h.url, "WorkerTest", redisstore.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = 2 * time.Second
	}
	w := worker.New(st, engine(h.t), opts)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("worker: %v", err)
		}
		st.Close()
	})
}

func (h *hub) start(name, id, input string) {
	h.t.Helper()
	if _, err := h.cl.StartNew(context.Background(), client.StartOptions{FunctionName: name, InstanceID: id, Input: input}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *hub) wait(id string) *host.InstanceState {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := h.cl.WaitForCompletion(ctx, id, 20*time.Millisecond)
	if err != nil {
		hist, _ := h.cl.GetHistory(context.Background(), id)
		h.t.Fatalf("%s did not finish: %v %+v\nhistory %+v", id, err, st, hist)
	}
	return st
}

// TestWorkerRunsTheSamples drives the worker through the samples' patterns:
// a sequence (with local activities and without), sub-orchestrations, an
// eternal orchestration fed events across ContinueAsNew, and terminations.
func TestWorkerRunsTheSamples(t *testing.T) {
	for _, local := range []time.Duration{0, -1} {
		t.Run(fmt.Sprintf("local=%v", local >= 0), func(t *testing.T) {
			h := newHub(t, 4)
			h.run(worker.Options{LocalActivityMax: local})
			h.start("E1_HelloSequence", "e1", "")
			h.start("E5_SubOrchestration", "e5", `"Bob"`)
			h.start("Counter", "c1", "0")
			ctx := context.Background()
			for _, op := range []string{"incr", "incr", "decr", "incr", "end"} {
				if err := h.cl.RaiseEvent(ctx, "c1", "operation", `"`+op+`"`); err != nil {
					t.Fatal(err)
				}
			}
			if st := h.wait("e1"); st.Output != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
				t.Errorf("e1: %s %s", st.Status, st.Output)
			}
			if st := h.wait("e5"); st.Status != abi.StatusCompleted || st.Output != `{"sequence":["Hello Tokyo!","Hello Seattle!","Hello London!"],"hello":"Hello Bob!"}` {
				t.Errorf("e5: %s %s %v", st.Status, st.Output, st.Failure)
			}
			if st := h.wait("c1"); st.Output != "2" {
				t.Errorf("counter: %s %s", st.Status, st.Output)
			}
			h.start("WaitOne", "w1", "")
			if err := h.cl.Terminate(ctx, "w1", "enough", true); err != nil {
				t.Fatal(err)
			}
			if st := h.wait("w1"); st.Status != abi.StatusTerminated {
				t.Errorf("terminate: %s", st.Status)
			}
		})
	}
}

// TestTwoWorkersSplitThePartitions: two workers on one hub settle on 8
// partitions each (with the old FNV rendezvous score one worker often owned
// all 16).
func TestTwoWorkersSplitThePartitions(t *testing.T) {
	h := newHub(t, 16)
	h.run(worker.Options{ID: "worker-a", LeaseTTL: time.Second})
	h.run(worker.Options{ID: "worker-b", LeaseTTL: time.Second})
	deadline := time.Now().Add(20 * time.Second)
	for {
		owners := map[string]int{}
		for p := 0; p < 16; p++ {
			snap, err := h.store.InspectPartition(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			owners[snap.LeaseOwner]++
		}
		if owners["worker-a"] == 8 && owners["worker-b"] == 8 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions per owner after 20 s: %v", owners)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
