package redisstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
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

// StartEmbedded starts miniredis listening on addr ("" or "127.0.0.1:0" picks
// a free loopback port). Key TTLs advance with the wall clock (miniredis
// itself only moves them on FastForward); correctness never depends on them.
func StartEmbedded(addr string) (*Embedded, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("start embedded Redis on %s: %w (pick another address or stop what listens there)", addr, err)
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

// stateFile is the JSON content of the embedded-mode state file.
type stateFile struct {
	URL string `json:"url"`
	PID int    `json:"pid"`
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

// WriteStateFile records url and the current process id at path (creating
// its directory), so other CLI invocations can find the embedded Redis. The
// file is replaced atomically.
func WriteStateFile(path, url string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write embedded state file %s: %w", path, err)
	}
	b, _ := json.MarshalIndent(stateFile{URL: url, PID: os.Getpid()}, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write embedded state file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write embedded state file %s: %w", path, err)
	}
	return nil
}

// ErrNoEmbedded is returned (wrapped) by ReadStateFile when no embedded Redis
// is running: the file is missing or its process has exited.
var ErrNoEmbedded = errors.New("no embedded Redis is running")

// ReadStateFile returns the URL recorded at path. It fails, wrapping
// ErrNoEmbedded, if the file does not exist or the process that wrote it is
// no longer alive.
func ReadStateFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read embedded state file %s: %w (start one with `durablewasm up`, or pass --redis-url)", path, ErrNoEmbedded)
	}
	if err != nil {
		return "", fmt.Errorf("read embedded state file %s: %w", path, err)
	}
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil || sf.URL == "" {
		return "", fmt.Errorf("read embedded state file %s: malformed content (delete it and restart `durablewasm up`)", path)
	}
	if !processAlive(sf.PID) {
		return "", fmt.Errorf("read embedded state file %s: process %d that served %s has exited: %w (start one with `durablewasm up`)", path, sf.PID, sf.URL, ErrNoEmbedded)
	}
	return sf.URL, nil
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
