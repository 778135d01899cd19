package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/internal/redistest"
)

// outageDuration is how long TestRedisRestart keeps Redis down: 2 s in CI,
// $DW_OUTAGE (e.g. 30s) for the documented long run.
func outageDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("DW_OUTAGE")); err == nil && d > 0 {
		return d
	}
	return 2 * time.Second
}

// TestRedisRestart stops redis-server (SIGTERM or SIGKILL) with AOF on while
// a client keeps starting instances and two worker processes run them,
// keeps it down for a while, and starts it again on the same AOF. Workers
// must survive and reconnect on their own. With appendfsync always every
// start that was acknowledged must complete exactly; with everysec the
// acknowledged starts that were lost are counted (the loss window).
func TestRedisRestart(t *testing.T) {
	for _, c := range []struct {
		fsync string
		sig   syscall.Signal
	}{{"always", syscall.SIGKILL}, {"always", syscall.SIGTERM}, {"everysec", syscall.SIGKILL}} {
		t.Run(fmt.Sprintf("%s-%s", c.fsync, c.sig), func(t *testing.T) {
			srv := redistest.NewServer(t, "--appendonly", "yes", "--appendfsync", c.fsync)
			e := samplesEnv(t, srv.URL())
			po := procOpts{lease: 2 * time.Second, visibility: 3 * time.Second}
			procs := []*workerProc{e.startWorkerProc(po), e.startWorkerProc(po)}

			var mu sync.Mutex
			want := map[string]string{}
			acked := map[string]time.Time{}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // keeps starting instances, through the outage
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("r%d", i)
					fn, in, w := "E1_HelloSequence", "", `["Hello Tokyo!","Hello Seattle!","Hello London!"]`
					if i%2 == 1 {
						dir := fmt.Sprintf("/r/%d", i)
						fn, in, w = "E2_BackupSiteContent", `"`+dir+`"`, fmt.Sprint(backupTotal(dir))
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					_, err := e.client.StartNew(ctx, client.StartOptions{FunctionName: fn, InstanceID: id, Input: in})
					cancel()
					if err == nil {
						mu.Lock()
						want[id], acked[id] = w, time.Now()
						mu.Unlock()
					} else {
						time.Sleep(50 * time.Millisecond)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			time.Sleep(1500 * time.Millisecond)
			killedAt := time.Now()
			srv.Stop(c.sig)
			down := outageDuration()
			time.Sleep(down)
			srv.Start()
			restartedAt := time.Now()
			time.Sleep(1500 * time.Millisecond)
			close(stop)
			wg.Wait()
			checkWorkersAlive(t, procs, "the Redis outage")
			// Acknowledged starts that Redis forgot.
			lostStarts, window := 0, time.Duration(0)
			ctx := context.Background()
			for id, at := range acked {
				if _, err := e.client.GetStatus(ctx, id); errors.Is(err, host.ErrInstanceNotFound) {
					lostStarts++
					delete(want, id)
					if at.Before(killedAt) && killedAt.Sub(at) > window {
						window = killedAt.Sub(at)
					}
				}
			}
			if c.fsync == "always" && lostStarts > 0 {
				t.Errorf("appendfsync always: %d acknowledged starts lost", lostStarts)
			}
			lost := e.expectOutputs(want, 90*time.Second)
			r := e.checkInvariants()
			t.Logf("figures: redis %s appendfsync %s, %s down: %d acknowledged starts, %d lost starts (loss window %s), %d instances did not complete as expected, %d instances checked, back %s after restart",
				c.sig, c.fsync, down, len(acked), lostStarts, window, lost, r.Total(), time.Since(restartedAt).Round(time.Millisecond))
		})
	}
}

// TestTimersSurviveDowntime creates timers, stops every worker and Redis,
// and brings them back after the timers were due: each timer fires exactly
// once, and never before its fire time.
func TestTimersSurviveDowntime(t *testing.T) {
	srv := redistest.NewServer(t, "--appendonly", "yes", "--appendfsync", "always")
	e := samplesEnv(t, srv.URL())
	w := e.startWorkerProc(procOpts{lease: time.Second})
	ids := startMonitors(e, "down", 6, 2*time.Second)
	waitTimersCreated(t, e, ids)
	w.signal(syscall.SIGTERM)
	w.waitExit(10 * time.Second)
	srv.Stop(syscall.SIGKILL)
	time.Sleep(outageDuration() + 2*time.Second) // past every fire time
	srv.Start()
	e.startWorkerProc(procOpts{lease: time.Second})
	for _, id := range ids {
		st := e.wait(id, 60*time.Second)
		if st.Status != abi.StatusCompleted {
			t.Errorf("%s: %s %v", id, st.Status, st.Failure)
		}
	}
	e.checkInvariants()
}

// startMonitors starts E3_Monitor instances on a cloudy city: each checks
// the weather, waits for a durable timer of interval, continues as new and
// expires at the next check.
func startMonitors(e *env, prefix string, n int, interval time.Duration) []string {
	var ids []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		e.start("E3_Monitor", id, fmt.Sprintf(`{"location":"Redmond","phone":"555","expiryTime":%q,"pollingInterval":%d}`,
			time.Now().Add(interval/2).UTC().Format(time.RFC3339Nano), int64(interval)))
		ids = append(ids, id)
	}
	return ids
}

// waitTimersCreated waits until every instance has a TimerCreated event.
func waitTimersCreated(t *testing.T, e *env, ids []string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			h, _ := e.client.GetHistory(context.Background(), id)
			if countType(h, abi.EventTimerCreated) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s created no timer", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
