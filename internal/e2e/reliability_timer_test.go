package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/internal/redistest"
)

// TestTimersUnderClockSkew runs durable timers set for an absolute time on
// a worker whose clock is skewed (WorkerOptions.Now): each timer must fire
// exactly once and never before its fire time by the real clock (the guest's
// activity reports the real time after the timer fired). A late clock makes
// timers late by up to the skew; that lateness is measured.
func TestTimersUnderClockSkew(t *testing.T) {
	for _, skew := range []time.Duration{30 * time.Second, -3 * time.Second} {
		t.Run(fmt.Sprintf("skew%+v", skew), func(t *testing.T) {
			e := newEnv(t, "redis://"+redistest.StartServer(t))
			e.deploy("timers", buildGuest(t, "testdata/guests/timers"))
			e.worker(worker.Options{Now: func() time.Time { return time.Now().Add(skew) }})
			at := time.Now().Add(2 * time.Second).UnixMilli()
			var ids []string
			for i := 0; i < 5; i++ {
				id := fmt.Sprint("t", i)
				e.start("SleepUntil", id, strconv.FormatInt(at, 10))
				ids = append(ids, id)
			}
			var early, late time.Duration
			for _, id := range ids {
				st := e.wait(id, 30*time.Second)
				if st.Status != abi.StatusCompleted {
					t.Fatalf("%s: %s %v", id, st.Status, st.Failure)
				}
				woke, _ := strconv.ParseInt(st.Output, 10, 64)
				if d := time.Duration(at-woke) * time.Millisecond; d > early {
					early = d
				}
				if d := time.Duration(woke-at) * time.Millisecond; d > late {
					late = d
				}
			}
			if early > 0 {
				t.Errorf("a timer fired %s before its fire time", early)
			}
			e.checkInvariants()
			t.Logf("figures: timers with worker clock skew %+v: 5 timers, fired at most %s late, %s early", skew, late, early)
		})
	}
}
