package e2e

// An ambiguous commit: the commit script ran on Redis, but the connection
// dropped before its reply reached the worker, so go-redis sent the script
// again. The step must be applied once.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/internal/redistest"
)

// errIncomplete: the buffer does not hold a whole RESP value yet.
var errIncomplete = errors.New("incomplete RESP value")

// respLine returns the line starting at b[i] (without CRLF) and the index
// after it.
func respLine(b []byte, i int) (string, int, error) {
	j := bytes.Index(b[i:], []byte("\r\n"))
	if j < 0 {
		return "", 0, errIncomplete
	}
	return string(b[i : i+j]), i + j + 2, nil
}

// respSkip returns the index after the RESP2/RESP3 value starting at b[i].
func respSkip(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errIncomplete
	}
	line, next, err := respLine(b, i)
	if err != nil {
		return 0, err
	}
	switch line[0] {
	case '+', '-', ':', '_', ',', '#', '(':
		return next, nil
	case '$', '!', '=':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return 0, err
		}
		if n < 0 {
			return next, nil
		}
		if next+n+2 > len(b) {
			return 0, errIncomplete
		}
		return next + n + 2, nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return 0, err
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for k := 0; k < n; k++ {
			if next, err = respSkip(b, next); err != nil {
				return 0, err
			}
		}
		if line[0] == '|' { // an attribute is followed by the reply it annotates
			return respSkip(b, next)
		}
		return next, nil
	}
	return 0, errors.New("unknown RESP type " + strconv.Quote(line[:1]))
}

// respCommand parses the command (an array of bulk strings, as go-redis
// sends them) starting at b[i].
func respCommand(b []byte, i int) ([]string, int, error) {
	line, next, err := respLine(b, i)
	if err != nil {
		return nil, 0, err
	}
	if line == "" || line[0] != '*' {
		return nil, 0, errors.New("request is not a RESP array: " + strconv.Quote(line))
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil {
		return nil, 0, err
	}
	args := make([]string, 0, n)
	for k := 0; k < n; k++ {
		l, nx, err := respLine(b, next)
		if err != nil {
			return nil, 0, err
		}
		if l == "" || l[0] != '$' {
			return nil, 0, errors.New("argument is not a bulk string: " + strconv.Quote(l))
		}
		sz, err := strconv.Atoi(l[1:])
		if err != nil {
			return nil, 0, err
		}
		if nx+sz+2 > len(b) {
			return nil, 0, errIncomplete
		}
		args = append(args, string(b[nx:nx+sz]))
		next = nx + sz + 2
	}
	return args, next, nil
}

// commitOf returns the commit id if args run the commit script: EVALSHA or
// EVAL whose KEYS are the partition's lease then an instance hash (see
// redisstore.commitCall; no other script has that shape).
func commitOf(args []string) (id string, ok bool) {
	if len(args) < 3 {
		return "", false
	}
	if c := strings.ToUpper(args[0]); c != "EVALSHA" && c != "EVAL" {
		return "", false
	}
	n, err := strconv.Atoi(args[2])
	if err != nil || n < 2 || len(args) < 3+n+2 {
		return "", false
	}
	if !strings.HasSuffix(args[3], "}:lease") || !strings.Contains(args[4], "}:i:") {
		return "", false
	}
	return args[3+n+1], true // ARGV[2], the commit id
}

// commitDropProxy forwards TCP between go-redis and a redis-server. For the
// first max commit scripts it sees (each commit id at most once, so the
// retry goes through; only the first in a pipeline), it lets Redis run the script, reads the script's
// reply, and then closes the client's connection instead of passing the
// reply on: the step was applied, the worker saw a network error, and
// go-redis sends the script again on a new connection.
type commitDropProxy struct {
	l   net.Listener
	up  string
	max int

	mu         sync.Mutex
	commits    int               // commit scripts seen (retries included)
	drops      int               // commits chosen to be dropped
	noID       int               // commit scripts without a commit id
	marked     map[string]bool   // commit ids dropped, or sent in a dropped pipeline
	dropped    map[string]string // commit id -> the reply the worker never got
	retryReply map[string]string // commit id -> reply to the retry
	wg         sync.WaitGroup
}

// pending is what the proxy knows about a command awaiting its reply.
type pending struct {
	commitID string
	drop     bool // close the connection instead of passing the reply on
	retry    bool // a retried dropped commit: record its reply
}

func newCommitDropProxy(t *testing.T, upstream string, max int) *commitDropProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &commitDropProxy{l: l, up: upstream, max: max, marked: map[string]bool{},
		dropped: map[string]string{}, retryReply: map[string]string{}}
	proxyConnections(t, l, upstream, &p.wg, func(c, u net.Conn) { p.serve(t, c, u) })
	return p
}

func (p *commitDropProxy) addr() string { return p.l.Addr().String() }

func (p *commitDropProxy) serve(t *testing.T, c, u net.Conn) {
	defer c.Close()
	defer u.Close()
	var mu sync.Mutex
	var queue []pending // commands sent upstream, in order, awaiting replies
	// dropQueued reports whether a command queued on this connection is
	// already to be dropped (there is one drop per connection at most).
	dropQueued := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, pd := range queue {
			if pd.drop {
				return true
			}
		}
		return false
	}
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
				// Note every complete command before its bytes reach Redis,
				// so its reply always finds it in the queue.
				var ids []string // commit ids in this chunk (one pipeline)
				dropHere := false
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
					pd := pending{}
					if id, ok := commitOf(args); ok {
						pd.commitID = id
						ids = append(ids, id)
						p.mu.Lock()
						p.commits++
						switch {
						case id == "":
							p.noID++
						case p.marked[id]:
							pd.retry = true
						case p.drops < p.max && !dropQueued():
							p.marked[id] = true
							p.drops++
							pd.drop, dropHere = true, true
						}
						p.mu.Unlock()
					}
					mu.Lock()
					queue = append(queue, pd)
					mu.Unlock()
				}
				if dropHere {
					// The other commits of the pipeline are sent again
					// with it: let their retry through too, so go-redis
					// does not run out of retries.
					p.mu.Lock()
					for _, id := range ids {
						if id != "" {
							p.marked[id] = true
						}
					}
					p.mu.Unlock()
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
	// server -> client: pass complete replies on, one per queued command.
	var buf []byte
	chunk := make([]byte, 64<<10)
	for {
		n, err := u.Read(chunk)
		if n > 0 {
			buf = append(buf, chunk[:n]...)
			out := 0 // buf[:out] holds complete replies to pass on
			for {
				if out < len(buf) && buf[out] == '>' { // push, not a reply
					next, perr := respSkip(buf, out)
					if perr != nil {
						break
					}
					out = next
					continue
				}
				next, perr := respSkip(buf, out)
				if errors.Is(perr, errIncomplete) {
					break
				}
				if perr != nil {
					t.Errorf("proxy: reply: %v", perr)
					return
				}
				mu.Lock()
				var pd pending
				if len(queue) > 0 {
					pd, queue = queue[0], queue[1:]
				}
				mu.Unlock()
				reply := replyText(buf[out:next])
				if pd.retry {
					p.mu.Lock()
					p.retryReply[pd.commitID] = reply
					p.mu.Unlock()
				}
				if pd.drop {
					p.mu.Lock()
					p.dropped[pd.commitID] = reply
					p.mu.Unlock()
					// The replies before this one were complete; pass them
					// on, then cut the connection before this reply.
					_, _ = c.Write(buf[:out])
					c.Close()
					u.Close()
					<-done
					return
				}
				out = next
			}
			if out > 0 {
				if _, werr := c.Write(buf[:out]); werr != nil {
					return
				}
				buf = append(buf[:0], buf[out:]...)
			}
		}
		if err != nil {
			c.Close()
			<-done
			return
		}
	}
}

// replyText renders a bulk or simple string reply as its text, anything else
// as the raw RESP.
func replyText(b []byte) string {
	s := string(b)
	switch {
	case strings.HasPrefix(s, "$"):
		if i := strings.Index(s, "\r\n"); i >= 0 {
			return strings.TrimSuffix(s[i+2:], "\r\n")
		}
	case strings.HasPrefix(s, "+"):
		return strings.TrimSuffix(s[1:], "\r\n")
	}
	return strings.TrimSpace(s)
}

// TestAmbiguousCommitsAppliedOnce runs a worker whose connection to Redis
// goes through commitDropProxy: the connection of many commit scripts is
// cut after the script ran and before its reply reached the worker, and
// go-redis retries the script. Every instance must complete with its exact
// output and every history must be well formed with no event twice (without
// the commit id check in the commit script, the retry would append the
// step's events, activities and messages a second time).
func TestAmbiguousCommitsAppliedOnce(t *testing.T) {
	addr := redistest.StartServer(t)
	e := samplesEnv(t, "redis://"+addr)
	px := newCommitDropProxy(t, addr, 30)
	we := *e
	we.url = "redis://" + px.addr()
	we.worker(worker.Options{VisibilityTimeout: 5 * time.Second})
	want := e.workload("amb", 40, false)
	lost := e.expectOutputs(want, 60*time.Second)

	// No event twice in any history (a re-applied step appends identical
	// events: same ids, same timestamps).
	ctx := context.Background()
	dupEvents := 0
	page, err := e.client.QueryInstances(ctx, host.InstanceQuery{PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range page.Instances {
		h, err := e.client.GetHistory(ctx, st.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, ev := range h {
			b, _ := json.Marshal(ev)
			if seen[string(b)] {
				dupEvents++
				t.Errorf("%s: event twice in the history: %s", st.InstanceID, b)
			}
			seen[string(b)] = true
		}
	}
	r := e.checkInvariants()

	// go-redis retries a dropped commit after a back-off of up to half a
	// second, and the instances can finish (through other commits) before
	// the last retry's reply went through the proxy: wait for every one.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		px.mu.Lock()
		missing := 0
		for id := range px.dropped {
			if px.retryReply[id] == "" {
				missing++
			}
		}
		px.mu.Unlock()
		if missing == 0 {
			break
		}
	}
	px.mu.Lock()
	defer px.mu.Unlock()
	applied, retriedDup := 0, 0
	for id, reply := range px.dropped {
		if strings.HasPrefix(reply, "ok ") {
			applied++
		}
		if r := px.retryReply[id]; strings.HasPrefix(r, "dup ") {
			retriedDup++
		} else {
			t.Errorf("commit %s: reply %q dropped, the retry got %q; want dup (the step was applied by the first run)", id, reply, r)
		}
	}
	if applied == 0 {
		t.Errorf("no commit reply dropped after the script applied the step (%d commits, dropped replies %v)", px.commits, px.dropped)
	}
	if retriedDup == 0 {
		t.Errorf("no dropped commit was retried and recognised as applied (retry replies %v)", px.retryReply)
	}
	if px.noID > 0 {
		t.Errorf("%d commit scripts had no commit id: a retry of those would apply the step twice", px.noID)
	}
	t.Logf("figures: ambiguous commits: %d commit scripts, %d replies dropped (%d after the step was applied), %d retries answered dup, %d instances (%d checked), %d did not complete as expected, %d duplicate events",
		px.commits, len(px.dropped), applied, retriedDup, len(want), r.Total(), lost, dupEvents)
}

// proxyConnections accepts connections on l until it is closed (the test's
// cleanup closes it and then waits on wg), connects each to upstream and
// hands both to serve in its own goroutine, counted in wg.
func proxyConnections(t *testing.T, l net.Listener, upstream string, wg *sync.WaitGroup, serve func(c, u net.Conn)) {
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); serve(c, u) }()
		}
	}()
}
