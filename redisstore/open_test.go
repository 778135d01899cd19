package redisstore

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/internal/redistest"
)

func TestOpenURLs(t *testing.T) {
	m := redistest.Miniredis(t)
	s, err := Open(ctx, "redis://"+m.Addr()+"/0", "OpenHub", Options{Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	if s.Partitions() != 3 {
		t.Errorf("partitions = %d", s.Partitions())
	}
	mustCreate(t, s, "x")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ url, want string }{
		{"localhost:6379", "expected redis://host:port"},
		{"http://localhost:6379", `unknown scheme "http"`},
		{"redis+cluster:///", "no host:port"},
		{"redis+cluster://a:1/0", "no path or database"},
	} {
		if _, err := Open(ctx, tc.url, "OpenHub", Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want error containing %q", tc.url, err, tc.want)
		}
	}
	if _, err := Open(ctx, "redis://"+m.Addr(), "no", Options{}); err == nil || !strings.Contains(err.Error(), "task hub name") {
		t.Errorf("Open with bad hub = %v", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	_, err := Open(ctx, "redis://"+addr, "OpenHub", Options{})
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	for _, want := range []string{"cannot reach Redis at " + addr, "refused", "redis-server", "--redis-url", "durablewasm up"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestParseClusterURL(t *testing.T) {
	o, err := parseClusterURL("redis", "user:pw@h1:7000, h2:7001,h3:7002/?dial_timeout=3s&pool_size=9")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.Addrs, ",") != "h1:7000,h2:7001,h3:7002" || o.Username != "user" || o.Password != "pw" || o.PoolSize != 9 || o.DialTimeout.Seconds() != 3 {
		t.Errorf("cluster options = %+v", o)
	}
	c, _, err := newClient("redis+cluster://h1:7000,h2:7001", 100)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestEmbedded(t *testing.T) {
	e, err := StartEmbedded("")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if !strings.HasPrefix(e.Addr(), "127.0.0.1:") || e.URL() != "redis://"+e.Addr() {
		t.Errorf("Addr %q URL %q", e.Addr(), e.URL())
	}
	s, err := Open(ctx, e.URL(), "Embedded", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustCreate(t, s, "e1")
	if got, err := s.GetInstance(ctx, "e1"); err != nil || got.Status != abi.StatusPending {
		t.Errorf("GetInstance = %+v, %v", got, err)
	}
	if _, err := StartEmbedded(e.Addr()); err == nil {
		t.Error("second embedded server on the same address started")
	}
	e.Close()
	e.Close()
	if _, err := s.GetInstance(ctx, "e1"); err == nil || errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("GetInstance after Close = %v, want a connection error", err)
	}
}

func TestStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "embedded.json")
	if _, err := ReadStateFile(path); !errors.Is(err, ErrNoEmbedded) {
		t.Errorf("missing file: %v", err)
	}
	if err := WriteStateFile(path, "redis://127.0.0.1:1234"); err != nil {
		t.Fatal(err)
	}
	if u, err := ReadStateFile(path); err != nil || u != "redis://127.0.0.1:1234" {
		t.Errorf("ReadStateFile = %q, %v", u, err)
	}
	// A file left by a process that has exited.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run `true`:", err)
	}
	dead := `{"url":"redis://127.0.0.1:1","pid":` + strconv.Itoa(cmd.Process.Pid) + `}`
	if err := os.WriteFile(path, []byte(dead), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStateFile(path); !errors.Is(err, ErrNoEmbedded) || !strings.Contains(err.Error(), "exited") {
		t.Errorf("dead pid: %v", err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStateFile(path); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("garbage: %v", err)
	}
	if p, err := DefaultStateFile(); err == nil && !strings.HasSuffix(p, filepath.Join("durablewasm", "embedded.json")) {
		t.Errorf("DefaultStateFile = %q", p)
	}
}
