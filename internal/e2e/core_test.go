package e2e

import (
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
)

func TestHelloSequenceOnMiniredis(t *testing.T) {
	e := newEnv(t, miniURL(t))
	e.deploy("samples", buildGuest(t, "samples/guest"))
	e.worker(host.WorkerOptions{})
	e.start("E1_HelloSequence", "x1", "")
	st := e.wait("x1", 20*time.Second)
	if st.Status != abi.StatusCompleted || st.Output != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
		t.Fatalf("status %s output %s failure %v", st.Status, st.Output, st.Failure)
	}
}
