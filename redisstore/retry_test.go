package redisstore

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/internal/redistest"
)

// dropProxy forwards TCP to upstream. The first time a client request
// contains marker, it forwards the request but drops the connection instead
// of returning the reply: the command ran, the client saw a network error.
type dropProxy struct {
	l       net.Listener
	up      string
	marker  []byte
	dropped atomic.Int32
	reply   atomic.Value // the dropped reply
	wg      sync.WaitGroup
}

func newDropProxy(t *testing.T, upstream, marker string) *dropProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{l: l, up: upstream, marker: []byte(marker)}
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	p.wg.Add(1)
	go p.serve()
	return p
}

func (p *dropProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.up)
		if err != nil {
			c.Close()
			continue
		}
		var armed atomic.Bool
		p.wg.Add(2)
		go func() { // client -> server
			defer p.wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if p.dropped.Load() == 0 && bytes.Contains(buf[:n], p.marker) {
						armed.Store(true)
					}
					if _, werr := u.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					u.Close()
					return
				}
			}
		}()
		go func() { // server -> client
			defer p.wg.Done()
			buf := make([]byte, 64<<10)
			for {
				n, err := u.Read(buf)
				if n > 0 && armed.Load() && p.dropped.CompareAndSwap(0, 1) {
					p.reply.Store(string(buf[:n]))
					c.Close()
					u.Close()
					return
				}
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					if err != io.EOF {
						c.Close()
					}
					c.Close()
					return
				}
			}
		}()
	}
}

// TestCommitRetriedAfterDroppedReply: go-redis retries a command whose
// connection dropped after the server ran it; the commit id makes the retry a
// no-op, so the step is applied exactly once.
func TestCommitRetriedAfterDroppedReply(t *testing.T) {
	for _, batch := range []int{1, 3} {
		m := redistest.Miniredis(t)
		px := newDropProxy(t, m.Addr(), "retry-marker")
		c := redis.NewClient(&redis.Options{Addr: px.l.Addr().String(), MaxRetries: 3})
		t.Cleanup(func() { c.Close() })
		s, err := New(ctx, c, "RetryHub", Options{Partitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		ep := mustLease(t, s, 0, "A")
		var commits []host.Commit
		for i := 0; i < batch; i++ {
			st := mustCreate(t, s, "r"+string(rune('a'+i)))
			st.Status = abi.StatusRunning
			commits = append(commits, host.Commit{Partition: 0, Epoch: ep, CommitID: "retry-marker", State: st,
				NewEvents:  []abi.HistoryEvent{ev(abi.EventOrchestratorStarted, -1), ev(abi.EventTaskScheduled, 0)},
				Activities: []host.ActivityItem{{Name: "Act"}}})
		}
		errs, err := s.Commit(ctx, commits)
		if err != nil {
			t.Fatalf("batch %d: Commit round trip: %v", batch, err)
		}
		if px.dropped.Load() != 1 {
			t.Fatalf("batch %d: proxy did not drop the reply", batch)
		}
		if r, _ := px.reply.Load().(string); !bytes.Contains([]byte(r), []byte("ok")) {
			t.Fatalf("batch %d: dropped reply %q is not the script's success: the script did not run before the drop", batch, r)
		}
		for i, e := range errs {
			if e != nil {
				t.Errorf("batch %d: commit %d: %v", batch, i, e)
			}
			_, h, _ := s.LoadInstance(ctx, commits[i].State.InstanceID)
			if len(h) != 2 {
				t.Errorf("batch %d: %s has %d events after a retried commit, want 2", batch, commits[i].State.InstanceID, len(h))
			}
		}
		if n, _ := s.rdb.XLen(ctx, s.parts[0].act()).Result(); n != int64(batch) {
			t.Errorf("batch %d: %d activity items, want %d", batch, n, batch)
		}
	}
}

// TestScriptCacheFlushed: after SCRIPT FLUSH (or a server restart), pipelined
// EVALSHA calls get NOSCRIPT and are re-run with EVAL.
func TestScriptCacheFlushed(t *testing.T) {
	m := redistest.Miniredis(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { c.Close() })
	s, err := New(ctx, c, "FlushHub", Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	e0, e1 := mustLease(t, s, 0, "A"), mustLease(t, s, 1, "A")
	eps := []int64{e0, e1}
	var commits []host.Commit
	for i := 0; i < 4; i++ {
		st := mustCreate(t, s, "f"+string(rune('a'+i)))
		p := host.PartitionFor(st.InstanceID, 2)
		st.Status = abi.StatusCompleted
		commits = append(commits, host.Commit{Partition: p, Epoch: eps[p], CommitID: "c", State: st})
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, commits...)
	for _, cm := range commits {
		if got, _ := s.GetInstance(ctx, cm.State.InstanceID); got.Status != abi.StatusCompleted {
			t.Errorf("%s: %s", got.InstanceID, got.Status)
		}
	}
}
