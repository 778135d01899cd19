package redisstore

import (
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/internal/redistest"
)

// benchCommit measures Commit of batches of 64 steps (4 events, 1 ack, 1
// activity each) — the hot path of an orchestration worker.
func benchCommit(b *testing.B, c redis.UniversalClient) {
	s, err := New(ctx, c, newHub(), Options{Partitions: 1})
	if err != nil {
		b.Fatal(err)
	}
	ep, _, _ := s.AcquireLease(ctx, 0, "A", 1e12)
	const batch = 64
	states := make([]host.InstanceState, batch)
	for i := range states {
		states[i] = pendingState(fmt.Sprintf("bench-%d", i))
		states[i].Status = abi.StatusRunning
	}
	events := []abi.HistoryEvent{ev(abi.EventOrchestratorStarted, -1), ev(abi.EventTaskCompleted, -1), ev(abi.EventTaskScheduled, 1), ev(abi.EventOrchestratorCompleted, -1)}
	events[1].Result = `{"greeting":"Hello Tokyo!","n":42}`
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		commits := make([]host.Commit, batch)
		for i := range commits {
			commits[i] = host.Commit{Partition: 0, Epoch: ep, CommitID: fmt.Sprint(n), State: states[i], NewEvents: events,
				Acks: []string{"1-1"}, Activities: []host.ActivityItem{{Name: "SayHello", Input: `"Tokyo"`, TaskID: 1}}}
		}
		errs, err := s.Commit(ctx, commits)
		if err != nil || errs[0] != nil {
			b.Fatal(err, errs[0])
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "steps/s")
}

func BenchmarkCommitMiniredis(b *testing.B) {
	m := redistest.Miniredis(b)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer c.Close()
	benchCommit(b, c)
}

func BenchmarkCommitRedis(b *testing.B) {
	c := redis.NewClient(&redis.Options{Addr: redistest.StartServer(b)})
	defer c.Close()
	benchCommit(b, c)
}
