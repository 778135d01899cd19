package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server started by the harness on a free loopback
// port: with AOF and appendfsync always (persist; the setting
// docs/reliability.md requires), or without persistence.
type redisServer struct {
	cmd     *exec.Cmd
	addr    string
	rdb     *redis.Client
	dir     string
	persist bool
}

// persistence describes a server's durability settings.
func (s *redisServer) persistence() string {
	if s.persist {
		return `--appendonly yes --appendfsync always --save ""`
	}
	return `--appendonly no --save ""`
}

func startRedis(bin string, persist bool) (*redisServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "dw-bench-redis")
	if err != nil {
		return nil, err
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--dir", dir, "--protected-mode", "no", "--loglevel", "warning"}
	if persist {
		// The AOF goes in dir, a temporary directory removed by stop.
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &redisServer{cmd: cmd, addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, persist: persist}
	s.rdb = redis.NewClient(&redis.Options{Addr: s.addr})
	deadline := time.Now().Add(10 * time.Second)
	for s.rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("redis-server did not come up on %s: %s", s.addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s, nil
}

func (s *redisServer) url() string { return "redis://" + s.addr }

func (s *redisServer) flush() error { return s.rdb.FlushAll(context.Background()).Err() }

func (s *redisServer) version() string {
	info, err := s.rdb.Info(context.Background(), "server").Result()
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return "?"
}

// usedMemory is Redis' used_memory in bytes.
func (s *redisServer) usedMemory() int64 { return s.memInfo("used_memory") }

// memInfo is a field of INFO memory (used_memory, used_memory_dataset).
func (s *redisServer) memInfo(field string) int64 {
	info, err := s.rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// cpu returns the redis-server process' user+system CPU time so far.
func (s *redisServer) cpu() time.Duration { return pidCPU(s.cmd.Process.Pid) }

const clockTicks = 100 // sysconf(_SC_CLK_TCK) on Linux

func (s *redisServer) stop() {
	if s.rdb != nil {
		s.rdb.Close()
	}
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
	os.RemoveAll(s.dir)
}
