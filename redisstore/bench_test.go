package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
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

// hello5Events returns the 13 history events of a Hello5 orchestration's one
// step: five activities run and completed in the same step.
func hello5Events(id string) []abi.HistoryEvent {
	out := []abi.HistoryEvent{ev(abi.EventOrchestratorStarted, -1), ev(abi.EventExecutionStarted, -1)}
	out[1].Name, out[1].Input, out[1].InstanceID, out[1].ExecutionID = "Hello5", `"Tokyo"`, id, "e-"+id
	for i := int32(0); i < 5; i++ {
		s := ev(abi.EventTaskScheduled, i)
		s.Name, s.Input = "Bench_Echo", `"Tokyo"`
		c := ev(abi.EventTaskCompleted, -1)
		c.TaskScheduledID, c.Result = i, `"Hello Tokyo!"`
		out = append(out, s, c)
	}
	done := ev(abi.EventExecutionCompleted, -1)
	done.Result = `["Hello Tokyo!","Hello Tokyo!","Hello Tokyo!","Hello Tokyo!","Hello Tokyo!"]`
	return append(out, done, ev(abi.EventOrchestratorCompleted, -1))
}

// evalshaStats returns the EVALSHA calls and usec of INFO commandstats, and
// the usec of the other commands but INFO, CONFIG and XREADGROUP (those
// that scripts run, in BenchmarkHello5Scripts).
func evalshaStats(b *testing.B, c *redis.Client) (calls, usec, inner int64) {
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") || name == "cmdstat_info" || name == "cmdstat_xreadgroup" || name == "cmdstat_config" {
			continue
		}
		var n, u int64
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				n, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				u, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		if name == "cmdstat_evalsha" {
			calls, usec = n, u
		} else {
			inner += u
		}
	}
	return calls, usec, inner
}

// serverCPU returns the redis-server's CPU time (INFO cpu, user + sys).
func serverCPU(b *testing.B, c *redis.Client) time.Duration {
	info, err := c.Info(ctx, "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return time.Duration(sum * float64(time.Second))
}

// BenchmarkHello5Scripts runs hello5-like orchestrations against a real
// redis-server (skipped without one): per orchestration one CreateInstance
// and one Commit (ExpectFresh, 13 events, Pending → Completed, the start
// message acked), created from 16 goroutines and committed pipelined, 64 at
// a time. It reports the server's EVALSHA µs per call of each script (INFO
// commandstats), the µs the commands run inside the scripts take per
// orchestration, and the server's CPU time per orchestration (INFO cpu; it
// includes the INFO and XREADGROUP calls of the benchmark itself). With -v
// it logs the whole INFO commandstats.
func BenchmarkHello5Scripts(b *testing.B) {
	c := redis.NewClient(&redis.Options{Addr: redistest.StartServer(b)})
	defer c.Close()
	s, err := New(ctx, c, newHub(), Options{Partitions: 1})
	if err != nil {
		b.Fatal(err)
	}
	ep, _, _ := s.AcquireLease(ctx, 0, "A", 1e12)
	const batch = 64
	var createCalls, createUsec, commitCalls, commitUsec, inner int64
	cpu0 := serverCPU(b, c)
	b.ResetTimer()
	for n := 0; n < b.N; n += batch {
		m := min(batch, b.N-n)
		states := make([]host.InstanceState, m)
		c0, u0, i0 := evalshaStats(b, c)
		// Created from 16 goroutines, like the bench harness's starters.
		var wg sync.WaitGroup
		cerrs := make([]error, m)
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < m; i += 16 {
					id := fmt.Sprintf("h5-%08d", n+i)
					st := pendingState(id)
					st.Name, st.Input, st.App = "Hello5", `"Tokyo"`, "samples"
					st.Digest = "sha256:3f1c9a0e5b7d2c4f6a8e0b1d3c5f7a9e2b4d6f8a0c1e3b5d7f9a2c4e6b8d0f1a"
					start := startMsg(id)
					start.ExecutionID = st.ExecutionID
					cerrs[i] = s.CreateInstance(ctx, st, start)
					states[i] = st
				}
			}()
		}
		wg.Wait()
		for _, err := range cerrs {
			if err != nil {
				b.Fatal(err)
			}
		}
		c1, u1, i1 := evalshaStats(b, c)
		msgs, err := s.ReadControl(ctx, 0, "A", m, 0)
		if err != nil || len(msgs) != m {
			b.Fatalf("read control: %d messages, %v", len(msgs), err)
		}
		ack := make(map[string]string, m)
		for _, msg := range msgs {
			ack[msg.InstanceID] = msg.ID
		}
		commits := make([]host.Commit, m)
		for i := range commits {
			st := states[i]
			st.Status, st.Output, st.UpdatedAt = abi.StatusCompleted, `["Hello Tokyo!","Hello Tokyo!","Hello Tokyo!","Hello Tokyo!","Hello Tokyo!"]`, time.Now()
			commits[i] = host.Commit{Partition: 0, Epoch: ep, CommitID: "c1-" + st.InstanceID, State: st, NewEvents: hello5Events(st.InstanceID),
				ExpectFresh: st.ExecutionID, Acks: []string{ack[st.InstanceID]}}
		}
		c2, u2, i2 := evalshaStats(b, c)
		errs, err := s.Commit(ctx, commits)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range errs {
			if e != nil {
				b.Fatal(e)
			}
		}
		c3, u3, i3 := evalshaStats(b, c)
		createCalls, createUsec = createCalls+c1-c0, createUsec+u1-u0
		commitCalls, commitUsec = commitCalls+c3-c2, commitUsec+u3-u2
		inner += i1 - i0 + i3 - i2
	}
	b.StopTimer()
	b.ReportMetric((serverCPU(b, c)-cpu0).Seconds()*1e6/float64(b.N), "server-cpu-µs/orch")
	if createCalls > 0 && commitCalls > 0 {
		b.ReportMetric(float64(createUsec)/float64(createCalls), "create-µs/call")
		b.ReportMetric(float64(commitUsec)/float64(commitCalls), "commit-µs/call")
		b.ReportMetric(float64(inner)/float64(b.N), "inner-µs/orch")
	}
	if testing.Verbose() {
		info, _ := c.Info(ctx, "commandstats").Result()
		b.Logf("after %d orchestrations:\n%s", b.N, info)
	}
}
