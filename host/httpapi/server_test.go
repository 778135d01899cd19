package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/client"
)

func TestWaitMode(t *testing.T) {
	cases := []struct {
		name, target string
		finish       abi.RuntimeStatus // set shortly after the start; "" = never
		output       string
		code         int
		shape        shape
		body         string
	}{
		{"webhook completes", wh + "/orchestrators/Hello/w1?timeout=2&pollingInterval=0.02", abi.StatusCompleted, `["a","b"]`, 200, shOutput, `["a","b"]`},
		{"webhook null output", wh + "/orchestrators/Hello/w1?timeout=2&pollingInterval=0.02", abi.StatusCompleted, ``, 200, shOutput, `null`},
		{"webhook times out", wh + "/orchestrators/Hello/w1?timeout=0.1&pollingInterval=0.02", "", "", 202, shCheckStatus, ""},
		{"webhook failed", wh + "/orchestrators/Hello/w1?timeout=2&pollingInterval=0.02", abi.StatusFailed, "", 200, shStatus, ""},
		{"webhook terminated", wh + "/orchestrators/Hello/w1?timeout=2&pollingInterval=0.02&showInput=false", abi.StatusTerminated, "stop", 200, shStatus, ""},
		{"no wait without pollingInterval", wh + "/orchestrators/Hello/w1?timeout=2", abi.StatusCompleted, "1", 202, shCheckStatus, ""},
		{"no wait with a bad timeout", wh + "/orchestrators/Hello/w1?timeout=soon&pollingInterval=1", abi.StatusCompleted, "1", 202, shCheckStatus, ""},
		{"starter completes", "/orchestrators/Hello/wait?timeout=2&retryInterval=0.02", abi.StatusCompleted, `"done"`, 200, shOutput, `"done"`},
		{"starter under /api", "/api/orchestrators/Hello/wait?timeout=2&pollingInterval=0.02", abi.StatusCompleted, `3`, 200, shOutput, `3`},
		{"starter times out", "/orchestrators/Hello/wait?timeout=0.1&retryInterval=0.05", "", "", 202, shCheckStatus, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, f := newTestServer(t, nil)
			var wg sync.WaitGroup
			if c.finish != "" {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 100; i++ {
						time.Sleep(10 * time.Millisecond)
						f.mu.Lock()
						var id string
						for k, st := range f.instances {
							if st.Status == abi.StatusPending && k != "pend" {
								id = k
							}
						}
						f.mu.Unlock()
						if id != "" {
							time.Sleep(30 * time.Millisecond)
							f.set(id, c.finish, c.output)
							return
						}
					}
				}()
			}
			w := serve(s, request{method: "POST", target: c.target, header: key(nil)})
			wg.Wait()
			if w.Code != c.code {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			checkShape(t, w, c.shape, "")
			if c.body != "" && w.Body.String() != c.body {
				t.Fatalf("body %s, want %s", w.Body, c.body)
			}
			if c.shape == shOutput && (w.Header().Get("Location") != "" || w.Header().Get("Content-Type") != contentTypeJSON) {
				t.Fatalf("headers %v", w.Header())
			}
		})
	}
}

func TestWaitModeRejectsIntervalOverTimeout(t *testing.T) {
	for _, target := range []string{wh + "/orchestrators/Hello/w2?timeout=1&pollingInterval=2", "/orchestrators/Hello/wait?timeout=1&retryInterval=2",
		"/orchestrators/Hello/wait?timeout=0.5", wh + "/instances/done/restart?timeout=1&pollingInterval=3"} {
		s, f := newTestServer(t, nil)
		n := len(f.instances)
		w := serve(s, request{method: "POST", target: target, header: key(nil)})
		if w.Code != 400 {
			t.Fatalf("%s: %d %s", target, w.Code, w.Body)
		}
		checkShape(t, w, shException, "")
		if len(f.instances) != n || f.instances["done"].Status != abi.StatusCompleted {
			t.Fatalf("%s: an instance was started anyway", target)
		}
	}
}

func TestWaitIsCappedByMaxWait(t *testing.T) {
	s, _ := newTestServer(t, func(o *Options) { o.MaxWait = 100 * time.Millisecond })
	// Uncapped, the request would wait for an hour (and the test time out);
	// capped, it answers 202 with the check-status payload.
	w := serve(s, request{method: "POST", target: "/orchestrators/Hello/wait?timeout=3600&retryInterval=0.01", header: key(nil)})
	if w.Code != 202 || !strings.Contains(w.Body.String(), "statusQueryGetUri") {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}

func TestOptions(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		err  string
	}{
		{"no key", Options{}, "no system key"},
		{"short key", Options{Keys: []string{"short"}}, "at least 16"},
		{"auth off on all interfaces", Options{DisableAuth: true, Addr: ":7071"}, "only on a loopback address"},
		{"auth off on a LAN address", Options{DisableAuth: true, Addr: "192.168.1.5:7071"}, "only on a loopback address"},
		{"auth off on loopback", Options{DisableAuth: true}, ""},
		{"auth off on localhost", Options{DisableAuth: true, Addr: "localhost:0"}, ""},
		{"auth off on ::1", Options{DisableAuth: true, Addr: "[::1]:7071"}, ""},
		{"key", Options{Keys: []string{testKey}, Addr: "0.0.0.0:7071"}, ""},
	}
	for _, c := range cases {
		_, err := New(client.New(newFakeStore(), nil), c.o)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.err)
		}
	}
	s, _ := newTestServer(t, func(o *Options) { o.WriteTimeout = 10 * time.Second })
	o := s.Options()
	if o.Addr != DefaultAddr || o.HubName != DefaultHubName || o.MaxBodyBytes != 4<<20 || o.MaxWait != 5*time.Second ||
		o.ReadHeaderTimeout != DefaultReadHeaderTimeout || o.IdleTimeout != DefaultIdleTimeout {
		t.Fatalf("defaults %+v", o)
	}
}

func TestKeyNeverLogged(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, f := newTestServer(t, func(o *Options) { o.Logger = log })
	f.panicOn = "boom"
	for _, target := range []string{wh + "/instances/run?code=" + testKey, wh + "/instances/boom?code=" + testKey,
		wh + "/instances/run?code=" + testKey + "x", "/nowhere?code=" + testKey} {
		serve(s, request{method: "GET", target: target})
	}
	serve(s, request{method: "GET", target: wh + "/instances/run", header: key(nil)})
	out := logs.String()
	if strings.Contains(out, testKey) || strings.Contains(out, "code=") {
		t.Fatalf("the key was logged:\n%s", out)
	}
	if !strings.Contains(out, "path="+wh+"/instances/run") || !strings.Contains(out, "status=401") || !strings.Contains(out, "panicked") {
		t.Fatalf("request lines missing:\n%s", out)
	}
}

// startReal runs s on a real loopback listener.
func startReal(t *testing.T, mod func(*Options)) (*Server, *fakeStore) {
	t.Helper()
	s, f := newTestServer(t, func(o *Options) {
		o.Addr = "127.0.0.1:0"
		if mod != nil {
			mod(o)
		}
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, f
}

func TestRealListener(t *testing.T) {
	s, _ := startReal(t, nil)
	req, _ := http.NewRequest("GET", s.URL()+wh+"/instances?code="+testKey, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v, ok := resp.Header["X-Ms-Continuation-Token"]; resp.StatusCode != 200 || !ok || len(v) != 1 || v[0] != "" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	// The check-status URLs use the Host the client used.
	req, _ = http.NewRequest("POST", s.URL()+"/orchestrators/Hello?code="+testKey, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var p CheckStatusPayload
	_ = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if resp.StatusCode != 202 || !strings.HasPrefix(p.StatusQueryGetURI, s.URL()+wh+"/instances/") || resp.Header.Get("Content-Length") == "" {
		t.Fatalf("%d %+v", resp.StatusCode, p)
	}
	// 401 is empty on the wire.
	resp, err = http.Get(s.URL() + wh + "/instances")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || len(b) != 0 || resp.Header.Get("Content-Type") != "" {
		t.Fatalf("%d %q %v", resp.StatusCode, b, resp.Header)
	}
}

func TestSlowClientIsCutOff(t *testing.T) {
	s, _ := startReal(t, func(o *Options) { o.ReadHeaderTimeout, o.ReadTimeout = 200*time.Millisecond, 300*time.Millisecond })
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("GET " + wh + "/instances HTTP/1.1\r\nHost: x\r\n")) // never finishes the headers
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(c)
	if err != nil || time.Since(start) > 3*time.Second {
		t.Fatalf("the connection was held: %v after %v", err, time.Since(start))
	}
	// A client that sends headers but dribbles its body is cut off too.
	c2, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, _ = c2.Write([]byte("POST " + wh + "/orchestrators/Hello HTTP/1.1\r\nHost: x\r\nx-functions-key: " + testKey + "\r\nContent-Length: 100\r\n\r\n{"))
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	start = time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 202 {
			t.Fatalf("a truncated body started an instance")
		}
	}
	if time.Since(start) > 3*time.Second {
		t.Fatalf("the body read was not cut off (%v)", time.Since(start))
	}
}

func TestGracefulShutdown(t *testing.T) {
	s, _ := newTestServer(t, func(o *Options) { o.Addr = "127.0.0.1:0" })
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		resp, err := http.Post(s.URL()+"/orchestrators/Hello/wait?timeout=0.5&retryInterval=0.05&code="+testKey, "application/json", nil)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	time.Sleep(150 * time.Millisecond) // the request is waiting
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 202 {
		t.Fatalf("the request in flight got %d", code)
	}
	if _, err := http.Get(s.URL() + "/"); err == nil {
		t.Fatal("still serving after Close")
	}
	if err := s.Start(); err == nil {
		t.Fatal("a second Start should fail")
	}
}

func TestRun(t *testing.T) {
	s, _ := newTestServer(t, func(o *Options) { o.Addr = "127.0.0.1:0" })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.Addr() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
