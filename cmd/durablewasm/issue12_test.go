package main

// Tests for the defects of issue 12: bad input is refused with a clear
// error, the CLI honours SIGTERM, secrets never show, read-only commands
// create nothing, `serve` waits for Redis, `up` announces itself when ready.

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/internal/redistest"
	"github.com/durablewasm/durablewasm/redisstore"
	"github.com/durablewasm/durablewasm/samples"
	"github.com/durablewasm/durablewasm/samples/flows"
)

// cliProc is the CLI running as a process (the test binary in main mode).
type cliProc struct {
	cmd      *exec.Cmd
	out, err *syncBuffer
	stdin    io.WriteCloser
	done     chan struct{}
	code     int
}

// cliProcess starts the CLI with args as a child process, with no Redis in
// its environment and its own cache directory (no `up` to find). It is
// killed when the test ends.
func cliProcess(t *testing.T, args ...string) *cliProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), mainEnv+"=1", "XDG_CACHE_HOME="+t.TempDir(), "DURABLEWASM_REDIS_URL=")
	p := &cliProc{cmd: cmd, out: &syncBuffer{}, err: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.err
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		stdin.Close()
	})
	return p
}

// wait waits for the process to exit (at most limit: a hang is a failure)
// and returns its exit code.
func (p *cliProc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%v did not exit within %s\nstdout: %s\nstderr: %s", p.cmd.Args[1:], limit, p.out.String(), p.err.String())
		return -1
	}
}

// waitFor waits until the process's stdout or stderr contains s.
func (p *cliProc) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.out.String()+p.err.String(), s) {
		select {
		case <-p.done:
			t.Fatalf("%v exited %d before printing %q\nstdout: %s\nstderr: %s", p.cmd.Args[1:], p.code, s, p.out.String(), p.err.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v never printed %q\nstdout: %s\nstderr: %s", p.cmd.Args[1:], s, p.out.String(), p.err.String())
		}
	}
}

// createHub creates the task hub hub on the Redis at url.
func createHub(t *testing.T, url, hub string) {
	t.Helper()
	st, err := redisstore.Open(context.Background(), url, hub, redisstore.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

// @file values and deploy's module are read only from regular files, and
// never past the limit: /dev/zero, a FIFO, a directory and a 300 MB file
// are refused at once, naming the file and what is accepted.
func TestValueFilesAreBounded(t *testing.T) {
	url := "redis://" + miniredis.RunT(t).Addr()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sparse := func(name string, size int64) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil { // sparse: no disk used
			t.Fatal(err)
		}
		return p
	}
	big := sparse("big.json", 300<<20)
	bigWasm := sparse("big.wasm", 200<<20)
	small := filepath.Join(dir, "5k.json")
	os.WriteFile(small, []byte(`"`+strings.Repeat("a", 5000)+`"`), 0o644)
	const valueRule = "accepts a regular file of at most 1 MiB (the payload limit)"
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"start-new", "--function-name", "HelloWorld", "--input", "@/dev/zero"}, []string{"--input @FILE: /dev/zero is a character device, not a regular file", valueRule}},
		{[]string{"raise-event", "--id", "x", "--event-name", "e", "--event-data", "@/dev/zero"}, []string{"--event-data @FILE: /dev/zero is a character device", valueRule}},
		{[]string{"deploy", "/dev/zero"}, []string{"deploy FILE.wasm: /dev/zero is a character device", "accepts a regular file of at most 128 MiB (the module size limit)"}},
		{[]string{"start-new", "--function-name", "HelloWorld", "--input", "@" + fifo}, []string{fifo + " is a named pipe", valueRule}},
		{[]string{"start-new", "--function-name", "HelloWorld", "--input", "@" + dir}, []string{dir + " is a directory", valueRule}},
		{[]string{"start-new", "--function-name", "HelloWorld", "--input", "@" + big}, []string{big + " is 314572800 bytes, over the payload limit of 1 MiB", valueRule}},
		{[]string{"deploy", bigWasm}, []string{bigWasm + " is 209715200 bytes, over the module size limit of 128 MiB"}},
		{[]string{"start-new", "--function-name", "HelloWorld", "--max-payload", "4KiB", "--input", "@" + small}, []string{small + " is 5002 bytes, over the payload limit of 4 KiB"}},
	}
	for _, c := range cases {
		p := cliProcess(t, append(c.args, "--redis-url", url)...)
		code := p.wait(t, 20*time.Second)
		errs := p.err.String()
		if code != 1 {
			t.Errorf("%v: exit %d, want 1; stderr %q", c.args, code, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%v: stderr %q does not contain %q", c.args, errs, w)
			}
		}
	}
}

// SIGTERM stops a command that waits (here for an answer on stdin, and for
// an instance), instead of being swallowed.
func TestSigtermStopsCommands(t *testing.T) {
	url := "redis://" + miniredis.RunT(t).Addr()
	createHub(t, url, "DurableFunctionsHub")
	p := cliProcess(t, "delete-task-hub", "--redis-url", url)
	p.waitFor(t, "This cannot be undone. [y/N]")
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 1 || !strings.Contains(p.err.String(), "nothing was deleted") {
		t.Errorf("delete-task-hub after SIGTERM: exit %d, stderr %q", code, p.err.String())
	}
	if _, errs, code := runCLI(context.Background(), "get-instances", "--redis-url", url); code != 0 {
		t.Errorf("the hub is gone after an interrupted question: %s", errs)
	}
}

// `up` refuses to serve its passwordless Redis on anything but loopback.
func TestUpListenLoopbackOnly(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:6399"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, errs, code := runCLI(ctx, "up", "--listen", addr, "--http-listen", "off", "--log-level", "error")
		cancel()
		if code != 2 || !strings.Contains(errs, "--listen: embedded Redis listen address "+strconv.Quote(addr)) ||
			!strings.Contains(errs, "127.0.0.0/8, [::1] or localhost") {
			t.Errorf("up --listen %s: exit %d, stderr %q", addr, code, errs)
		}
	}
}

// The password of a Redis URL shows nowhere: not in errors of a URL that
// does not parse, of an unreachable server or of wrong credentials, nor in
// doctor's report.
func TestRedisPasswordNeverShown(t *testing.T) {
	ctx := context.Background()
	m := miniredis.RunT(t)
	m.RequireAuth("Secret")
	closed := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	for _, c := range []struct{ url, want string }{
		{"redis://:Secret@127.0.0.1:1/?bogus=1", "redis://:xxxxx@127.0.0.1:1/?bogus=1"},
		{"redis://admin:Secret@" + closed, "cannot reach Redis at " + closed},
		{"redis://:WrongSecret@" + m.Addr(), "refused the credentials"},
		{"redis+cluster://:Secret@h1:1/0", "redis+cluster://:xxxxx@h1:1/0"},
	} {
		out, errs, code := runCLI(ctx, "get-runtime-status", "--id", "x", "--redis-url", c.url)
		if code != 1 || strings.Contains(out+errs, "Secret") || !strings.Contains(errs, c.want) {
			t.Errorf("--redis-url %s: exit %d, stdout %q, stderr %q; want %q and no password", c.url, code, out, errs, c.want)
		}
	}
	url := "redis://:Secret@" + m.Addr()
	createHub(t, url, "DurableFunctionsHub")
	out, errs, code := runCLI(ctx, "doctor", "--redis-url", url)
	if code != 0 || strings.Contains(out+errs, "Secret") || !strings.Contains(out, "redis: redis://:xxxxx@"+m.Addr()) {
		t.Errorf("doctor: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// A command that reads (or changes instances) never creates a task hub: a
// mistyped hub is reported with the hubs that exist, and nothing is written.
func TestCommandsCreateNoHub(t *testing.T) {
	m := miniredis.RunT(t)
	url := "redis://" + m.Addr()
	createHub(t, url, "DurableFunctionsHub")
	keys := len(m.Keys())
	ctx := context.Background()
	for _, args := range [][]string{
		{"get-runtime-status", "--id", "x"},
		{"get-history", "--id", "x"},
		{"get-instances"},
		{"wait", "--id", "x"},
		{"doctor"},
		{"modules", "list"},
		{"modules", "show", "samples"},
		{"modules", "remove", "samples"},
		{"dead-letters", "list"},
		{"dead-letters", "replay", "0/1-1"},
		{"migrate", "--app", "samples"},
		{"start-new", "--function-name", "HelloWorld"},
		{"raise-event", "--id", "x", "--event-name", "e"},
		{"terminate", "--id", "x"},
		{"suspend", "--id", "x"},
		{"resume", "--id", "x"},
		{"rewind", "--id", "x"},
		{"restart", "--id", "x"},
		{"purge-history", "--id", "x"},
		{"purge-history"},
		{"delete-task-hub", "--yes"},
	} {
		_, errs, code := runCLI(ctx, append(args, "--redis-url", url, "--task-hub-name", "TypoHub")...)
		want := `error: no task hub "TypoHub" in this Redis; existing hubs: DurableFunctionsHub (check --task-hub-name)`
		if code != 1 || !strings.Contains(errs, want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q", args, code, errs, want)
		}
	}
	if n := len(m.Keys()); n != keys {
		t.Errorf("the commands wrote %d keys", n-keys)
	}
	// Hub names are case-sensitive; a near miss is pointed out.
	_, errs, _ := runCLI(ctx, "get-instances", "--redis-url", url, "--task-hub-name", "durablefunctionshub")
	if !strings.Contains(errs, `case-sensitive: did you mean "DurableFunctionsHub"?`) {
		t.Errorf("near miss: %q", errs)
	}
	// Names unsafe in keys are refused with the rule.
	_, errs, code := runCLI(ctx, "get-instances", "--redis-url", url, "--task-hub-name", "Hub{1}")
	if code != 1 || !strings.Contains(errs, "contain only letters and digits") {
		t.Errorf("Hub{1}: %d %q", code, errs)
	}
}

// Durations that cannot mean anything are usage errors (exit 2) naming the
// flag, checked before anything is done.
func TestDurationFlagsRefuseNonPositive(t *testing.T) {
	url := "redis://" + miniredis.RunT(t).Addr()
	createHub(t, url, "DurableFunctionsHub")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"wait", "--id", "x", "--timeout", "-5s"}, "--timeout -5s: must be a positive duration"},
		{[]string{"wait", "--id", "x", "--timeout", "0s"}, "--timeout 0s: must be a positive duration"},
		{[]string{"wait", "--id", "x", "--retry-interval", "-1s"}, "--retry-interval -1s: must be a positive duration"},
		{[]string{"wait", "--id", "x", "--timeout", "soon"}, "invalid value \"soon\" for flag -timeout"},
		{[]string{"start-new", "--function-name", "HelloWorld", "--wait", "--timeout", "-1s"}, "--timeout -1s: must be a positive duration"},
		{[]string{"terminate", "--id", "x", "--timeout", "0s"}, "--timeout 0s: must be a positive duration"},
		{[]string{"serve", "--lease-ttl", "0s"}, "--lease-ttl 0s: must be a positive duration"},
		{[]string{"serve", "--lease-ttl", "1ms"}, "--lease-ttl 1ms: must be at least 100ms"},
		{[]string{"serve", "--visibility-timeout", "-1m"}, "--visibility-timeout -1m0s: must be a positive duration"},
		{[]string{"serve", "--local-activity-max", "-1ms"}, "--local-activity-max -1ms: must not be negative"},
		{[]string{"up", "--lease-ttl", "-1s", "--listen", "127.0.0.1:0"}, "--lease-ttl -1s: must be a positive duration"},
		{[]string{"deploy", "x.wasm", "--step-timeout", "-1s"}, "--step-timeout -1s: must not be negative"},
		{[]string{"deploy", "x.wasm", "--http-timeout", "-1s"}, "--http-timeout -1s: must not be negative"},
	} {
		args := c.args
		if args[0] != "up" {
			args = append(args, "--redis-url", url)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, errs, code := runCLI(ctx, args...)
		cancel()
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, errs, c.want)
		}
	}
}

// `serve` started before Redis waits for it (logging with the password
// masked), then works; SIGTERM while it waits ends it promptly.
func TestServeWaitsForRedis(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	url := "redis://:Secret@" + addr
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs syncBuffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errs
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, app, []string{"durablewasm", "serve", "--redis-url", url, "--lease-ttl", "2s"})
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, errs.String())
		}
	}()
	waitForText(t, &errs, done, "waiting for Redis at redis://:xxxxx@"+addr)
	if strings.Contains(errs.String(), "Secret") {
		t.Fatalf("the password is in the log: %s", errs.String())
	}
	m := miniredis.NewMiniRedis()
	m.RequireAuth("Secret")
	if err := m.StartAddr(addr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close) // after serve has stopped
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "samples.wasm"), samples.Wasm, 0o644)
	if _, e, code := runCLI(context.Background(), "deploy", filepath.Join(dir, "samples.wasm"), "--redis-url", url); code != 0 {
		t.Fatal(e)
	}
	o, e, code := runCLI(context.Background(), "start-new", "--function-name", "HelloWorld", "--input", "Ada", "--wait", "--redis-url", url)
	if code != 0 || !strings.Contains(o, `"Hello Ada!"`) {
		t.Fatalf("start-new on the serve that waited: %d %s %s", code, o, e)
	}

}

func TestServeStopsWhileWaitingForRedis(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	p := cliProcess(t, "serve", "--redis-url", "redis://"+addr)
	p.waitFor(t, "waiting for Redis at redis://"+addr)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 || !strings.Contains(p.err.String(), "stopped while waiting for Redis") {
		t.Errorf("serve after SIGTERM: exit %d, stderr %s", code, p.err.String())
	}
}

// `serve` started while a real redis-server loads its data set (LOADING)
// waits until it has loaded, then works.
func TestServeWaitsForLoadingRedis(t *testing.T) {
	srv := redistest.NewServer(t, "--loading-process-events-interval-bytes", "1024", "--key-load-delay", "1000")
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rc.Close()
	bg := context.Background()
	pipe := rc.Pipeline()
	for i := 0; i < 4000; i++ {
		pipe.Set(bg, "filler:"+strconv.Itoa(i), i, 0)
	}
	if _, err := pipe.Exec(bg); err != nil {
		t.Fatal(err)
	}
	if err := rc.Save(bg).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Stop(syscall.SIGKILL)
	started := make(chan struct{})
	go func() { defer close(started); srv.Start() }() // returns once loaded
	// Wait until the server answers LOADING (1 ms per key: about 4 s).
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := rc.Ping(bg).Err()
		if err != nil && strings.HasPrefix(err.Error(), "LOADING") {
			break
		}
		if err == nil || time.Now().After(deadline) {
			t.Skipf("could not catch redis-server while loading (ping: %v)", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithCancel(bg)
	var out, errs syncBuffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errs
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, app, []string{"durablewasm", "serve", "--redis-url", srv.URL(), "--lease-ttl", "2s"})
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, errs.String())
		}
	}()
	waitForText(t, &errs, done, "LOADING")
	<-started
	waitForText(t, &errs, done, "worker started")
	if !strings.Contains(errs.String(), "loading its data set") {
		t.Errorf("the wait does not say Redis is loading: %s", errs.String())
	}
}

// waitForText waits until b contains s; the command must not exit before.
func waitForText(t *testing.T, b *syncBuffer, done chan int, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(b.String(), s) {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("exited %d before logging %q: %s", code, s, b.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("never logged %q: %s", s, b.String())
		}
	}
}

// `up` writes its state file (with its task hub) only once it can serve,
// and commands that find it through that file use its hub by default.
// doctor describes the embedded Redis plainly, and the E4 sample's code is
// in the worker log.
func TestUpAnnouncesWhenReady(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("DURABLEWASM_REDIS_URL", "")
	state := filepath.Join(cache, "durablewasm", "embedded.json")
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs syncBuffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errs
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, app, []string{"durablewasm", "up", "--listen", "127.0.0.1:0", "--http-listen", "off", "--task-hub-name", "UpHub", "--lease-ttl", "2s"})
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("up exited %d: %s", code, errs.String())
		}
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			t.Errorf("up left its state file: %v", err)
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(state); err == nil {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("up exited %d: %s", code, errs.String())
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no state file: %s", errs.String())
		}
	}
	// At once: the samples are deployed, in up's hub.
	o, e, code := runCLI(context.Background(), "start-new", "--function-name", "HelloWorld", "--input", "Amy", "--id", "a1", "--wait")
	if code != 0 || !strings.Contains(o, `"Hello Amy!"`) {
		t.Fatalf("start-new as soon as the state file appeared: %d %s %s", code, o, e)
	}
	b, _ := os.ReadFile(state)
	var st redisstore.State
	if err := json.Unmarshal(b, &st); err != nil || st.Hub != "UpHub" {
		t.Fatalf("state file %s: %v", b, err)
	}
	if !strings.Contains(out.String(), "durablewasm is up.") {
		t.Errorf("the state file was written before the banner: %s", out.String())
	}
	// An explicit hub still wins.
	if _, e, code := runCLI(context.Background(), "get-runtime-status", "--id", "a1", "--task-hub-name", "DurableFunctionsHub"); code != 1 || !strings.Contains(e, "existing hubs: UpHub") {
		t.Errorf("explicit --task-hub-name: %d %s", code, e)
	}
	if _, e, code := runCLI(context.Background(), "get-runtime-status", "--id", "a1", "--task-hub-name", "UpHub"); code != 0 {
		t.Errorf("explicit --task-hub-name UpHub: %d %s", code, e)
	}

	t.Run("doctor", func(t *testing.T) {
		o, e, code := runCLI(context.Background(), "doctor")
		if code != 0 || !strings.Contains(o, "redis settings: embedded Redis (in memory): durability settings do not apply; data is lost when `durablewasm up` stops") ||
			!strings.Contains(o, "task hub UpHub") || strings.Contains(o+e, "unknown command") {
			t.Errorf("doctor on up: %d\n%s\n%s", code, o, e)
		}
	})
	t.Run("E4 code in the worker log", func(t *testing.T) {
		ctx := context.Background()
		if _, e, code := runCLI(ctx, "start-new", "--function-name", "E4_SmsPhoneVerification", "--input", `"+1555"`, "--id", "v1"); code != 0 {
			t.Fatal(e)
		}
		code := flows.ChallengeCode("+1555")
		re := regexp.MustCompile(`sending verification code.*code=` + strconv.Itoa(code) + `\b`)
		deadline := time.Now().Add(30 * time.Second)
		for !re.MatchString(errs.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("the code %d is not in the worker log:\n%s", code, errs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, e, c := runCLI(ctx, "raise-event", "--id", "v1", "--event-name", "SmsChallengeResponse", "--event-data", strconv.Itoa(code)); c != 0 {
			t.Fatal(e)
		}
		o, e, c := runCLI(ctx, "wait", "--id", "v1", "--timeout", "30s")
		if c != 0 || strings.TrimSpace(o) != "true" {
			t.Fatalf("wait: %d %q %s", c, o, e)
		}
	})
}
