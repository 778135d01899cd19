package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var apiURL = regexp.MustCompile(`HTTP API: +(http://[0-9.:]+)/runtime/webhooks/durabletask`)

// startCLI runs the app with args until the test ends and returns the base
// URL of the HTTP API it prints.
func startCLI(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs syncBuffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errs
	done := make(chan int, 1)
	go func() { done <- run(ctx, app, append([]string{"durablewasm"}, args...)) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("%v exited %d: %s", args, code, errs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := apiURL.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("%v exited %d: %s %s", args, code, out.String(), errs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no HTTP API line in %q", out.String())
	return ""
}

func post(t *testing.T, url string, h map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// `up` serves the HTTP API on loopback without a key, and the docs' example
// works against it as written.
func TestUpServesHTTP(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv(systemKeyEnv, "")
	base := startCLI(t, "up", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--log-level", "error")
	var code int
	var body string
	for i := 0; i < 3; i++ { // the first run may include compiling the module
		code, body = post(t, base+"/orchestrators/E1_HelloSequence/wait?timeout=2&retryInterval=0.5", nil)
		if code == 200 {
			break
		}
	}
	if code != 200 || body != `["Hello Tokyo!","Hello Seattle!","Hello London!"]` {
		t.Fatalf("%d %s", code, body)
	}
}

// `serve --http-listen` needs a key from the environment or a file.
func TestServeHTTPWithKey(t *testing.T) {
	m := miniredis.RunT(t)
	url := "redis://" + m.Addr()
	keyFile := filepath.Join(t.TempDir(), "keys")
	const fileKey, envKey = "file-key-0123456789abcdef", "env-key-0123456789abcdef"
	if err := os.WriteFile(keyFile, []byte("# rotated keys\n\n"+fileKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(systemKeyEnv, envKey)
	base := startCLI(t, "serve", "--redis-url", url, "--http-listen", "127.0.0.1:0", "--system-key-file", keyFile, "--log-level", "error")
	start := base + "/runtime/webhooks/durabletask/orchestrators/Nope"
	if code, _ := post(t, start, nil); code != 401 {
		t.Fatalf("without a key: %d", code)
	}
	for _, k := range []string{fileKey, envKey} {
		if code, body := post(t, start, map[string]string{"x-functions-key": k}); code != 400 || !strings.Contains(body, "The function") && !strings.Contains(body, "orchestrator") {
			t.Fatalf("with key %s: %d %s", k, code, body)
		}
	}
}

func TestServeHTTPRefusesUnsafeSetups(t *testing.T) {
	m := miniredis.RunT(t)
	url := "redis://" + m.Addr()
	t.Setenv(systemKeyEnv, "")
	ctx := context.Background()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--http-listen", "127.0.0.1:0"}, "no system key"},
		{[]string{"--http-listen", "0.0.0.0:0", "--http-disable-auth"}, "only on a loopback address"},
		{[]string{"--http-listen", "127.0.0.1:0", "--system-key-file", "/nonexistent/keys"}, "system key file"},
	}
	for _, c := range cases {
		_, errs, code := runCLI(ctx, append([]string{"serve", "--redis-url", url}, c.args...)...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: %d %q, want %q", c.args, code, errs, c.want)
		}
	}
	t.Setenv(systemKeyEnv, "short")
	if _, errs, code := runCLI(ctx, "serve", "--redis-url", url, "--http-listen", "127.0.0.1:0"); code == 0 || !strings.Contains(errs, "at least 16") {
		t.Errorf("short key: %d %q", code, errs)
	}
}
