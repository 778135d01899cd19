package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
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
// (longer) HTTP timeout: the server sees the request canceled, and the
// activity, parked on it, fails with its deadline.
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
	// The activity was parked on the request (asynchronous activities):
	// at its deadline the host drops it and fails the task.
	st := e.wait("slow", 30*time.Second)
	if st.Status != abi.StatusFailed || !strings.Contains(dfjson.FailureText(st.Failure), "the activity ran longer than its deadline of 1s") {
		t.Errorf("slow: %s %s %s", st.Status, st.Output, dfjson.FailureText(st.Failure))
	}
}

// TestParkedActivitiesShareAnInstance: activities waiting on outbound HTTP
// are parked, not holding a module instance each. 200 activities must all
// be in flight at once for the server to answer any of them, on a worker
// allowed one orchestration and two activity instances: with an instance
// per in-flight activity they would never all arrive.
func TestParkedActivitiesShareAnInstance(t *testing.T) {
	const n = 200
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if arrived++; arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			fmt.Fprint(w, "together")
		case <-time.After(20 * time.Second):
			fmt.Fprint(w, "alone")
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	e := newEnv(t, miniURL(t))
	if _, err := e.client.DeployWithSettings(context.Background(), "caps", buildGuest(t, "testdata/guests/caps"), host.AppSettings{
		Config: map[string]string{"greeting": "hi"}, HTTPAllow: []string{u.Host}, HTTPTimeout: 30 * time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	e.worker(worker.Options{OrchestrationInstances: 1, ActivityInstances: 2})
	for i := range n {
		e.start("Caps", fmt.Sprintf("io-%d", i), `"`+srv.URL+`"`)
	}
	for i := range n {
		if st := e.wait(fmt.Sprintf("io-%d", i), 60*time.Second); st.Output != `"hi | together"` {
			t.Fatalf("io-%d: %s %s %v (the activities were not all in flight at once)", i, st.Status, st.Output, st.Failure)
		}
	}
	if got := e.workerEngines[0].Instantiations(); got > 3 {
		t.Errorf("the worker made %d module instances for %d parked activities; want at most 3 (1 orchestration + 2 activity instances)", got, n)
	}
}

// TestParkedActivityRunsAgainAfterItsWorkerStops: an activity parked on an
// HTTP request when its worker is stopped (and its grace passes) is not
// reported; it stays pending and another worker runs it again — within
// about a lease TTL (2 s here), since the stopped worker is no longer
// alive, not after the visibility timeout (5 minutes, the default).
func TestParkedActivityRunsAgainAfterItsWorkerStops(t *testing.T) {
	first := make(chan struct{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			close(first)
			<-r.Context().Done() // parked until its worker gives up
			return
		}
		fmt.Fprint(w, "second")
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	e := newEnv(t, miniURL(t))
	if _, err := e.client.DeployWithSettings(context.Background(), "caps", buildGuest(t, "testdata/guests/caps"), host.AppSettings{
		Config: map[string]string{"greeting": "hi"}, HTTPAllow: []string{u.Host}, HTTPTimeout: 30 * time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	stop := e.worker(worker.Options{ShutdownGrace: 100 * time.Millisecond})
	e.start("Caps", "parked", `"`+srv.URL+`"`)
	select {
	case <-first:
	case <-time.After(20 * time.Second):
		t.Fatal("the activity never made its request")
	}
	stop()
	e.worker(worker.Options{})
	if st := e.wait("parked", 30*time.Second); st.Output != `"hi | second"` {
		t.Fatalf("parked: %s %s %v", st.Status, st.Output, dfjson.FailureText(st.Failure))
	}
	if c := calls.Load(); c != 2 {
		t.Errorf("%d requests; want 2 (the parked one, then the run on the second worker)", c)
	}
}

// TestDurableHTTP: an orchestrator's CallHTTP is performed by the host
// (no activity of the module), follows 202 + Location polling on durable
// timers, is recorded in history, and is refused outside the allowlist.
func TestDurableHTTP(t *testing.T) {
	var polls atomic.Int32
	var mux http.ServeMux
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test") != "1" {
			http.Error(w, "missing header", 400)
			return
		}
		w.Header().Set("Location", "http://"+r.Host+"/status")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		if polls.Add(1) < 2 {
			w.Header().Set("Location", "http://"+r.Host+"/status")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusAccepted)
			return
		}
		fmt.Fprint(w, "done")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/forever", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://"+r.Host+"/forever")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusAccepted)
	})
	srv := httptest.NewServer(&mux)
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secret") }))
	defer other.Close()
	u, _ := url.Parse(srv.URL)
	e := newEnv(t, miniURL(t))
	if _, err := e.client.DeployWithSettings(context.Background(), "caps", buildGuest(t, "testdata/guests/caps"), host.AppSettings{
		HTTPAllow: []string{u.Host}, HTTPTimeout: time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	e.worker(worker.Options{})
	in := func(path string, timeout time.Duration) string {
		return fmt.Sprintf(`{"URL":%q,"Timeout":%d}`, path, timeout)
	}
	e.start("DurableHTTP", "poll", in(srv.URL+"/start", 0))
	e.start("DurableHTTP", "refused", in(other.URL+"/", 0))
	e.start("DurableHTTP", "slow", in(srv.URL+"/slow", 0))
	e.start("DurableHTTP", "forever", in(srv.URL+"/forever", 2*time.Second))
	if st := e.wait("poll", 30*time.Second); st.Output != `"200 done"` {
		t.Errorf("poll: %s %s %v", st.Status, st.Output, st.Failure)
	}
	if p := polls.Load(); p != 2 {
		t.Errorf("%d polls of the Location; want 2", p)
	}
	if st := e.wait("refused", 30*time.Second); !strings.Contains(st.Output, "HTTPError") || !strings.Contains(st.Output, "is not in the module's HTTP allowlist") {
		t.Errorf("refused: %s", st.Output)
	}
	if st := e.wait("slow", 30*time.Second); !strings.Contains(st.Output, "timed out after 1s") {
		t.Errorf("slow: %s", st.Output)
	}
	if st := e.wait("forever", 30*time.Second); !strings.Contains(st.Output, "after the timeout of 2s") {
		t.Errorf("forever: %s", st.Output)
	}
	// The calls and the polling timers are in history.
	hist, err := e.client.GetHistory(context.Background(), "poll")
	if err != nil {
		t.Fatal(err)
	}
	var scheduled, timers int
	for _, ev := range hist {
		switch ev.Type {
		case abi.EventTaskScheduled:
			if ev.Name == abi.ActivityHTTP {
				scheduled++
			}
		case abi.EventTimerCreated:
			timers++
		}
	}
	if scheduled != 3 || timers != 2 {
		t.Errorf("history has %d %s calls and %d timers; want 3 and 2", scheduled, abi.ActivityHTTP, timers)
	}
}
