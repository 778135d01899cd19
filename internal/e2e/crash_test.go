package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/dfjson"
	"github.com/durablewasm/durablewasm/internal/redistest"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// buildCLI builds the durablewasm binary once per test binary.
func buildCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "durablewasm-cli")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "durablewasm")
		cmd := exec.Command("go", "build", "-o", cliPath, "./cmd/durablewasm")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("build cli: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// serveProcess runs `durablewasm serve` as a separate process, with extra
// flags after the test's defaults.
func serveProcess(t *testing.T, url string, extra ...string) *exec.Cmd {
	t.Helper()
	args := append([]string{"serve", "--redis-url", url, "--task-hub-name", "TestHub",
		"--lease-ttl", "2s", "--visibility-timeout", "2s", "--log-level", "warn"}, extra...)
	cmd := exec.Command(buildCLI(t), args...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Logf("worker %d log:\n%s", cmd.Process.Pid, logs.String())
		}
	})
	return cmd
}

// startSequencesAndFanOuts starts n instances named <prefix><i>, alternately
// E1_HelloSequence and E2_BackupSiteContent, and returns their expected
// outputs by id.
func (e *env) startSequencesAndFanOuts(prefix string, n int) map[string]string {
	e.t.Helper()
	want := map[string]string{}
	for i := 0; i < n; i++ {
		id := fmt.Sprint(prefix, i)
		if i%2 == 0 {
			e.start("E1_HelloSequence", id, "")
			want[id] = `["Hello Tokyo!","Hello Seattle!","Hello London!"]`
		} else {
			dir := fmt.Sprint("/", prefix, i)
			e.start("E2_BackupSiteContent", id, `"`+dir+`"`)
			want[id] = fmt.Sprint(backupTotal(dir))
		}
	}
	return want
}

// TestWorkerKilledMidOrchestration kills a worker process with SIGKILL while
// orchestrations are in flight, starts a fresh one, and checks that every
// instance completes with the right output.
func TestWorkerKilledMidOrchestration(t *testing.T) {
	url := "redis://" + redistest.StartServer(t)
	e := samplesEnv(t, url)
	ctx := context.Background()
	first := serveProcess(t, url)
	const n = 40
	want := e.startSequencesAndFanOuts("k", n)
	// Kill the worker as soon as some work has been done but not all.
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := 0
		for id := range want {
			if st, err := e.client.GetStatus(ctx, id); err == nil && st.Status.Terminal() {
				done++
			}
		}
		h, _ := e.client.GetHistory(ctx, "k1")
		if done < n && countType(h, abi.EventTaskScheduled) > 0 {
			t.Logf("killing the worker with %d of %d instances finished", done, n)
			break
		}
		if done == n || time.Now().After(deadline) {
			t.Fatalf("could not catch the worker mid-run (%d of %d finished)", done, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	serveProcess(t, url)
	for id, w := range want {
		st := e.wait(id, 60*time.Second)
		if st.Status != abi.StatusCompleted || st.Output != w {
			t.Errorf("%s: %s output %s failure %v; want %s", id, st.Status, st.Output, st.Failure, w)
		}
	}
}

// TestServeStopsCleanlyOnSIGTERM checks that SIGTERM makes serve release its
// partition leases and exit 0, so another worker can take over at once.
func TestServeStopsCleanlyOnSIGTERM(t *testing.T) {
	url := "redis://" + redistest.StartServer(t)
	e := samplesEnv(t, url)
	ctx := context.Background()
	cmd := serveProcess(t, url)
	e.start("E1_HelloSequence", "before", "")
	e.wait("before", 30*time.Second)
	lease := fmt.Sprintf("dw:{%s:0}:lease", e.hub)
	if owner := e.store.Client().HGet(ctx, lease, "owner").Val(); owner == "" {
		t.Fatal("the worker holds no lease on partition 0")
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM", err)
	}
	t.Logf("serve stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	for p := 0; p < e.store.Partitions(); p++ {
		if owner := e.store.Client().HGet(ctx, fmt.Sprintf("dw:{%s:%d}:lease", e.hub, p), "owner").Val(); owner != "" {
			t.Errorf("partition %d still leased to %q after a clean stop", p, owner)
		}
	}
}

// TestKilledWorkersActivityRunsAgainWithinTheLeaseTTL: a worker process
// SIGKILLed while its activity is parked on an HTTP request leaves the
// item in its consumer's pending list; with the default visibility timeout
// of 5 minutes, another worker runs it again within seconds, because the
// dead worker's liveness record expires with the lease TTL (2 s).
func TestKilledWorkersActivityRunsAgainWithinTheLeaseTTL(t *testing.T) {
	url := "redis://" + redistest.StartServer(t)
	first := make(chan struct{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			close(first)
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, "again")
	}))
	defer srv.Close()
	u, _ := neturl.Parse(srv.URL)
	e := newEnv(t, url)
	if _, err := e.client.DeployWithSettings(context.Background(), "caps", buildGuest(t, "testdata/guests/caps"), host.AppSettings{
		Config: map[string]string{"greeting": "hi"}, HTTPAllow: []string{u.Host}, HTTPTimeout: time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	w := serveProcess(t, url, "--visibility-timeout", "5m")
	e.start("Caps", "killed", `"`+srv.URL+`"`)
	select {
	case <-first:
	case <-time.After(60 * time.Second):
		t.Fatal("the activity never made its request")
	}
	if err := w.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = w.Wait()
	killed := time.Now()
	serveProcess(t, url, "--visibility-timeout", "5m")
	st := e.wait("killed", 60*time.Second)
	if st.Output != `"hi | again"` {
		t.Fatalf("killed: %s %s %s", st.Status, st.Output, dfjson.FailureText(st.Failure))
	}
	t.Logf("completed %s after the SIGKILL (visibility timeout 5m, lease TTL 2s)", time.Since(killed).Round(100*time.Millisecond))
}
