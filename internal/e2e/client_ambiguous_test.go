package e2e

// Ambiguous client operations (issue 12, item 11): a raise-event, purge or
// terminate whose script ran on Redis but whose reply was lost must be
// applied once, whether go-redis or the client retries it; and when the
// client gives up, its error must say that the operation may have been
// applied and name the idempotency key that makes a retry safe.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/internal/redistest"
	"github.com/durablewasm/durablewasm/redisstore"
)

// replyDropProxy forwards TCP to a redis-server. For the first max script
// calls (EVALSHA/EVAL) whose request contains marker, it lets Redis run the
// script and then closes the client's connection instead of passing the
// reply on: the operation was applied, the client saw a network error.
type replyDropProxy struct {
	l      net.Listener
	marker []byte
	max    int

	mu      sync.Mutex
	drops   int
	dropped []string // the replies the client never got
	wg      sync.WaitGroup
}

func newReplyDropProxy(t *testing.T, upstream, marker string, max int) *replyDropProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyDropProxy{l: l, marker: []byte(marker), max: max}
	proxyConnections(t, l, upstream, &p.wg, func(c, u net.Conn) { p.serve(t, c, u) })
	return p
}

func (p *replyDropProxy) addr() string { return p.l.Addr().String() }

func (p *replyDropProxy) setMax(n int) {
	p.mu.Lock()
	p.max = n
	p.mu.Unlock()
}

// serve relays one connection. go-redis sends one command at a time on a
// connection outside pipelines, and the client's scripts are not
// pipelined, so the reply that follows a marked script call is its reply.
func (p *replyDropProxy) serve(t *testing.T, c, u net.Conn) {
	defer c.Close()
	defer u.Close()
	var armed sync.Mutex
	drop := false
	done := make(chan struct{})
	go func() { // client -> server
		defer close(done)
		defer u.Close()
		var buf []byte
		chunk := make([]byte, 64<<10)
		for {
			n, err := c.Read(chunk)
			if n > 0 {
				buf = append(buf, chunk[:n]...)
				for {
					args, next, perr := respCommand(buf, 0)
					if errors.Is(perr, errIncomplete) {
						break
					}
					if perr != nil {
						t.Errorf("proxy: %v", perr)
						return
					}
					buf = buf[next:]
					if len(args) > 0 && (strings.EqualFold(args[0], "EVALSHA") || strings.EqualFold(args[0], "EVAL")) &&
						bytes.Contains([]byte(strings.Join(args, "\x00")), p.marker) {
						p.mu.Lock()
						if p.drops < p.max {
							p.drops++
							armed.Lock()
							drop = true
							armed.Unlock()
						}
						p.mu.Unlock()
					}
				}
				if _, werr := u.Write(chunk[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	chunk := make([]byte, 64<<10)
	for {
		n, err := u.Read(chunk)
		if n > 0 {
			armed.Lock()
			d := drop
			armed.Unlock()
			if d {
				p.mu.Lock()
				p.dropped = append(p.dropped, replyText(chunk[:n]))
				p.mu.Unlock()
				c.Close()
				u.Close()
				<-done
				return
			}
			if _, werr := c.Write(chunk[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			c.Close()
			<-done
			return
		}
	}
}

// clientThrough returns a store and client on a connection through px with
// go-redis' own retries set to maxRetries (-1: none, so only the client
// retries), and one store on a direct connection.
func clientThrough(t *testing.T, addr string, px *replyDropProxy, hub string, maxRetries int) (*client.Client, *redisstore.Store) {
	t.Helper()
	ctx := context.Background()
	direct := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { direct.Close() })
	ds, err := redisstore.New(ctx, direct, hub, redisstore.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: px.addr(), MaxRetries: maxRetries})
	t.Cleanup(func() { rdb.Close() })
	ps, err := redisstore.New(ctx, rdb, hub, redisstore.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(ps, nil)
	c.SetRetryPolicy(client.RetryPolicy{Attempts: 4, Backoff: 10 * time.Millisecond})
	return c, ds
}

// createPending creates a Pending instance directly in the store.
func createPending(t *testing.T, s *redisstore.Store, id string) {
	t.Helper()
	now := time.Now()
	st := host.InstanceState{InstanceID: id, Name: "F", ExecutionID: "x-" + id, Status: abi.StatusPending, CreatedAt: now, UpdatedAt: now}
	start := host.ControlMessage{InstanceID: id, ExecutionID: st.ExecutionID, Event: abi.HistoryEvent{EventID: -1, Type: abi.EventExecutionStarted, Name: "F", Timestamp: now.UnixNano()}}
	if err := s.CreateInstance(context.Background(), st, start); err != nil {
		t.Fatal(err)
	}
}

// queuedEvents counts the distinct control messages of type typ queued for
// id.
func queuedEvents(t *testing.T, s *redisstore.Store, id string, typ abi.EventType) int {
	t.Helper()
	ctx := context.Background()
	p := host.PartitionFor(id, s.Partitions())
	msgs, err := s.ReadControl(ctx, p, "counter", 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := s.ClaimControl(ctx, p, "counter")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range append(msgs, claimed...) {
		if m.InstanceID == id && m.Event.Type == typ {
			seen[m.ID] = true
		}
	}
	return len(seen)
}

// TestClientAmbiguousRaiseEventAppliedOnce: the reply of a raise-event's
// script is lost after Redis ran it; the retry — the client's (go-redis
// retries off) or go-redis' own — finds the idempotency record and does not
// queue the event again. Without the record, either retry queued it twice.
func TestClientAmbiguousRaiseEventAppliedOnce(t *testing.T) {
	addr := redistest.StartServer(t)
	for _, tc := range []struct {
		name       string
		maxRetries int
	}{{"ClientRetry", -1}, {"GoRedisRetry", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			px := newReplyDropProxy(t, addr, "lost-reply-marker", 1)
			c, ds := clientThrough(t, addr, px, "Amb"+tc.name, tc.maxRetries)
			createPending(t, ds, "i1")
			if err := c.RaiseEvent(ctx, "i1", "Approval", `"lost-reply-marker"`); err != nil {
				t.Fatalf("RaiseEvent with a lost reply: %v", err)
			}
			px.mu.Lock()
			dropped := append([]string(nil), px.dropped...)
			px.mu.Unlock()
			if len(dropped) != 1 || dropped[0] != "ok" {
				t.Fatalf("dropped replies %q, want the script's one \"ok\" (it ran before the drop)", dropped)
			}
			if n := queuedEvents(t, ds, "i1", abi.EventEventRaised); n != 1 {
				t.Errorf("%d EventRaised queued after a retried raise-event, want 1", n)
			}
		})
	}
}

// TestClientAmbiguousPurgeAndTerminate: a purge whose reply is lost
// succeeds on retry (instead of ErrInstanceNotFound), and a terminate is
// queued once.
func TestClientAmbiguousPurgeAndTerminate(t *testing.T) {
	addr := redistest.StartServer(t)
	ctx := context.Background()
	px := newReplyDropProxy(t, addr, "amb-target", 2)
	c, ds := clientThrough(t, addr, px, "AmbPurge", -1)
	createPending(t, ds, "amb-target-t")
	if err := c.Terminate(ctx, "amb-target-t", "stop", true); err != nil {
		t.Fatalf("Terminate with a lost reply: %v", err)
	}
	if n := queuedEvents(t, ds, "amb-target-t", abi.EventExecutionTerminated); n != 1 {
		t.Errorf("%d ExecutionTerminated queued, want 1", n)
	}
	createPending(t, ds, "amb-target-p")
	if err := c.PurgeInstance(ctx, "amb-target-p", true); err != nil {
		t.Fatalf("PurgeInstance with a lost reply: %v", err)
	}
	if _, err := ds.GetInstance(ctx, "amb-target-p"); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("purged instance still there: %v", err)
	}
	px.mu.Lock()
	drops := px.drops
	px.mu.Unlock()
	if drops != 2 {
		t.Errorf("proxy dropped %d replies, want 2", drops)
	}
}

// TestClientAmbiguousGivesUp: every reply is lost; the client gives up with
// ErrMaybeApplied naming the key; a retry with that key on a working
// connection reports success and queues nothing more.
func TestClientAmbiguousGivesUp(t *testing.T) {
	addr := redistest.StartServer(t)
	ctx := context.Background()
	px := newReplyDropProxy(t, addr, "always-lost", 1000)
	c, ds := clientThrough(t, addr, px, "AmbGiveUp", -1)
	createPending(t, ds, "i1")
	err := c.RaiseEvent(ctx, "i1", "Approval", `"always-lost"`)
	var mae *client.MaybeAppliedError
	if !errors.Is(err, client.ErrMaybeApplied) || !errors.As(err, &mae) || !strings.Contains(err.Error(), mae.Key) {
		t.Fatalf("RaiseEvent with every reply lost = %v, want ErrMaybeApplied naming the key", err)
	}
	t.Logf("the error: %v", err)
	px.setMax(0)
	kctx := client.WithIdempotencyKey(ctx, mae.Key)
	if err := c.RaiseEvent(kctx, "i1", "Approval", `"always-lost"`); err != nil {
		t.Fatalf("retry with the key: %v", err)
	}
	if n := queuedEvents(t, ds, "i1", abi.EventEventRaised); n != 1 {
		t.Errorf("%d EventRaised queued after %d lost attempts and a retry with the key, want 1", n, mae.Attempts)
	}
}
