package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/replay"
)

// TestHostileGuestsAreContained runs orchestrators that loop forever, block
// outside await, panic and exhaust memory next to a well-behaved one: each
// bad one fails with a clear error and the worker keeps serving the rest.
func TestHostileGuestsAreContained(t *testing.T) {
	e := newEnv(t, miniURL(t))
	e.engineOpts = host.EngineOptions{StepTimeout: 3 * time.Second, MemoryLimitBytes: 256 << 20}
	e.deploy("hostile", buildGuest(t, "testdata/guests/hostile"))
	e.worker(host.WorkerOptions{OrchestrationInstances: 1})
	cases := []struct {
		fn, code, typ, msg string
	}{
		{"Spin", replay.CodeGuestTrap, "GuestTrap", "deadline"},
		{"Block", replay.CodeStuck, "Stuck", "blocked"},
		{"Panic", "", "Panic", "nil map"},
		{"Grow", replay.CodeGuestTrap, "GuestTrap", "of the 256 MiB limit"},
		// JSON is checked by the host, for guests in any language.
		{"BadOutput", replay.CodeInvalidJSON, "InvalidJSON", "orchestrator output is not valid JSON"},
		{"BadInput", replay.CodeInvalidJSON, "InvalidJSON", "input of activity Echo is not valid JSON"},
		{"BadActivityResult", "", "OrchestratorError", "the activity's result is not valid JSON"},
	}
	for _, c := range cases {
		e.start(c.fn, c.fn, "")
		e.start("Fine", "fine-"+c.fn, "")
	}
	for _, c := range cases {
		st := e.wait(c.fn, 60*time.Second)
		if st.Status != abi.StatusFailed || st.Failure == nil {
			t.Errorf("%s: status %s, want Failed", c.fn, st.Status)
			continue
		}
		f := st.Failure
		t.Logf("%s: %s", c.fn, host.FailureText(f))
		if f.Code != c.code || f.Type != c.typ || !strings.Contains(f.Message+f.Stack, c.msg) {
			t.Errorf("%s: failure %+v; want code %q type %q mentioning %q", c.fn, f, c.code, c.typ, c.msg)
		}
		if st := e.wait("fine-"+c.fn, 60*time.Second); st.Status != abi.StatusCompleted || st.Output != `"ok"` {
			t.Errorf("fine-%s: %s %s %v", c.fn, st.Status, st.Output, st.Failure)
		}
	}
}
