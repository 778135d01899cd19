// Package redistest starts Redis servers for tests: real redis-server
// processes (single node or a Redis Cluster) on free loopback ports, and
// miniredis. Every server is stopped when the test ends.
//
// When redis-server (or redis-cli, for clusters) is not on PATH the test is
// skipped — except when the environment has CI=true, where a missing binary
// fails the test, because CI must run against real Redis.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Miniredis starts a miniredis server closed at the end of the test.
func Miniredis(t testing.TB) *miniredis.Miniredis {
	t.Helper()
	return miniredis.RunT(t)
}

// lookBinary finds name on PATH, or skips (fails under CI=true) the test.
func lookBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing: .ci/run must install it", name)
		}
		t.Skipf("%s not on PATH; skipping test against real Redis", name)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Server is a redis-server process that can be stopped and started again on
// the same port and directory (e.g. to test a restart with AOF).
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
}

// StartServer starts a redis-server on a free loopback port in a temporary
// directory and returns its host:port. Defaults are --save "" --appendonly
// no; args are appended (later ones win). The server is killed when the test
// ends.
func StartServer(t testing.TB, args ...string) string {
	t.Helper()
	return NewServer(t, args...).Addr()
}

// NewServer is StartServer returning a handle that can Stop and Start the
// server.
func NewServer(t testing.TB, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: lookBinary(t, "redis-server"), dir: t.TempDir(), args: args}
	t.Cleanup(func() { s.Stop(syscall.SIGKILL) })
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		s.port = FreePort(t)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("start redis-server: %v", err)
	return nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL returns the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Dir returns the server's working directory (AOF and RDB files).
func (s *Server) Dir() string { return s.dir }

// Start starts the server again after Stop, on the same port and directory.
// It fails the test if the server does not answer PING.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("restart redis-server on %s: %v", s.Addr(), err)
	}
}

// Stop sends sig (e.g. syscall.SIGTERM for a clean shutdown, SIGKILL for a
// crash) and waits for the process to exit. Stopping a stopped server does
// nothing.
func (s *Server) Stop(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	<-s.exited
	s.cmd = nil
	if s.log != nil {
		s.log.Close()
		s.log = nil
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("already running")
	}
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"}
	args = append(args, s.args...)
	log, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if err := waitPing(s.Addr(), exited, 10*time.Second); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		log.Close()
		return fmt.Errorf("%w; log: %s", err, tail(filepath.Join(s.dir, "redis.log")))
	}
	s.cmd, s.exited, s.log = cmd, exited, log
	return nil
}

// waitPing waits until addr answers PING, the process exits, or timeout.
func waitPing(addr string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("redis-server on %s exited during startup", addr)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "+PONG") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s did not answer PING within %s", addr, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Cluster is a Redis Cluster on loopback ports.
type Cluster struct {
	// Nodes are the servers started as masters.
	Nodes []*Server
	// Replicas are the servers started as replicas (StartClusterWithReplicas);
	// redis-cli decides which master each one follows.
	Replicas []*Server
}

// Addrs returns the host:port of every master.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// URL returns a redis+cluster:// URL naming every master.
func (c *Cluster) URL() string { return "redis+cluster://" + strings.Join(c.Addrs(), ",") + "/" }

// Client returns a go-redis cluster client for the cluster, closed at the end
// of the test.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { cl.Close() })
	return cl
}

// StartCluster starts masters redis-server nodes with cluster mode enabled,
// joins them with `redis-cli --cluster create`, and waits until every node
// reports cluster_state:ok and knows every node. Skips (fails under CI=true)
// without redis-server or redis-cli.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	return startCluster(t, masters, false)
}

// StartClusterWithReplicas is StartCluster with one replica per master
// (Cluster.Replicas), waiting until every replica is in sync, so tests can
// fail masters over (CLUSTER FAILOVER on a replica).
func StartClusterWithReplicas(t testing.TB, masters int) *Cluster {
	t.Helper()
	return startCluster(t, masters, true)
}

// StartClusterWithArgs is StartCluster (replicas false) or
// StartClusterWithReplicas (replicas true) with args appended to every
// node's redis-server command line, e.g. "--appendonly", "yes",
// "--appendfsync", "always" for a cluster whose nodes can be killed and
// restarted (Server.Stop, Server.Start, then Cluster.WaitReady).
func StartClusterWithArgs(t testing.TB, masters int, replicas bool, args ...string) *Cluster {
	t.Helper()
	return startCluster(t, masters, replicas, args...)
}

// Running reports whether the server process is running (started and not
// stopped).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// WaitReady waits until every running node (master or replica) reports
// cluster_state:ok and knows every node of the cluster, and every running
// replica's link to its master is up — e.g. after a node was restarted. It
// fails the test after timeout.
func (c *Cluster) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	nodes := append(append([]*Server(nil), c.Nodes...), c.Replicas...)
	if err := waitClusterReady(nodes, len(nodes), timeout); err != nil {
		t.Fatal(err)
	}
}

// waitClusterReady waits until every running node of nodes is ready (see
// WaitReady) in a cluster of known nodes.
func waitClusterReady(nodes []*Server, known int, timeout time.Duration) error {
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for _, n := range nodes {
		if !n.Running() {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: n.Addr()})
		for {
			info, err := cl.ClusterInfo(ctx).Result()
			repl := ""
			if err == nil {
				repl, _ = cl.Info(ctx, "replication").Result()
			}
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(known)+"\r") &&
				(!strings.Contains(repl, "role:slave") || strings.Contains(repl, "master_link_status:up")) {
				break
			}
			if time.Now().After(deadline) {
				cl.Close()
				return fmt.Errorf("cluster node %s not ready: %v\n%s\n%s", n.Addr(), err, info, repl)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cl.Close()
	}
	return nil
}

// createCluster runs `redis-cli --cluster create` (args) on nodes. redis-cli
// joins the nodes with one CLUSTER MEET each and then waits, without a
// deadline, until every node knows every other; on a loaded machine a MEET
// handshake can time out (after cluster-node-timeout) and then it waits
// forever. So while it waits, every node is told to meet every other again
// (a MEET of a known node does nothing), and redis-cli is killed after 2
// minutes.
func createCluster(cli string, args []string, nodes []*Server) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (killed after %s)", err, 2*time.Minute)
			}
			return out.Bytes(), err
		case <-tick.C:
			// Only once redis-cli is joining the nodes (one knows another):
			// before, its check that every node is empty would fail.
			joining := false
			for _, a := range nodes {
				cl := redis.NewClient(&redis.Options{Addr: a.Addr()})
				info, _ := cl.ClusterInfo(ctx).Result()
				cl.Close()
				if strings.Contains(info, "cluster_known_nodes:") && !strings.Contains(info, "cluster_known_nodes:1\r") {
					joining = true
					break
				}
			}
			if !joining {
				continue
			}
			for _, a := range nodes {
				cl := redis.NewClient(&redis.Options{Addr: a.Addr()})
				for _, b := range nodes {
					if a != b {
						_ = cl.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", b.port, b.busPort()).Err()
					}
				}
				cl.Close()
			}
		}
	}
}

// busPort is the node's cluster bus port (its --cluster-port argument, or
// port+10000, Redis' default).
func (s *Server) busPort() int {
	p := s.port + 10000
	for i, a := range s.args {
		if a == "--cluster-port" && i+1 < len(s.args) {
			p, _ = strconv.Atoi(s.args[i+1])
		}
	}
	return p
}

func startCluster(t testing.TB, masters int, replicas bool, extra ...string) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("StartCluster: Redis Cluster needs at least 3 masters, got %d", masters)
	}
	cli := lookBinary(t, "redis-cli")
	lookBinary(t, "redis-server")
	c := &Cluster{}
	node := func() *Server {
		args := []string{"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
			"--cluster-port", strconv.Itoa(FreePort(t))}
		return NewServer(t, append(args, extra...)...)
	}
	for i := 0; i < masters; i++ {
		c.Nodes = append(c.Nodes, node())
	}
	all := c.Addrs()
	perMaster := "0"
	if replicas {
		for i := 0; i < masters; i++ {
			c.Replicas = append(c.Replicas, node())
			all = append(all, c.Replicas[i].Addr())
		}
		perMaster = "1"
	}
	args := append([]string{"--cluster", "create"}, all...)
	args = append(args, "--cluster-replicas", perMaster, "--cluster-yes")
	out, err := createCluster(cli, args, append(append([]*Server(nil), c.Nodes...), c.Replicas...))
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := waitClusterReady(append(append([]*Server(nil), c.Nodes...), c.Replicas...), len(all), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}
