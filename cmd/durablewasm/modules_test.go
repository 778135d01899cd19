package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/host/client"
)

func TestModulesMigrateDeadLettersCLI(t *testing.T) {
	url := startStack(t)
	ctx := context.Background()
	cli := func(want int, args ...string) string {
		t.Helper()
		out, errs, code := runCLI(ctx, append(args, "--redis-url", url)...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, out, errs)
		}
		return out + errs
	}
	out := cli(0, "modules", "list")
	if !strings.Contains(out, "samples") || !strings.Contains(out, "sha256:") || !strings.Contains(out, "RUNNING") {
		t.Errorf("modules list:\n%s", out)
	}
	var ov client.ModulesOverview
	if err := json.Unmarshal([]byte(cli(0, "modules", "list", "-o", "json")), &ov); err != nil || len(ov.Apps) != 1 || len(ov.Modules) != 1 || ov.Modules[0].Apps[0] != "samples" {
		t.Fatalf("modules list json: %+v %v", ov, err)
	}
	digest := ov.Modules[0].Digest

	cli(0, "start-new", "--function-name", "Counter", "--id", "ctr", "--input", "1")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out, "Running 1") {
		if time.Now().After(deadline) {
			t.Fatalf("modules show never counted the running instance:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
		out = cli(0, "modules", "show", "samples")
	}
	if !strings.Contains(out, "E1_HelloSequence (orchestrator)") || !strings.Contains(out, digest) {
		t.Errorf("modules show:\n%s", out)
	}
	// By digest prefix, scanning finished instances too.
	if out := cli(0, "modules", "show", digest[:20], "--scan-finished", "-o", "json"); !strings.Contains(out, `"finishedCounted": true`) {
		t.Errorf("modules show --scan-finished:\n%s", out)
	}
	if out := cli(1, "modules", "remove", "samples"); !strings.Contains(out, "1 non-finished instance") || !strings.Contains(out, "migrate") {
		t.Errorf("modules remove while running:\n%s", out)
	}
	if out := cli(1, "modules", "remove", digest); !strings.Contains(out, "app(s) samples point at it") {
		t.Errorf("modules remove digest in use:\n%s", out)
	}
	cli(1, "modules", "show", "nothing-like-this")
	cli(2, "modules")
	cli(2, "modules", "show")

	if out := cli(0, "migrate", "--app", "samples", "--dry-run"); !strings.Contains(out, "Dry run: 0 instance(s)") {
		t.Errorf("migrate --dry-run:\n%s", out)
	}
	if out := cli(0, "migrate", "--app", "samples", "--id", "ctr"); !strings.Contains(out, "skipped: already on the target module") {
		t.Errorf("migrate --id:\n%s", out)
	}
	cli(1, "migrate", "--app", "nope")
	cli(1, "migrate", "--app", "samples", "--to", "sha256:00000000")

	if out := cli(0, "dead-letters", "list"); !strings.Contains(out, "PARTITION") {
		t.Errorf("dead-letters list:\n%s", out)
	}
	if out := cli(0, "dead-letters", "list", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("dead-letters list json: %s", out)
	}
	cli(1, "dead-letters", "replay", "1-0")
	cli(2, "dead-letters", "replay")

	cli(0, "terminate", "--id", "ctr", "--reason", "done")
	cli(1, "wait", "--id", "ctr", "--timeout", "20s", "--retry-interval", "50ms") // exit 1: it ended Terminated
	if out := cli(0, "modules", "remove", "samples"); !strings.Contains(out, "Removed app samples and its module") {
		t.Errorf("modules remove:\n%s", out)
	}
	if err := json.Unmarshal([]byte(cli(0, "modules", "list", "-o", "json")), &ov); err != nil || len(ov.Apps) != 0 || len(ov.Modules) != 0 {
		t.Errorf("after remove: %+v %v", ov, err)
	}
}
