package redisstore

import (
	"context"
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

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://:Secret@127.0.0.1:1/?bogus=1", "redis://:xxxxx@127.0.0.1:1/?bogus=1"},
		{"redis://user:Secret@host:6379/2", "redis://user:xxxxx@host:6379/2"},
		{"rediss://user:p@ss:w/rd@host:6379", "rediss://user:xxxxx@host:6379"},
		{"redis://Secret@host:6379", "redis://xxxxx@host:6379"},
		{"redis+cluster://u:Secret@h1:7000,h2:7001/?dial_timeout=3s", "redis+cluster://u:xxxxx@h1:7000,h2:7001/?dial_timeout=3s"},
		{"unix://u:Secret@/var/run/redis.sock?db=1", "unix://u:xxxxx@/var/run/redis.sock?db=1"},
		{"redis://h:1/?password=Secret&db=1", "redis://h:1/?password=xxxxx&db=1"},
		{":Secret@host:6379", ":xxxxx@host:6379"},
		{"nonsense", "nonsense"},
		{"", ""},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// No error of Open shows the password of the URL, whatever went wrong.
func TestOpenErrorsHideThePassword(t *testing.T) {
	m := redistest.Miniredis(t)
	m.RequireAuth("Secret")
	closed := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	for _, u := range []string{
		"redis://:Secret@127.0.0.1:1/?bogus=1",
		"redis://:Secret@" + closed,
		"redis://user:Secret@" + closed + "/x",
		"redis+cluster://u:Secret@h1:7000/0",
		"redis+cluster://u:Secret@h1:7000/?bogus=1",
		"http://:Secret@host:1",
		":Secret@host:6379",
		"redis://:Wrong" + "Secret@" + m.Addr(),
		"redis://:%53ecret@127.0.0.1:1/?bogus=1",
	} {
		_, err := Open(ctx, u, "OpenHub", Options{})
		if err == nil {
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "Secret") || strings.Contains(err.Error(), "%53ecret") {
			t.Errorf("Open(%q) error shows the password: %v", u, err)
		}
	}
	if _, err := Open(ctx, "redis://:Wrong@"+m.Addr(), "OpenHub", Options{}); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("wrong password: %v, want an error about the credentials", err)
	}
}

// OpenExisting writes nothing and says which hubs exist.
func TestOpenExistingCreatesNothing(t *testing.T) {
	m := redistest.Miniredis(t)
	url := "redis://" + m.Addr()
	_, err := OpenExisting(ctx, url, "TypoHub", Options{})
	if !errors.Is(err, ErrHubNotFound) || !strings.Contains(err.Error(), `no task hub "TypoHub"`) || !strings.Contains(err.Error(), "no task hubs yet") {
		t.Fatalf("OpenExisting on an empty Redis = %v", err)
	}
	if keys := m.Keys(); len(keys) != 0 {
		t.Fatalf("OpenExisting created %d keys: %v", len(keys), keys)
	}
	s, err := Open(ctx, url, "DurableFunctionsHub", Options{Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, url, "OtherHub", Options{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	before := len(m.Keys())
	_, err = OpenExisting(ctx, url, "durableFunctionsHub", Options{})
	var nf *HubNotFoundError
	if !errors.As(err, &nf) || strings.Join(nf.Existing, ",") != "DurableFunctionsHub,OtherHub" {
		t.Fatalf("OpenExisting of a hub differing in case = %v", err)
	}
	for _, want := range []string{`no task hub "durableFunctionsHub" in this Redis; existing hubs: DurableFunctionsHub, OtherHub`, `case-sensitive: did you mean "DurableFunctionsHub"?`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	e, err := OpenExisting(ctx, url, "DurableFunctionsHub", Options{Partitions: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Partitions() != 3 {
		t.Errorf("OpenExisting partitions = %d, want the stored 3", e.Partitions())
	}
	if _, err := e.GetInstance(ctx, "nope"); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("GetInstance on an existing hub = %v", err)
	}
	if after := len(m.Keys()); after != before {
		t.Errorf("OpenExisting and a read changed the key count from %d to %d", before, after)
	}
	// A deleted hub is gone from the list, and OpenExisting refuses it.
	o, err := OpenExisting(ctx, url, "OtherHub", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.DeleteHub(ctx); err != nil {
		t.Fatal(err)
	}
	o.Close()
	if hubs, err := ListHubs(ctx, e.Client()); err != nil || strings.Join(hubs, ",") != "DurableFunctionsHub" {
		t.Errorf("ListHubs after deleting OtherHub = %v, %v", hubs, err)
	}
	if _, err := OpenExisting(ctx, url, "OtherHub", Options{}); !errors.Is(err, ErrHubNotFound) {
		t.Errorf("OpenExisting of a deleted hub = %v", err)
	}
}

// ListHubs finds hubs on every master of a cluster.
func TestListHubsCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	var names []string
	for i := 0; i < 12; i++ { // enough names to land on every master
		h := "Hub" + strconv.Itoa(i)
		names = append(names, h)
		s, err := Open(ctx, c.URL(), h, Options{Partitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	s, err := OpenExisting(ctx, c.URL(), "Hub5", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hubs, err := ListHubs(ctx, s.Client())
	if err != nil {
		t.Fatal(err)
	}
	slicesSort(names)
	if strings.Join(hubs, ",") != strings.Join(names, ",") {
		t.Errorf("ListHubs = %v, want %v", hubs, names)
	}
	if _, err := OpenExisting(ctx, c.URL(), "hub5", Options{}); err == nil || !strings.Contains(err.Error(), `did you mean "Hub5"`) {
		t.Errorf("OpenExisting(hub5) on a cluster = %v", err)
	}
}

func slicesSort(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Hub names that are unsafe in keys are refused with the rule, and nothing
// is written.
func TestHubNamesUnsafeInKeys(t *testing.T) {
	m := redistest.Miniredis(t)
	url := "redis://" + m.Addr()
	for _, tc := range []struct{ hub, want string }{
		{"Hub\xff\xfe", "not valid UTF-8"},
		{"Hub\x00x", "control character U+0000"},
		{"Hub\nx", "control character U+000A"},
		{"Hub\x1b[31m", "control character U+001B"},
		{"Hub{x}", `'{' at byte 4 is not allowed`},
		{"Hub}x", `'}' at byte 4`},
		{"Hub:1", `':' at byte 4`},
		{"Hub*", "not a letter or digit"},
		{"Hub x", "not a letter or digit"},
		{"Hübner", "not a letter or digit"},
		{"ab", "it has 2 characters"},
		{strings.Repeat("a", 46), "it has 46 characters"},
		{"1Hub", "starts with"},
	} {
		for name, open := range map[string]func(context.Context, string, string, Options) (*Store, error){"Open": Open, "OpenExisting": OpenExisting} {
			_, err := open(ctx, url, tc.hub, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "3-45 characters, start with a letter, and contain only letters and digits") {
				t.Errorf("%s(%q) = %v, want an error with %q and the rule", name, tc.hub, err, tc.want)
			}
		}
	}
	if keys := m.Keys(); len(keys) != 0 {
		t.Errorf("refused hub names wrote keys: %v", keys)
	}
}

func TestEmbeddedListensOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0", "127.0.0.1", "127.0.0.1:x", "[fe80::1%lo]:0"} {
		e, err := StartEmbedded(addr)
		if err == nil {
			e.Close()
			t.Errorf("StartEmbedded(%q) started", addr)
			continue
		}
		if !strings.Contains(err.Error(), "127.0.0.0/8, [::1] or localhost") || !strings.Contains(err.Error(), strconv.Quote(addr)) {
			t.Errorf("StartEmbedded(%q) = %v, want an error naming the address and what is accepted", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.2:0", "localhost:0", "[::1]:0"} {
		if err := CheckLoopbackAddr(addr); err != nil {
			t.Errorf("CheckLoopbackAddr(%q) = %v", addr, err)
		}
	}
	e, err := StartEmbedded("localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
}

func TestStateRecordsTheHub(t *testing.T) {
	path := filepath.Join(t.TempDir(), "embedded.json")
	if err := WriteState(path, State{URL: "redis://127.0.0.1:1234", Hub: "OtherHub"}); err != nil {
		t.Fatal(err)
	}
	st, err := ReadState(path)
	if err != nil || st.URL != "redis://127.0.0.1:1234" || st.Hub != "OtherHub" || st.PID != os.Getpid() {
		t.Fatalf("ReadState = %+v, %v", st, err)
	}
	// Another process's file is not removed by RemoveState.
	if err := os.WriteFile(path, []byte(`{"url":"redis://:Secret@127.0.0.1:1","pid":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := RemoveState(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("RemoveState removed another process's file: %v", err)
	}
	if err := WriteState(path, State{URL: "redis://127.0.0.1:1234"}); err != nil {
		t.Fatal(err)
	}
	if err := RemoveState(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("RemoveState left our file: %v", err)
	}
	// A stale file's URL is shown redacted.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run `true`:", err)
	}
	os.WriteFile(path, []byte(`{"url":"redis://:Secret@127.0.0.1:1","pid":`+strconv.Itoa(cmd.Process.Pid)+`}`), 0o644)
	if _, err := ReadState(path); err == nil || strings.Contains(err.Error(), "Secret") || !strings.Contains(err.Error(), "redis://:xxxxx@127.0.0.1:1") {
		t.Errorf("stale state: %v", err)
	}
}

// The embedded Redis is told apart from a real one, and its durability is
// described plainly instead of with the emulator's CONFIG error.
func TestCheckDurabilityEmbedded(t *testing.T) {
	e, err := StartEmbedded("")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := Open(ctx, e.URL(), "Embedded", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !IsEmbedded(ctx, s.Client()) {
		t.Error("IsEmbedded(embedded) = false")
	}
	if w := s.CheckDurability(ctx); len(w) != 1 || w[0] != EmbeddedDurability {
		t.Errorf("CheckDurability(embedded) = %q", w)
	}
	m := redistest.Miniredis(t)
	p, err := Open(ctx, "redis://"+m.Addr(), "Plain", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if IsEmbedded(ctx, p.Client()) {
		t.Error("IsEmbedded(plain miniredis) = true")
	}
}

func TestIsUnavailable(t *testing.T) {
	_, err := Open(ctx, "redis://127.0.0.1:"+strconv.Itoa(redistest.FreePort(t)), "OpenHub", Options{})
	if !IsUnavailable(err) {
		t.Errorf("IsUnavailable(%v) = false", err)
	}
	for _, u := range []string{"nonsense", "redis://127.0.0.1:1/?bogus=1"} {
		if _, err := Open(ctx, u, "OpenHub", Options{}); err == nil || IsUnavailable(err) {
			t.Errorf("Open(%q) = %v; IsUnavailable must be false", u, err)
		}
	}
	m := redistest.Miniredis(t)
	m.RequireAuth("pw")
	if _, err := Open(ctx, "redis://:bad@"+m.Addr(), "OpenHub", Options{}); err == nil || IsUnavailable(err) {
		t.Errorf("wrong password: %v; IsUnavailable must be false", err)
	}
}
