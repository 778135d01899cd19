package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/internal/redistest"
	"github.com/durablewasm/durablewasm/redisstore"
)

// cli runs the durablewasm binary against e's hub.
func (e *env) cli(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(buildCLI(t), append(args, "--redis-url", e.url, "--task-hub-name", e.hub)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

// TestConcurrentStartsCreateOneInstance races 50 starts of one id: exactly
// one is accepted and one instance runs once.
func TestConcurrentStartsCreateOneInstance(t *testing.T) {
	e := samplesEnv(t, "redis://"+redistest.StartServer(t))
	e.worker(worker.Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, exists := 0, 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.client.StartNew(context.Background(), client.StartOptions{FunctionName: "E1_HelloSequence", InstanceID: "same"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, host.ErrInstanceExists):
				exists++
			default:
				t.Errorf("start: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || exists != 49 {
		t.Errorf("%d starts accepted, %d refused as existing; want 1 and 49", ok, exists)
	}
	st := e.wait("same", 30*time.Second)
	h, _ := e.client.GetHistory(context.Background(), "same")
	if st.Status != abi.StatusCompleted || countType(h, abi.EventExecutionStarted) != 1 || countType(h, abi.EventTaskScheduled) != 3 {
		t.Errorf("status %s, history %d ExecutionStarted and %d TaskScheduled; want Completed, 1 and 3",
			st.Status, countType(h, abi.EventExecutionStarted), countType(h, abi.EventTaskScheduled))
	}
	e.checkInvariants()
}

// TestOddInstanceIDsStayInTheirKeys starts instances whose ids hold key and
// hash-tag syntax through the client and the CLI: each one runs, is found
// under its own keys in its own partition's slot, and purging it leaves no
// key behind.
func TestOddInstanceIDsStayInTheirKeys(t *testing.T) {
	e := samplesEnv(t, "redis://"+redistest.StartServer(t))
	e.worker(worker.Options{})
	ctx := context.Background()
	ids := []string{"{TestHub:0}", "}{", "a:b:c", "*", "dw:{TestHub}:meta", "-dash", "sp ace", "ünï", "{", "}", "::", "%s", "i:x", "h:{TestHub:1}:x", "[a-z]?"[:5], "dw:*"}
	// Durable Functions' rules refuse these outright, in the client and the CLI.
	for _, id := range []string{"x/../y", "tab\tnl\n", "a\\b", "q?", "h#"} {
		if _, err := e.client.StartNew(ctx, client.StartOptions{FunctionName: "HelloWorld", InstanceID: id}); err == nil {
			t.Errorf("start %q was accepted", id)
		}
		if out, code := e.cli(t, "start-new", "--function-name", "HelloWorld", "--id="+id); code == 0 {
			t.Errorf("start-new --id=%q was accepted: %s", id, out)
		}
	}
	for i, id := range ids {
		if i%2 == 0 {
			e.start("HelloWorld", id, `"Ada"`)
			continue
		}
		if out, code := e.cli(t, "start-new", "--function-name", "HelloWorld", "--id="+id, "--input", "Ada"); code != 0 {
			t.Fatalf("start-new --id=%q: exit %d: %s", id, code, out)
		}
	}
	for _, id := range ids {
		st := e.wait(id, 30*time.Second)
		if st.InstanceID != id || st.Output != `"Hello Ada!"` {
			t.Errorf("%q: got instance %q output %s", id, st.InstanceID, st.Output)
		}
		p := host.PartitionFor(id, e.store.Partitions())
		key := fmt.Sprintf("dw:{%s:%d}:i:%s", e.hub, p, id)
		if n, _ := e.store.Client().Exists(ctx, key).Result(); n != 1 {
			t.Errorf("%q: its state is not at %q", id, key)
		}
	}
	if out, code := e.cli(t, "get-runtime-status", "--id=}{", "--show-output"); code != 0 || !strings.Contains(out, `"instanceId": "}{"`) {
		t.Errorf("get-runtime-status --id=}{: exit %d: %s", code, out)
	}
	// The doctor finds nothing wrong.
	if out, code := e.cli(t, "doctor"); code != 0 || !strings.Contains(out, "no problems found") {
		t.Errorf("doctor: exit %d:\n%s", code, out)
	}
	before := keysOf(t, e)
	for _, id := range ids {
		if err := e.client.PurgeInstance(ctx, id, false); err != nil {
			t.Errorf("purge %q: %v", id, err)
		}
	}
	for _, k := range keysOf(t, e) {
		for _, id := range ids {
			if strings.HasSuffix(k, ":"+id) && !strings.HasSuffix(k, ":lease") && !strings.HasSuffix(k, ":meta") {
				t.Errorf("key %q of %q left after purge (keys before: %d)", k, id, len(before))
			}
		}
	}
}

func keysOf(t *testing.T, e *env) []string {
	keys, err := e.store.Client().Keys(context.Background(), "dw:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "dw:{"+e.hub+"}:") && !strings.HasPrefix(k, "dw:{"+e.hub+":") {
			t.Errorf("key %q is outside the hub's hash tags", k)
		}
	}
	return keys
}

// TestDoctorAndDurabilityCheck checks CheckDurability's warnings and that
// `durablewasm doctor` reports a stuck instance and a pending entry whose
// message was deleted.
func TestDoctorAndDurabilityCheck(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "appendonly is no"},
		{[]string{"--appendonly", "yes", "--maxmemory-policy", "allkeys-lru"}, "maxmemory-policy is allkeys-lru"},
		{[]string{"--appendonly", "yes", "--appendfsync", "no"}, "appendfsync is no"},
		{[]string{"--appendonly", "yes"}, ""},
	} {
		st, err := redisstore.Open(ctx, "redis://"+redistest.StartServer(t, c.args...), "TestHub", redisstore.Options{Partitions: 2})
		if err != nil {
			t.Fatal(err)
		}
		w := st.CheckDurability(ctx)
		st.Close()
		if c.want == "" && len(w) != 0 || c.want != "" && (len(w) != 1 || !strings.Contains(w[0], c.want)) {
			t.Errorf("redis-server %v: warnings %q, want one with %q", c.args, w, c.want)
		}
	}

	e := samplesEnv(t, "redis://"+redistest.StartServer(t))
	e.start("HelloWorld", "lost-start", `"x"`) // no worker: Pending with its start queued
	if out, code := e.cli(t, "doctor"); code != 0 {
		t.Errorf("doctor on a healthy hub: exit %d\n%s", code, out)
	}
	// Deliver the start message to a consumer, then delete it without an ack:
	// a dangling pending entry, and an instance nothing will ever start.
	p := host.PartitionFor("lost-start", e.store.Partitions())
	ctl := fmt.Sprintf("dw:{%s:%d}:ctl", e.hub, p)
	msgs, err := e.store.ReadControl(ctx, p, "ghost", 10, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("read control: %v %v", msgs, err)
	}
	e.store.Client().XDel(ctx, ctl, msgs[0].ID)
	out, code := e.cli(t, "doctor")
	if code != 1 || !strings.Contains(out, "stuck") || !strings.Contains(out, "dangling-pending") || !strings.Contains(out, "appendonly is no") {
		t.Errorf("doctor on a broken hub: exit %d, want 1 with a stuck instance, a dangling entry and the AOF warning:\n%s", code, out)
	}
}
