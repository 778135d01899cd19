package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/internal/redistest"
	"github.com/durablewasm/durablewasm/samples/flows"
)

// backends runs a test on miniredis and on a real redis-server.
func backends(t *testing.T, fn func(t *testing.T, url string)) {
	t.Run("miniredis", func(t *testing.T) { fn(t, miniURL(t)) })
	t.Run("redis-server", func(t *testing.T) { fn(t, "redis://"+redistest.StartServer(t)) })
}

// allBackends is backends plus a 3-master Redis Cluster.
func allBackends(t *testing.T, fn func(t *testing.T, url string)) {
	backends(t, fn)
	t.Run("cluster", func(t *testing.T) { fn(t, redistest.StartCluster(t, 3).URL()) })
}

func samplesEnv(t *testing.T, url string) *env {
	e := newEnv(t, url)
	e.deploy("samples", buildGuest(t, "samples/guest"))
	return e
}

func TestSamples(t *testing.T) {
	allBackends(t, func(t *testing.T, url string) {
		e := samplesEnv(t, url)
		e.worker(worker.Options{})
		ctx := context.Background()
		clear, _ := json.Marshal(flows.MonitorRequest{Location: "Phoenix", Phone: "555", ExpiryTime: time.Now().Add(time.Hour), PollingInterval: 100 * time.Millisecond})
		cloudy, _ := json.Marshal(flows.MonitorRequest{Location: "Redmond", Phone: "555", ExpiryTime: time.Now().Add(3 * time.Second), PollingInterval: 200 * time.Millisecond})
		cases := []struct {
			name, fn, input string
			act             func(id string)
			want            string
		}{
			{name: "hello", fn: "E1_HelloSequence", want: `["Hello Tokyo!","Hello Seattle!","Hello London!"]`},
			{name: "helloworld", fn: "HelloWorld", input: `"Ada"`, want: `"Hello Ada!"`},
			{name: "fanout", fn: "E2_BackupSiteContent", input: `"/site"`, want: fmt.Sprint(backupTotal("/site"))},
			{name: "suborch", fn: "E5_SubOrchestration", input: `"Bob"`, want: `{"sequence":["Hello Tokyo!","Hello Seattle!","Hello London!"],"hello":"Hello Bob!"}`},
			{name: "monitor", fn: "E3_Monitor", input: string(clear), want: `{"alerted":true,"checks":1}`},
			{name: "monitor-expires", fn: "E3_Monitor", input: string(cloudy), want: ""},
			{name: "sms", fn: "E4_SmsPhoneVerification", input: `"+1555"`, want: "true", act: func(id string) {
				e.waitStatus(id, abi.StatusRunning, 10*time.Second)
				if err := e.client.RaiseEvent(ctx, id, "SmsChallengeResponse", "1"); err != nil {
					t.Error(err)
				}
				if err := e.client.RaiseEvent(ctx, id, "SmsChallengeResponse", fmt.Sprint(flows.ChallengeCode("+1555"))); err != nil {
					t.Error(err)
				}
			}},
			{name: "counter", fn: "Counter", input: "5", want: "6", act: func(id string) {
				// Raised while the instance may still be Pending: kept until it waits.
				for _, op := range []string{`"incr"`, `"incr"`, `"decr"`, `"end"`} {
					if err := e.client.RaiseEvent(ctx, id, "operation", op); err != nil {
						t.Error(err)
					}
				}
			}},
		}
		for _, c := range cases {
			e.start(c.fn, c.name, c.input)
			if c.act != nil {
				c.act(c.name)
			}
		}
		for _, c := range cases {
			st := e.wait(c.name, 30*time.Second)
			if st.Status != abi.StatusCompleted {
				t.Errorf("%s: status %s, failure %v", c.name, st.Status, st.Failure)
				continue
			}
			if c.want != "" && st.Output != c.want {
				t.Errorf("%s: output %s, want %s", c.name, st.Output, c.want)
			}
		}
		// The cloudy monitor polled on durable timers, continuing as new,
		// until it expired.
		st, _ := e.client.GetStatus(ctx, "monitor-expires")
		var res flows.MonitorResult
		if err := json.Unmarshal([]byte(st.Output), &res); err != nil || res.Alerted || res.Checks < 2 || res.Checks > 16 {
			t.Errorf("expiring monitor output %s: want not alerted after 2-16 checks (about 14 at 200 ms; miniredis can stall)", st.Output)
		}
		// Sub-orchestrations are real instances with their own status.
		sub, err := e.client.GetStatus(ctx, "suborch:hello")
		if err != nil || sub.Status != abi.StatusCompleted || sub.ParentInstanceID != "suborch" {
			t.Errorf("sub-orchestration: %+v %v", sub, err)
		}
	})
}

func backupTotal(dir string) int64 {
	var n int64
	for _, f := range flows.FileList(dir) {
		n += flows.FileSize(f)
	}
	return n
}

func TestStartErrors(t *testing.T) {
	e := samplesEnv(t, miniURL(t))
	ctx := context.Background()
	e.start("HelloWorld", "dup", `"x"`)
	_, err := e.client.StartNew(ctx, client.StartOptions{FunctionName: "HelloWorld", InstanceID: "dup"})
	if !errors.Is(err, host.ErrInstanceExists) {
		t.Errorf("duplicate start: %v", err)
	}
	_, err = e.client.StartNew(ctx, client.StartOptions{FunctionName: "Nope"})
	if !errors.Is(err, host.ErrInvalidInput) || !strings.Contains(err.Error(), "E1_HelloSequence") {
		t.Errorf("unknown function must list the deployed orchestrators: %v", err)
	}
	_, err = e.client.StartNew(ctx, client.StartOptions{FunctionName: "E1_SayHello"})
	if !errors.Is(err, host.ErrInvalidInput) || !strings.Contains(err.Error(), "activity") {
		t.Errorf("starting an activity: %v", err)
	}
	for _, id := range []string{"@x", "a/b", "a?b", "a#b", `a\b`, "a\x01b", strings.Repeat("x", 257)} {
		if _, err := e.client.StartNew(ctx, client.StartOptions{FunctionName: "HelloWorld", InstanceID: id}); !errors.Is(err, host.ErrInvalidInput) {
			t.Errorf("id %q accepted: %v", id, err)
		}
	}
	if _, err := e.client.StartNew(ctx, client.StartOptions{FunctionName: "HelloWorld", Input: "{nope"}); !errors.Is(err, host.ErrInvalidInput) {
		t.Errorf("bad JSON input accepted: %v", err)
	}
	if err := e.client.RaiseEvent(ctx, "missing", "x", ""); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("event to missing instance: %v", err)
	}
}

func TestEventToFinishedInstanceIsAnError(t *testing.T) {
	e := samplesEnv(t, miniURL(t))
	e.worker(worker.Options{})
	e.start("HelloWorld", "done", `"x"`)
	e.wait("done", 20*time.Second)
	err := e.client.RaiseEvent(context.Background(), "done", "x", "1")
	if !errors.Is(err, host.ErrInstanceFinished) {
		t.Fatalf("event to finished instance: %v", err)
	}
}

func TestTerminateAndSuspend(t *testing.T) {
	e := samplesEnv(t, miniURL(t))
	e.worker(worker.Options{})
	ctx := context.Background()
	e.start("Counter", "c1", "0")
	e.start("Counter", "c2", "0")
	e.waitStatus("c1", abi.StatusRunning, 10*time.Second)
	if err := e.client.Terminate(ctx, "c1", "enough", true); err != nil {
		t.Fatal(err)
	}
	st := e.wait("c1", 10*time.Second)
	if st.Status != abi.StatusTerminated || st.Output != "enough" {
		t.Fatalf("terminated: %+v", st)
	}
	e.waitStatus("c2", abi.StatusRunning, 10*time.Second)
	if err := e.client.Suspend(ctx, "c2", "hold"); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("c2", abi.StatusSuspended, 10*time.Second)
	if err := e.client.RaiseEvent(ctx, "c2", "operation", `"end"`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if st, _ := e.client.GetStatus(ctx, "c2"); st.Status != abi.StatusSuspended {
		t.Fatalf("a suspended instance ran: %s", st.Status)
	}
	if err := e.client.Resume(ctx, "c2", "go"); err != nil {
		t.Fatal(err)
	}
	if st := e.wait("c2", 10*time.Second); st.Status != abi.StatusCompleted || st.Output != "0" {
		t.Fatalf("resumed: %+v", st)
	}
}

// TestEvictionAndRestartReplay keeps more waiting orchestrations than the
// warm cache holds, restarts the worker, and completes them all.
func TestEvictionAndRestartReplay(t *testing.T) {
	allBackends(t, func(t *testing.T, url string) {
		e := samplesEnv(t, url)
		stop := e.worker(worker.Options{MaxWarm: 2})
		ctx := context.Background()
		const n = 6
		for i := 0; i < n; i++ {
			e.start("E4_SmsPhoneVerification", fmt.Sprint("v", i), `"+1`+fmt.Sprint(i)+`"`)
		}
		for i := 0; i < n; i++ {
			id := fmt.Sprint("v", i)
			// Wait until the challenge activity completed and the orchestration waits.
			deadline := time.Now().Add(10 * time.Second)
			for {
				h, _ := e.client.GetHistory(ctx, id)
				if countType(h, abi.EventTaskCompleted) == 1 && countType(h, abi.EventTimerCreated) == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s never started waiting: %+v", id, h)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		// Half of them get their event from a worker whose cache evicted them.
		for i := 0; i < n/2; i++ {
			if err := e.client.RaiseEvent(ctx, fmt.Sprint("v", i), "SmsChallengeResponse", fmt.Sprint(flows.ChallengeCode("+1"+fmt.Sprint(i)))); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < n/2; i++ {
			if st := e.wait(fmt.Sprint("v", i), 20*time.Second); st.Output != "true" {
				t.Fatalf("v%d after eviction: %+v", i, st)
			}
		}
		// The other half survive a worker restart.
		stop()
		e.worker(worker.Options{})
		for i := n / 2; i < n; i++ {
			if err := e.client.RaiseEvent(ctx, fmt.Sprint("v", i), "SmsChallengeResponse", fmt.Sprint(flows.ChallengeCode("+1"+fmt.Sprint(i)))); err != nil {
				t.Fatal(err)
			}
		}
		for i := n / 2; i < n; i++ {
			if st := e.wait(fmt.Sprint("v", i), 20*time.Second); st.Output != "true" {
				t.Fatalf("v%d after restart: %+v", i, st)
			}
		}
		// History was replayed, not duplicated: one challenge per instance.
		for i := 0; i < n; i++ {
			h, _ := e.client.GetHistory(ctx, fmt.Sprint("v", i))
			if c := countType(h, abi.EventTaskScheduled); c != 1 {
				t.Errorf("v%d scheduled %d activities, want 1", i, c)
			}
		}
	})
}

func countType(h []abi.HistoryEvent, t abi.EventType) int {
	n := 0
	for _, e := range h {
		if e.Type == t {
			n++
		}
	}
	return n
}
