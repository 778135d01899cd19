package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/host/dfjson"
	"github.com/durablewasm/durablewasm/internal/redistest"
	"github.com/durablewasm/durablewasm/samples"
)

// TestManagementGuideCommands runs the command lines of the Durable Functions
// guide to managing instances with `func durable` replaced by `durablewasm`
// (only instance ids and file names differ), and checks each does what the
// guide says. It runs on miniredis and on a 3-master Redis Cluster, where no
// command (queries, purges and the task hub deletion scan every master) may
// fail with CROSSSLOT.
func TestManagementGuideCommands(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) { testManagementGuide(t, startStack(t)) })
	t.Run("cluster", func(t *testing.T) {
		testManagementGuide(t, startStackOn(t, redistest.StartCluster(t, 3).URL()))
	})
}

func testManagementGuide(t *testing.T, url string) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Chdir(dir)
	os.Setenv("DURABLEWASM_REDIS_URL", url)
	defer os.Unsetenv("DURABLEWASM_REDIS_URL")
	os.WriteFile(filepath.Join(dir, "counter-data.json"), []byte(`"Seattle"`), 0o644)
	os.WriteFile(filepath.Join(dir, "samples.wasm"), samples.Wasm, 0o644)
	os.WriteFile(filepath.Join(dir, "eventdata.json"), []byte(`"incr"`), 0o644)

	must := func(want string, args ...string) string {
		t.Helper()
		out, errs, code := runCLI(ctx, args...)
		if strings.Contains(out+errs, "CROSSSLOT") {
			t.Errorf("durablewasm %s: CROSSSLOT\nstdout: %s\nstderr: %s", strings.Join(args, " "), out, errs)
		}
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("durablewasm %s: exit %d\nstdout: %s\nstderr: %s\nwant stdout to contain %q", strings.Join(args, " "), code, out, errs, want)
		}
		return out
	}
	// The guide's start in another hub, where the samples are deployed first.
	must("Deployed 'samples'", "deploy", "samples.wasm", "--task-hub-name", "TestTaskHub")
	must("Started 'HelloWorld'", "start-new", "--function-name", "HelloWorld", "--input", "@counter-data.json", "--task-hub-name", "TestTaskHub")
	// The default hub is where the samples are deployed; the guide's ids.
	must("Started 'HelloWorld'", "start-new", "--function-name", "HelloWorld", "--input", "@counter-data.json", "--id", "0ab8c55a66644d68a3a8b220b12d209c")
	waitStatus(t, url, "0ab8c55a66644d68a3a8b220b12d209c", "Completed")
	out := must(`"runtimeStatus": "Completed"`, "get-runtime-status", "--id", "0ab8c55a66644d68a3a8b220b12d209c", "--show-input", "true", "--show-output", "true")
	if !strings.Contains(out, `"input": "Seattle"`) || !strings.Contains(out, `"output": "Hello Seattle!"`) {
		t.Fatalf("get-runtime-status with input and output: %s", out)
	}
	must("ExecutionCompleted", "get-history", "--id", "0ab8c55a66644d68a3a8b220b12d209c")
	must("Continuation token for next set of results: ''", "get-instances")
	must("0ab8c55a66644d68a3a8b220b12d209c", "get-instances", "--created-after", time.Now().Add(-time.Hour).UTC().Format("2006-01-02T15:04:05Z"), "--created-before", time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04Z"), "--top", "15")
	out = must("Continuation token", "get-instances", "--created-after", "2018-03-10T13:57:31Z", "--created-before", "2018-03-10T23:59Z", "--top", "15")
	if !strings.HasPrefix(out, "[]") {
		t.Fatalf("get-instances for 2018 must be empty: %s", out)
	}

	// Events, terminate, rewind on a running counter and a failed instance.
	must("Started 'Counter'", "start-new", "--function-name", "Counter", "--input", "0", "--id", "counter1")
	must("Raised event 'MyEvent'", "raise-event", "--id", "counter1", "--event-name", "MyEvent", "--event-data", "@eventdata.json")
	must("Raised event 'operation'", "raise-event", "--id", "counter1", "--event-name", "operation", "--event-data", "@eventdata.json")
	must("Successfully terminated 'counter1'", "terminate", "--id", "counter1", "--reason", "Found a bug in the orchestration")
	out = must(`"output": "Found a bug in the orchestration"`, "get-runtime-status", "--id", "counter1", "--show-output", "true")
	_ = out
	_, errs, code := runCLI(ctx, "rewind", "--id", "counter1", "--reason", "Orchestrator failed and needs to be revived.")
	if code != 1 || !strings.Contains(errs, "only Failed instances can be rewound") {
		t.Fatalf("rewind of a terminated instance: %d %s", code, errs)
	}
	must("Started 'E3_Monitor'", "start-new", "--function-name", "E3_Monitor", "--input", `{"location":""}`, "--id", "failing")
	waitStatus(t, url, "failing", "Failed")
	must("Status before rewind: Failed", "rewind", "--id", "failing", "--reason", "Orchestrator failed and needs to be revived.")

	// Purge: only finished instances, filtered as in the guide.
	out = must("Instances deleted: ", "purge-history", "--created-before", "2018-11-14T19:35:00.0000000Z", "--runtime-status", "failed")
	if !strings.Contains(out, "Instances deleted: 0") {
		t.Fatalf("nothing was created before 2018: %s", out)
	}
	waitStatus(t, url, "failing", "Failed")
	must("Instances deleted: 1", "purge-history", "--created-before", time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano), "--runtime-status", "failed")
	if _, errs, code := runCLI(ctx, "get-runtime-status", "--id", "failing"); code != 1 || !strings.Contains(errs, "no instance") {
		t.Fatalf("purged instance still there: %d %s", code, errs)
	}

	// Delete a task hub (answering the confirmation), then the hub is empty.
	out, errs, code = runCLIInput(ctx, "y\n", "delete-task-hub", "--task-hub-name", "TestTaskHub")
	if code != 0 || !strings.Contains(out, "Task hub 'TestTaskHub' successfully deleted") {
		t.Fatalf("delete-task-hub: %d %s %s", code, out, errs)
	}
	// The hub is gone: reading it says so (and creates nothing).
	if out, errs, code := runCLI(ctx, "get-instances", "--task-hub-name", "TestTaskHub"); code != 1 || !strings.Contains(errs, `no task hub "TestTaskHub"`) || !strings.Contains(errs, "existing hubs: DurableFunctionsHub") {
		t.Fatalf("get-instances on a deleted hub: %d %s %s", code, out, errs)
	}
	if _, _, code := runCLIInput(ctx, "n\n", "delete-task-hub"); code != 1 {
		t.Fatal("delete-task-hub without confirmation must do nothing and exit 1")
	}
	must("0ab8c55a66644d68a3a8b220b12d209c", "get-instances", "--runtime-status", "Completed", "Terminated")
}

func waitStatus(t *testing.T, url, id, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, code := runCLI(context.Background(), "get-runtime-status", "--id", id, "--redis-url", url)
		var st dfjson.StatusPayload
		if code == 0 && json.Unmarshal([]byte(out), &st) == nil && st.RuntimeStatus == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %s: %s", id, want, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
