package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/httpapi"
	"github.com/durablewasm/durablewasm/host/sandbox"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/internal/redistest"
	"github.com/durablewasm/durablewasm/redisstore"
	"github.com/durablewasm/durablewasm/samples"
)

const key = "integration-key-0123456789"

// startSamples runs miniredis with the samples deployed, a worker and the
// HTTP API on a real loopback listener; it returns the API's URL.
func startSamples(t *testing.T, opts httpapi.Options) (string, *client.Client) {
	t.Helper()
	return startSamplesOn(t, "redis://"+miniredis.RunT(t).Addr(), opts)
}

// lockedLog is a log sink shared by goroutines.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSamplesOn is startSamples on the Redis at url. The test fails if the
// worker or the server logs a CROSSSLOT error (a command touching keys of two
// hash slots, which Redis Cluster refuses).
func startSamplesOn(t *testing.T, url string, opts httpapi.Options) (string, *client.Client) {
	t.Helper()
	srv, cl := startSamplesServer(t, url, opts)
	return srv.URL(), cl
}

// startSamplesServer is startSamplesOn returning the started server.
func startSamplesServer(t *testing.T, url string, opts httpapi.Options) (*httpapi.Server, *client.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := redisstore.Open(ctx, url, "TestHub", redisstore.Options{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedLog{}
	quiet := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		if strings.Contains(logs.String(), "CROSSSLOT") {
			t.Errorf("CROSSSLOT errors logged:\n%s", logs.String())
		}
	})
	eng, err := sandbox.NewEngine(ctx, sandbox.EngineOptions{CacheDir: filepath.Join(os.TempDir(), "durablewasm-test-cache"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	cl := client.New(store, eng)
	if _, err := cl.Deploy(ctx, "samples", samples.Wasm); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = worker.New(store, eng, worker.Options{Logger: quiet, LeaseTTL: 2 * time.Second}).Run(ctx)
	}()
	opts.Addr, opts.HubName = "127.0.0.1:0", "TestHub"
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	srv, err := httpapi.New(cl, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Close(context.Background())
		cancel()
		<-done
		eng.Close(context.Background())
		store.Close()
	})
	// Warm up: compile the module and run one instance, so that timing
	// below does not include the first compilation.
	st, err := cl.StartNew(ctx, client.StartOptions{FunctionName: "E1_HelloSequence"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if _, err := cl.WaitForCompletion(wctx, st.InstanceID, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return srv, cl
}

func call(t *testing.T, method, url, ctype, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// The example of the Durable Functions docs, as written, against a server
// on loopback with auth disabled (as `durablewasm up` runs it).
func TestSeedExampleStartAndWait(t *testing.T) {
	base, _ := startSamples(t, httpapi.Options{DisableAuth: true})
	resp, body := call(t, "POST", base+"/orchestrators/E1_HelloSequence/wait?timeout=2&retryInterval=0.5", "", "")
	if resp.StatusCode != 200 || body != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	// The same through the webhook route's wait mode.
	resp, body = call(t, "POST", base+"/runtime/webhooks/durabletask/orchestrators/E1_HelloSequence?timeout=5&pollingInterval=0.1", "", "")
	if resp.StatusCode != 200 || body != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
		t.Fatalf("webhook wait: %d %s", resp.StatusCode, body)
	}
}

// TestInstanceLifecycleOverHTTP runs on miniredis and on a 3-master Redis
// Cluster (listing and purging by filter read every partition, i.e. every
// master).
func TestInstanceLifecycleOverHTTP(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		testInstanceLifecycle(t, "redis://"+miniredis.RunT(t).Addr())
	})
	t.Run("cluster", func(t *testing.T) {
		testInstanceLifecycle(t, redistest.StartCluster(t, 3).URL())
	})
}

func testInstanceLifecycle(t *testing.T, url string) {
	base, _ := startSamplesOn(t, url, httpapi.Options{Keys: []string{key}})
	wh := base + "/runtime/webhooks/durabletask"
	q := "?code=" + key

	// Start an eternal counter and read its check-status URLs.
	resp, body := call(t, "POST", wh+"/orchestrators/Counter/c1"+q, "application/json", "5")
	if resp.StatusCode != 202 {
		t.Fatalf("start: %d %s", resp.StatusCode, body)
	}
	var cs httpapi.CheckStatusPayload
	_ = json.Unmarshal([]byte(body), &cs)
	if resp.Header.Get("Location") != cs.StatusQueryGetURI || !strings.HasSuffix(cs.StatusQueryGetURI, "&code="+key) {
		t.Fatalf("check-status: %s", body)
	}
	status := func(url string) (int, map[string]any) {
		t.Helper()
		resp, body := call(t, "GET", url, "", "")
		var p map[string]any
		_ = json.Unmarshal([]byte(body), &p)
		return resp.StatusCode, p
	}
	waitFor := func(url string, ok func(int, map[string]any) bool) map[string]any {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, p := status(url)
			if ok(code, p) {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out: %d %v", code, p)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(cs.StatusQueryGetURI, func(code int, p map[string]any) bool { return code == 202 && p["customStatus"] == 5.0 })
	// Same id while running: 409.
	if resp, body := call(t, "POST", wh+"/orchestrators/Counter/c1"+q, "", ""); resp.StatusCode != 409 {
		t.Fatalf("duplicate: %d %s", resp.StatusCode, body)
	}
	// Raise events through the URL template.
	send := strings.Replace(cs.SendEventPostURI, "{eventName}", "operation", 1)
	if resp, body := call(t, "POST", send, "text/plain", `"incr"`); resp.StatusCode != 400 {
		t.Fatalf("text/plain event: %d %s", resp.StatusCode, body)
	}
	if resp, body := call(t, "POST", send, "application/json", `"incr"`); resp.StatusCode != 202 || body != "" {
		t.Fatalf("event: %d %s", resp.StatusCode, body)
	}
	waitFor(cs.StatusQueryGetURI, func(code int, p map[string]any) bool { return p["customStatus"] == 6.0 })
	// Suspend, resume.
	if resp, _ := call(t, "POST", strings.Replace(cs.SuspendPostURI, "{text}", "pause", 1), "", ""); resp.StatusCode != 202 {
		t.Fatalf("suspend: %d", resp.StatusCode)
	}
	waitFor(cs.StatusQueryGetURI, func(code int, p map[string]any) bool { return p["runtimeStatus"] == "Suspended" && code == 202 })
	if resp, _ := call(t, "POST", strings.Replace(cs.ResumePostURI, "{text}", "go", 1), "", ""); resp.StatusCode != 202 {
		t.Fatalf("resume: %d", resp.StatusCode)
	}
	waitFor(cs.StatusQueryGetURI, func(code int, p map[string]any) bool { return p["runtimeStatus"] == "Running" })
	// Purging a running instance is refused (412).
	if resp, body := call(t, "DELETE", cs.PurgeHistoryDeleteURI, "", ""); resp.StatusCode != 412 {
		t.Fatalf("purge running: %d %s", resp.StatusCode, body)
	}
	// Terminate: 202, then Terminated with the reason as output, then 410.
	if resp, _ := call(t, "POST", strings.Replace(cs.TerminatePostURI, "{text}", "enough", 1), "", ""); resp.StatusCode != 202 {
		t.Fatalf("terminate: %d", resp.StatusCode)
	}
	p := waitFor(cs.StatusQueryGetURI, func(code int, p map[string]any) bool { return code == 200 })
	if p["runtimeStatus"] != "Terminated" || p["output"] != "enough" {
		t.Fatalf("terminated: %v", p)
	}
	if resp, _ := call(t, "POST", send, "application/json", `"incr"`); resp.StatusCode != 410 {
		t.Fatalf("event to a terminated instance: %d", resp.StatusCode)
	}
	// History.
	_, p = status(cs.StatusQueryGetURI + "&showHistory=true")
	if h, _ := p["historyEvents"].([]any); len(h) == 0 {
		t.Fatalf("no history: %v", p)
	}
	// Restart under the same id.
	resp, body = call(t, "POST", cs.RestartPostURI+"&restartWithNewInstanceId=false", "", "")
	if resp.StatusCode != 202 || !strings.Contains(body, `"id":"c1"`) {
		t.Fatalf("restart: %d %s", resp.StatusCode, body)
	}
	// The input of the last generation (after ContinueAsNew) is 6.
	waitFor(cs.StatusQueryGetURI, func(code int, p map[string]any) bool { return p["customStatus"] == 6.0 })
	call(t, "POST", send, "application/json", `"end"`)
	p = waitFor(cs.StatusQueryGetURI, func(code int, p map[string]any) bool { return code == 200 })
	if p["runtimeStatus"] != "Completed" || p["output"] != 6.0 {
		t.Fatalf("after end: %v", p)
	}

	// A failing instance: 500 on request, rewind accepted, 412 for others.
	resp, body = call(t, "POST", wh+"/orchestrators/E2_BackupSiteContent/f1"+q+"&timeout=10&pollingInterval=0.05", "", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"runtimeStatus":"Failed"`) {
		t.Fatalf("failing start: %d %s", resp.StatusCode, body)
	}
	if code, _ := status(wh + "/instances/f1" + q + "&returnInternalServerErrorOnFailure=true"); code != 500 {
		t.Fatalf("ISE on failure: %d", code)
	}
	if resp, body := call(t, "POST", wh+"/instances/c1/rewind"+q, "", ""); resp.StatusCode != 412 {
		t.Fatalf("rewind completed: %d %s", resp.StatusCode, body)
	}
	if resp, body := call(t, "POST", wh+"/instances/f1/rewind"+q+"&reason=retry", "", ""); resp.StatusCode != 202 {
		t.Fatalf("rewind failed: %d %s", resp.StatusCode, body)
	}
	waitFor(wh+"/instances/f1"+q, func(code int, p map[string]any) bool { return p["runtimeStatus"] == "Failed" && code == 200 })

	// List with filters and paging.
	var all []map[string]any
	token := ""
	for pages := 0; ; pages++ {
		req, _ := http.NewRequest("GET", wh+"/instances"+q+"&top=1&runtimeStatus=Completed,Failed", nil)
		req.Header.Set("x-ms-continuation-token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var items []map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&items)
		resp.Body.Close()
		if resp.StatusCode != 200 || pages > 10 {
			t.Fatalf("list: %d after %d pages", resp.StatusCode, pages)
		}
		all = append(all, items...)
		if token = resp.Header.Get("x-ms-continuation-token"); token == "" {
			break
		}
	}
	if len(all) != 3 { // warm-up, c1, f1
		t.Fatalf("listed %d: %v", len(all), all)
	}
	// Purge one, then by filter.
	if resp, body := call(t, "DELETE", cs.PurgeHistoryDeleteURI, "", ""); resp.StatusCode != 200 || body != `{"instancesDeleted":1}` {
		t.Fatalf("purge c1: %d %s", resp.StatusCode, body)
	}
	if code, _ := status(cs.StatusQueryGetURI); code != 404 {
		t.Fatalf("after purge: %d", code)
	}
	resp, body = call(t, "DELETE", wh+"/instances"+q+"&createdTimeFrom=2000-01-01T00:00:00.000Z", "", "")
	if resp.StatusCode != 200 || body != `{"instancesDeleted":2}` {
		t.Fatalf("purge by filter: %d %s", resp.StatusCode, body)
	}
	if resp, _ := call(t, "DELETE", wh+"/instances"+q+"&createdTimeFrom=2000-01-01T00:00:00.000Z", "", ""); resp.StatusCode != 404 {
		t.Fatalf("purge nothing: %d", resp.StatusCode)
	}
	// Without the key: 401.
	if resp, _ := call(t, "GET", wh+"/instances", "", ""); resp.StatusCode != 401 {
		t.Fatalf("no key: %d", resp.StatusCode)
	}
}
