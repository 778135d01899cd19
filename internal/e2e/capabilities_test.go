package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/dfjson"
	"github.com/durablewasm/durablewasm/host/worker"
)

// TestActivityCapabilities deploys a module with a configuration value and
// an HTTP allowlist: the activity reads the value and reaches the allowed
// host, while another host is refused with a message naming the allowlist;
// orchestrators cannot use either.
func TestActivityCapabilities(t *testing.T) {
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "pong") }))
	defer allowed.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secret") }))
	defer other.Close()
	u, _ := url.Parse(allowed.URL)

	e := newEnv(t, miniURL(t))
	wasm := buildGuest(t, "testdata/guests/caps")
	if _, err := e.client.DeployWithSettings(context.Background(), "caps", wasm, host.AppSettings{
		Config: map[string]string{"greeting": "hi"}, HTTPAllow: []string{u.Host}, HTTPTimeout: 5 * time.Second,
		MaxPayloadBytes: 64 << 10,
	}); err != nil {
		t.Fatal(err)
	}
	e.worker(worker.Options{})
	e.start("Caps", "ok", `"`+allowed.URL+`"`)
	e.start("Caps", "refused", `"`+other.URL+`"`)
	e.start("Big", "small", "1000")
	e.start("Big", "big", fmt.Sprint(100<<10))
	if st := e.wait("ok", 20*time.Second); st.Output != `"hi | pong"` {
		t.Errorf("allowed host: %s %v", st.Output, st.Failure)
	}
	st := e.wait("refused", 20*time.Second)
	if !strings.Contains(st.Output, "is not in the module's HTTP allowlist (allowed: "+u.Host+")") || strings.Contains(st.Output, "secret") {
		t.Errorf("other host: %s %v", st.Output, st.Failure)
	}
	if st := e.wait("small", 20*time.Second); st.Status != abi.StatusCompleted || st.Output != "1000" {
		t.Errorf("small result: %s %s %v", st.Status, st.Output, st.Failure)
	}
	st = e.wait("big", 20*time.Second)
	if st.Status != abi.StatusFailed || !strings.Contains(dfjson.FailureText(st.Failure), "over the payload limit of 65536 bytes") {
		t.Errorf("big result: %s %s", st.Status, dfjson.FailureText(st.Failure))
	}
}

func TestDeployRefusesBadSettings(t *testing.T) {
	e := newEnv(t, miniURL(t))
	wasm := buildGuest(t, "testdata/guests/caps")
	ctx := context.Background()
	for _, s := range []host.AppSettings{
		{MemoryLimitBytes: 1 << 20},
		{StepTimeout: time.Microsecond},
		{HTTPAllow: []string{"http://example.com/x"}},
	} {
		if _, err := e.client.DeployWithSettings(ctx, "caps", wasm, s); !errors.Is(err, host.ErrInvalidInput) {
			t.Errorf("settings %+v accepted: %v", s, err)
		}
	}
}

// TestPerModuleLimits runs an orchestrator that spins on a module deployed
// with a short step deadline, and one that allocates on a module with a
// small memory limit, next to a well-behaved one on the default settings.
func TestPerModuleLimits(t *testing.T) {
	e := newEnv(t, miniURL(t))
	ctx := context.Background()
	hostile := buildGuest(t, "testdata/guests/hostile")
	if _, err := e.client.DeployWithSettings(ctx, "hostile", hostile, host.AppSettings{StepTimeout: time.Second, MemoryLimitBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	e.worker(worker.Options{})
	e.start("Spin", "spin", "")
	e.start("Grow", "grow", "")
	e.start("Fine", "fine", "")
	// The message names the deadline that stopped it: the module's 1s, not
	// the default 10s.
	if st := e.wait("spin", 30*time.Second); st.Failure == nil || !strings.Contains(st.Failure.Message, "deadline of 1s") {
		t.Errorf("spin: %s %v", st.Status, st.Failure)
	}
	if st := e.wait("grow", 30*time.Second); st.Failure == nil || !strings.Contains(st.Failure.Message, "of the 64 MiB limit") {
		t.Errorf("grow: %s %v", st.Status, dfjson.FailureText(st.Failure))
	}
	if st := e.wait("fine", 30*time.Second); st.Status != abi.StatusCompleted {
		t.Errorf("fine: %s %v", st.Status, st.Failure)
	}
}

// TestActivityDeadlineEndsItsHTTPRequest: an activity's outbound HTTP
// request ends with the activity's deadline, not only with the module's
// (longer) HTTP timeout: the server sees the request canceled.
func TestActivityDeadlineEndsItsHTTPRequest(t *testing.T) {
	canceled := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(8 * time.Second):
			fmt.Fprint(w, "late")
		case <-r.Context().Done():
			canceled <- struct{}{}
		}
	}))
	defer slow.Close()
	u, _ := url.Parse(slow.URL)
	e := newEnv(t, miniURL(t))
	if _, err := e.client.DeployWithSettings(context.Background(), "caps", buildGuest(t, "testdata/guests/caps"), host.AppSettings{
		HTTPAllow: []string{u.Host}, HTTPTimeout: 20 * time.Second, ActivityTimeout: time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	e.worker(worker.Options{})
	e.start("Caps", "slow", `"`+slow.URL+`"`)
	select {
	case <-canceled:
	case <-time.After(7 * time.Second):
		t.Fatal("the HTTP request outlived the activity's 1 s deadline (the server was never told)")
	}
	st := e.wait("slow", 30*time.Second)
	t.Logf("slow: %s %s %s", st.Status, st.Output, dfjson.FailureText(st.Failure))
}
