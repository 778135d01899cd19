package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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

// cmdCounter is a go-redis hook counting commands and round trips.
type cmdCounter struct{ cmds, trips atomic.Int64 }

func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.cmds.Add(1)
		c.trips.Add(1)
		return next(ctx, cmd)
	}
}

func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.cmds.Add(int64(len(cmds)))
		c.trips.Add(1)
		return next(ctx, cmds)
	}
}

// benchStates returns n instances created 1 ms apart, all in status except
// every (n/special)-th one, which is in specialStatus (special of them).
func benchStates(prefix string, n int, status abi.RuntimeStatus, special int, specialStatus abi.RuntimeStatus) []host.InstanceState {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]host.InstanceState, n)
	for i := range out {
		st := pendingState(fmt.Sprintf("%s-%06d", prefix, i))
		st.CreatedAt = base.Add(time.Duration(i) * time.Millisecond)
		st.Status = status
		if special > 0 && i%(n/special) == n/special/2 {
			st.Status = specialStatus
		}
		out[i] = st
	}
	return out
}

// BenchmarkQueryRareStatus queries the Failed instances of a hub of 100,000
// instances (16 partitions) of which 10 are Failed, one page of 100, against
// a real redis-server (skipped without one). It reports the Redis commands
// and round trips per query.
func BenchmarkQueryRareStatus(b *testing.B) {
	c := redis.NewClient(&redis.Options{Addr: redistest.StartServer(b)})
	defer c.Close()
	s, err := New(ctx, c, newHub(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	bulkCreate(b, s, benchStates("q", 100000, abi.StatusCompleted, 10, abi.StatusFailed))
	b.Logf("created 100,000 instances in %s", time.Since(t0).Round(time.Millisecond))
	cnt := &cmdCounter{}
	c.AddHook(cnt)
	q := host.InstanceQuery{Statuses: []abi.RuntimeStatus{abi.StatusFailed}, PageSize: 100}
	cnt.cmds.Store(0)
	cnt.trips.Store(0)
	b.ResetTimer()
	for b.Loop() {
		page, err := s.QueryInstances(ctx, q)
		if err != nil || len(page.Instances) != 10 || page.ContinuationToken != "" {
			b.Fatalf("query = %d instances, token %q, %v", len(page.Instances), page.ContinuationToken, err)
		}
	}
	b.ReportMetric(float64(cnt.cmds.Load())/float64(b.N), "cmds/op")
	b.ReportMetric(float64(cnt.trips.Load())/float64(b.N), "roundtrips/op")
}

// BenchmarkPurge100k purges 100,000 Completed instances (16 partitions) with
// PurgeInstances against a real redis-server (skipped without one); the
// instances are created (pipelined) outside the timer. Run it with
// -benchtime=1x: every iteration creates 100,000 instances.
func BenchmarkPurge100k(b *testing.B) {
	c := redis.NewClient(&redis.Options{Addr: redistest.StartServer(b)})
	defer c.Close()
	cnt := &cmdCounter{}
	c.AddHook(cnt)
	var purged int
	var trips int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s, err := New(ctx, c, newHub(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		bulkCreate(b, s, benchStates("p", 100000, abi.StatusCompleted, 0, ""))
		b.Logf("created 100,000 instances in %s", time.Since(t0).Round(time.Millisecond))
		trips -= cnt.trips.Load()
		b.StartTimer()
		res, err := s.PurgeInstances(ctx, host.InstanceQuery{}, false, 0, nil)
		b.StopTimer()
		trips += cnt.trips.Load()
		if err != nil || res.Deleted != 100000 || res.Skipped != 0 {
			b.Fatalf("purge = %+v, %v", res, err)
		}
		purged += res.Deleted
		if left := hubKeysLeftB(b, c, s); left > 0 {
			b.Fatalf("%d instance keys left", left)
		}
		if _, err := s.DeleteHub(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(purged)/b.Elapsed().Seconds(), "instances/s")
	b.ReportMetric(float64(trips)/float64(b.N), "roundtrips/op")
}

// hubKeysLeftB counts the instance hashes left in s's partitions.
func hubKeysLeftB(b *testing.B, c *redis.Client, s *Store) int {
	n := 0
	for p := range s.parts {
		it := c.Scan(ctx, 0, s.parts[p].prefix+"i:*", 1000).Iterator()
		for it.Next(ctx) {
			n++
		}
		if err := it.Err(); err != nil {
			b.Fatal(err)
		}
	}
	return n
}
