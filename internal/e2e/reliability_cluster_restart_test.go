package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/internal/redistest"
)

// starter keeps starting E1/E2 instances (alternately) through a fault,
// each StartNew with a 1 s deadline, and records the starts Redis
// acknowledged.
type starter struct {
	mu     sync.Mutex
	want   map[string]string    // acknowledged start -> expected output
	acked  map[string]time.Time // acknowledged start -> when
	errs   map[string]int       // start errors by kind (first line)
	failed int
	stop   chan struct{}
	wg     sync.WaitGroup
}

func (e *env) startStarter(prefix string) *starter {
	s := &starter{want: map[string]string{}, acked: map[string]time.Time{}, errs: map[string]int{}, stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			default:
			}
			id := fmt.Sprintf("%s%d", prefix, i)
			fn, in, w := "E1_HelloSequence", "", `["Hello Tokyo!","Hello Seattle!","Hello London!"]`
			if i%2 == 1 {
				dir := fmt.Sprintf("/%s/%d", prefix, i)
				fn, in, w = "E2_BackupSiteContent", `"`+dir+`"`, fmt.Sprint(backupTotal(dir))
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := e.client.StartNew(ctx, client.StartOptions{FunctionName: fn, InstanceID: id, Input: in})
			cancel()
			s.mu.Lock()
			if err == nil {
				s.want[id], s.acked[id] = w, time.Now()
			} else {
				s.failed++
				s.errs[errKind(err)]++
			}
			s.mu.Unlock()
			if err != nil {
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return s
}

// errKind is the first word of an error's innermost message: "CLUSTERDOWN",
// "CROSSSLOT", "context", "dial", ...
func errKind(err error) string {
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(err) {
		err = u
	}
	f := strings.Fields(err.Error())
	if len(f) == 0 {
		return "?"
	}
	return strings.TrimSuffix(f[0], ":")
}

// waitAckedAfter waits up to timeout for a start acknowledged after t and
// reports whether there was one.
func (s *starter) waitAckedAfter(t time.Time, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		s.mu.Lock()
		for _, at := range s.acked {
			if at.After(t) {
				s.mu.Unlock()
				return true
			}
		}
		s.mu.Unlock()
	}
	return false
}

// finish stops starting and returns the acknowledged starts.
func (s *starter) finish() (want map[string]string, acked map[string]time.Time) {
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.want, s.acked
}

// lostStarts removes from want the acknowledged starts the hub does not know
// and returns them.
func (e *env) lostStarts(want map[string]string) []string {
	var lost []string
	for id := range want {
		if _, err := e.client.GetStatus(context.Background(), id); errors.Is(err, host.ErrInstanceNotFound) {
			lost = append(lost, id)
			delete(want, id)
		}
	}
	return lost
}

// checkNoCrossSlot fails the test if a worker process logged a CROSSSLOT
// error or a start failed with one.
func checkNoCrossSlot(t *testing.T, s *starter, procs ...*workerProc) {
	t.Helper()
	for _, p := range procs {
		if n := p.logCount("CROSSSLOT"); n > 0 {
			t.Errorf("worker %d logged %d CROSSSLOT errors", p.pid(), n)
		}
	}
	if s != nil && s.errs["CROSSSLOT"] > 0 {
		t.Errorf("%d starts failed with CROSSSLOT", s.errs["CROSSSLOT"])
	}
}

// TestClusterMasterRestart SIGKILLs one master of a 3-master Redis Cluster
// whose nodes run with AOF appendfsync always, while a client keeps
// starting instances and two worker processes run them, and starts it again
// on the same port and directory (nodes.conf, AOF) after 2 s. The workers
// must survive the cluster being down and reconnect on their own; every
// start Redis acknowledged must complete with its exact output; the
// invariants hold.
func TestClusterMasterRestart(t *testing.T) {
	c := redistest.StartClusterWithArgs(t, 3, false, "--appendonly", "yes", "--appendfsync", "always")
	e := samplesEnv(t, c.URL())
	po := procOpts{lease: 2 * time.Second, visibility: 3 * time.Second}
	procs := []*workerProc{e.startWorkerProc(po), e.startWorkerProc(po)}
	s := e.startStarter("cr")
	time.Sleep(1500 * time.Millisecond)
	victim := c.Nodes[0]
	killedAt := time.Now()
	victim.Stop(syscall.SIGKILL)
	down := outageDuration()
	time.Sleep(down)
	victim.Start()
	c.WaitReady(t, 60*time.Second)
	t.Logf("cluster ok again %s after the kill", time.Since(killedAt).Round(time.Millisecond))
	restartedAt := time.Now()
	time.Sleep(1500 * time.Millisecond)
	want, acked := s.finish()
	checkWorkersAlive(t, procs, "the outage")
	lostStarts := e.lostStarts(want)
	if len(lostStarts) > 0 {
		t.Errorf("appendfsync always: %d acknowledged starts lost: %v", len(lostStarts), lostStarts)
	}
	lost := e.expectOutputs(want, 90*time.Second)
	r := e.checkInvariants()
	checkNoCrossSlot(t, s, procs...)
	t.Logf("figures: cluster master SIGKILL, appendfsync always, %s down: %d acknowledged starts (%d refused: %v), %d lost starts, %d did not complete as expected, %d instances checked, back %s after restart",
		down, len(acked), s.failed, s.errs, len(lostStarts), lost, r.Total(), time.Since(restartedAt).Round(time.Millisecond))
}
