package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	"github.com/redis/go-redis/v9"
)

// Embedded is an in-process Redis (miniredis) served on a loopback port, for
// trying durablewasm without a Redis server. It keeps data only in memory:
// everything is lost when the process exits.
type Embedded struct {
	m    *miniredis.Miniredis
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// embeddedCommand is a command only the embedded Redis answers (with
// embeddedReply), so that tools can tell it from a real server.
const (
	embeddedCommand = "DURABLEWASM.EMBEDDED"
	embeddedReply   = "in-memory"
)

// ErrNotLoopback is matched (errors.Is) by the error of CheckLoopbackAddr and
// StartEmbedded for an address other than a loopback one.
var ErrNotLoopback = errors.New("not a loopback address")

// CheckLoopbackAddr checks that addr ("host:port") is one the embedded Redis
// may listen on: it has no password, so only this machine may reach it. The
// host must be localhost, an IPv4 address in 127.0.0.0/8 or ::1 (written
// [::1]:port); the port a number from 0 (any free port) to 65535. An empty
// host ("":6399, which means every interface) is refused. The error names the
// address and what is accepted.
func CheckLoopbackAddr(addr string) error {
	const accepted = "the embedded Redis has no password, so it listens only on a loopback address: 127.0.0.0/8, [::1] or localhost, with a port (e.g. 127.0.0.1:6399)"
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("embedded Redis listen address %q is not host:port (%v); %s", addr, err, accepted)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("embedded Redis listen address %q: port %q is not a number from 0 to 65535; %s", addr, port, accepted)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() || ip.Zone() != "" {
		what := "it is not a loopback address"
		if host == "" {
			what = "an empty host means every network interface"
		} else if err != nil {
			what = "it is not an IP address or localhost"
		}
		return fmt.Errorf("embedded Redis listen address %q: %s: %w; %s", addr, what, ErrNotLoopback, accepted)
	}
	return nil
}

// StartEmbedded starts miniredis listening on addr ("" or "127.0.0.1:0" picks
// a free loopback port). An address that CheckLoopbackAddr refuses is
// refused. Key TTLs advance with the wall clock (miniredis itself only moves
// them on FastForward); correctness never depends on them.
func StartEmbedded(addr string) (*Embedded, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := CheckLoopbackAddr(addr); err != nil {
		return nil, err
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("start embedded Redis on %s: %w (pick another address or stop what listens there)", addr, err)
	}
	if err := m.Server().Register(embeddedCommand, func(c *server.Peer, _ string, _ []string) { c.WriteInline(embeddedReply) }); err != nil {
		m.Close()
		return nil, fmt.Errorf("start embedded Redis on %s: %w", addr, err)
	}
	e := &Embedded{m: m, stop: make(chan struct{})}
	e.wg.Add(1)
	go e.clock()
	return e, nil
}

// clock fast-forwards miniredis' TTLs with real time, once a second.
func (e *Embedded) clock() {
	defer e.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			e.m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Addr returns the host:port the embedded Redis listens on.
func (e *Embedded) Addr() string { return e.m.Addr() }

// URL returns the redis:// URL of the embedded Redis, for Open.
func (e *Embedded) URL() string { return "redis://" + e.m.Addr() }

// Miniredis returns the underlying miniredis, for tests.
func (e *Embedded) Miniredis() *miniredis.Miniredis { return e.m }

// Close stops the embedded Redis; its data is gone. It is safe to call twice.
func (e *Embedded) Close() {
	e.once.Do(func() {
		close(e.stop)
		e.wg.Wait()
		e.m.Close()
	})
}

// State is what `durablewasm up` records in the embedded-mode state file
// (JSON), so that other CLI invocations on the machine find it.
type State struct {
	// URL is the redis:// URL of the embedded Redis (it has no password).
	URL string `json:"url"`
	// Hub is the task hub `up` serves; empty in files written before it was
	// recorded.
	Hub string `json:"hub,omitempty"`
	// PID is the process id of `up`; the file is stale once it has exited.
	PID int `json:"pid"`
}

// DefaultStateFile returns where the embedded mode records its URL:
// <os.UserCacheDir()>/durablewasm/embedded.json.
func DefaultStateFile() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("embedded state file: no user cache directory: %w (set $XDG_CACHE_HOME or $HOME)", err)
	}
	return filepath.Join(dir, "durablewasm", "embedded.json"), nil
}

// WriteStateFile records url and the current process id at path; it is
// WriteState without a hub.
func WriteStateFile(path, url string) error {
	return WriteState(path, State{URL: url})
}

// WriteState records st at path (creating its directory), with PID set to
// the current process id when it is zero, so other CLI invocations can find
// the embedded Redis and its task hub. The file is replaced atomically: a
// reader sees the old content or the new, never a part.
func WriteState(path string, st State) error {
	if st.PID == 0 {
		st.PID = os.Getpid()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write embedded state file %s: %w", path, err)
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write embedded state file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write embedded state file %s: %w", path, err)
	}
	return nil
}

// RemoveState removes the state file at path if the current process wrote
// it (its PID is ours), so that an `up` that stops does not remove the file
// of another `up` started after it.
func RemoveState(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	var st State
	if json.Unmarshal(b, &st) == nil && st.PID != os.Getpid() {
		return nil
	}
	return os.Remove(path)
}

// ErrNoEmbedded is returned (wrapped) by ReadStateFile when no embedded Redis
// is running: the file is missing or its process has exited.
var ErrNoEmbedded = errors.New("no embedded Redis is running")

// ReadStateFile returns the URL recorded at path; see ReadState.
func ReadStateFile(path string) (string, error) {
	st, err := ReadState(path)
	return st.URL, err
}

// ReadState returns what `up` recorded at path. It fails, wrapping
// ErrNoEmbedded, if the file does not exist or the process that wrote it is
// no longer alive. Its errors show the URL through RedactURL.
func ReadState(path string) (State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, fmt.Errorf("read embedded state file %s: %w (start one with `durablewasm up`, or pass --redis-url)", path, ErrNoEmbedded)
	}
	if err != nil {
		return State{}, fmt.Errorf("read embedded state file %s: %w", path, err)
	}
	var sf State
	if err := json.Unmarshal(b, &sf); err != nil || sf.URL == "" {
		return State{}, fmt.Errorf("read embedded state file %s: malformed content (delete it and restart `durablewasm up`)", path)
	}
	if !processAlive(sf.PID) {
		return State{}, fmt.Errorf("read embedded state file %s: process %d that served %s has exited: %w (start one with `durablewasm up`)", path, sf.PID, RedactURL(sf.URL), ErrNoEmbedded)
	}
	return sf, nil
}

// IsEmbedded reports whether client is connected to the embedded Redis of
// StartEmbedded (on a cluster client: never). It asks with a command only the
// embedded Redis knows, so it works however the URL was found.
func IsEmbedded(ctx context.Context, client redis.UniversalClient) bool {
	c, ok := client.(*redis.Client)
	if !ok {
		return false
	}
	v, err := c.Do(ctx, embeddedCommand).Text()
	return err == nil && v == embeddedReply
}

// processAlive reports whether a process with that pid exists.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}
