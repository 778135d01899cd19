package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
)

// The conformance suite: one set of behaviour tests run against every
// backend (miniredis, a real redis-server, a real Redis Cluster). Each subtest
// uses its own task hub on the shared server, so they do not interfere.

// backend gives the suite a client for one kind of server.
type backend struct {
	name   string
	client redis.UniversalClient
	// cluster is set for Redis Cluster: slot checks use CLUSTER KEYSLOT.
	cluster bool
}

var hubSeq atomic.Int64

// newHub returns a fresh hub name unique in this test process.
func newHub() string { return fmt.Sprintf("T%dx%d", time.Now().UnixNano()%1e9, hubSeq.Add(1)) }

func (b *backend) store(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := New(context.Background(), b.client, newHub(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func runConformance(t *testing.T, b *backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b *backend)
	}{
		{"HubAndPartitions", testHubAndPartitions},
		{"CreateGetReplace", testCreateGetReplace},
		{"ConcurrentCreate", testConcurrentCreate},
		{"OddInstanceIDs", testOddInstanceIDs},
		{"SendToInstance", testSendToInstance},
		{"Leases", testLeases},
		{"Heartbeat", testHeartbeat},
		{"StaleCommit", testStaleCommit},
		{"DuplicateCommit", testDuplicateCommit},
		{"LoadInstances", testLoadInstances},
		{"ExpectFresh", testExpectFresh},
		{"CommitLengths", testCommitLengths},
		{"CommitAppliesEverything", testCommitAppliesEverything},
		{"CommitBatch", testCommitBatch},
		{"ControlReadBlockAndClaim", testControlReadBlockAndClaim},
		{"Activities", testActivities},
		{"ReclaimActivities", testReclaimActivities},
		{"Timers", testTimers},
		{"Outbox", testOutbox},
		{"Modules", testModules},
		{"DeleteHub", testDeleteHub},
		{"QueryPaging", testQueryPaging},
		{"QueryFilters", testQueryFilters},
		{"QueryToken", testQueryToken},
		{"QueryConcurrent", testQueryConcurrent},
		{"PurgeInstance", testPurgeInstance},
		{"PurgeInstances", testPurgeInstances},
		{"RewindInstance", testRewindInstance},
		{"IdempotencyKeys", testIdempotencyKeys},
		{"PurgeRemovesDedupMarkers", testPurgeRemovesDedupMarkers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, b)
		})
	}
}

// --- helpers ---

var ctx = context.Background()

func ev(typ abi.EventType, id int32) abi.HistoryEvent {
	return abi.HistoryEvent{EventID: id, Type: typ, Timestamp: time.Now().UnixNano()}
}

func startMsg(id string) host.ControlMessage {
	e := ev(abi.EventExecutionStarted, -1)
	e.Name, e.InstanceID, e.Input = "Hello", id, `"in"`
	return host.ControlMessage{InstanceID: id, ExecutionID: "e1", Event: e}
}

func pendingState(id string) host.InstanceState {
	now := time.Now()
	return host.InstanceState{InstanceID: id, Name: "Hello", ExecutionID: "e-" + id, Status: abi.StatusPending,
		Input: `"in"`, CreatedAt: now, UpdatedAt: now, App: "app", Digest: "sha256:x"}
}

func mustCreate(t *testing.T, s *Store, id string) host.InstanceState {
	t.Helper()
	st := pendingState(id)
	if err := s.CreateInstance(ctx, st, startMsg(id)); err != nil {
		t.Fatalf("CreateInstance(%q): %v", id, err)
	}
	return st
}

func mustLease(t *testing.T, s *Store, p int, owner string) int64 {
	t.Helper()
	ep, ok, err := s.AcquireLease(ctx, p, owner, time.Minute)
	if err != nil || !ok {
		t.Fatalf("AcquireLease(%d, %s) = %d, %v, %v", p, owner, ep, ok, err)
	}
	return ep
}

func mustCommit(t *testing.T, s *Store, cs ...host.Commit) {
	t.Helper()
	errs, err := s.Commit(ctx, cs)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	for i, e := range errs {
		if e != nil {
			t.Fatalf("Commit[%d]: %v", i, e)
		}
	}
}

// setStatus commits a status change for id (taking the partition's lease).
func setStatus(t *testing.T, s *Store, st host.InstanceState, status abi.RuntimeStatus) host.InstanceState {
	t.Helper()
	p := host.PartitionFor(st.InstanceID, s.Partitions())
	ep := mustLease(t, s, p, "w-status")
	st.Status = status
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: fmt.Sprintf("c-%s-%d", status, time.Now().UnixNano()), State: st})
	return st
}

func zscoreExists(t *testing.T, s *Store, key, member string) bool {
	t.Helper()
	_, err := s.rdb.ZScore(ctx, key, member).Result()
	if errors.Is(err, redis.Nil) {
		return false
	}
	if err != nil {
		t.Fatalf("ZSCORE %s: %v", key, err)
	}
	return true
}

func ctlLen(t *testing.T, s *Store, p int) int64 {
	t.Helper()
	n, err := s.rdb.XLen(ctx, s.parts[p].ctl()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func pendingCount(t *testing.T, s *Store, stream string) int64 {
	t.Helper()
	x, err := s.rdb.XPending(ctx, stream, group).Result()
	if err != nil {
		t.Fatal(err)
	}
	return x.Count
}

// otherPartitionID returns an id whose partition differs from p.
func otherPartitionID(s *Store, prefix string, p int) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if host.PartitionFor(id, s.Partitions()) != p {
			return id
		}
	}
}

// --- tests ---

func testHubAndPartitions(t *testing.T, b *backend) {
	for _, tc := range []struct {
		hub, wantErr string
	}{
		{"ab", "has 2 characters"},
		{strings.Repeat("a", 46), "has 46 characters"},
		{"1abc", "starts with '1'"},
		{"my-hub", "'-' at position 3"},
		{"hub{x}", "'{' at position 4"},
		{"MyHub2", ""},
	} {
		err := ValidateHubName(tc.hub)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "3-45 characters")) {
			t.Errorf("ValidateHubName(%q) = %v, want error containing %q", tc.hub, err, tc.wantErr)
		}
	}
	if _, err := New(ctx, b.client, "x-y", Options{}); err == nil {
		t.Error("New accepted an invalid hub name")
	}
	if _, err := New(ctx, b.client, "Abc", Options{Partitions: 300}); err == nil || !strings.Contains(err.Error(), "1..256") {
		t.Errorf("New with 300 partitions: %v", err)
	}
	hub := newHub()
	s1, err := New(ctx, b.client, hub, Options{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := New(ctx, b.client, hub, Options{Partitions: 8})
	if err != nil {
		t.Fatal(err)
	}
	if s1.Partitions() != 4 || s2.Partitions() != 4 {
		t.Errorf("partitions = %d, %d; want the stored 4 for both", s1.Partitions(), s2.Partitions())
	}
	s3 := b.store(t, Options{})
	if s3.Partitions() != DefaultPartitions {
		t.Errorf("default partitions = %d", s3.Partitions())
	}
}

func testCreateGetReplace(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 4})
	id := "order-1"
	if _, err := s.GetInstance(ctx, id); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Fatalf("GetInstance before create: %v", err)
	}
	if _, err := s.GetHistory(ctx, id); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Fatalf("GetHistory before create: %v", err)
	}
	st := pendingState(id)
	st.ParentInstanceID, st.ParentTaskID, st.CustomStatus = "parent{1}", 7, `{"a":1}`
	st.CreatedAt = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 3600))
	if err := s.CreateInstance(ctx, st, startMsg(id)); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetInstance(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Hello" || got.Status != abi.StatusPending || got.Input != `"in"` || got.ParentInstanceID != "parent{1}" ||
		got.ParentTaskID != 7 || got.CustomStatus != `{"a":1}` || got.App != "app" || got.Digest != "sha256:x" || got.ExecutionID != "e-"+id {
		t.Errorf("GetInstance = %+v", got)
	}
	if !got.CreatedAt.Equal(st.CreatedAt) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v in UTC", got.CreatedAt, st.CreatedAt)
	}
	p := host.PartitionFor(id, 4)
	msgs, err := s.ReadControl(ctx, p, "w1", 10, 0)
	if err != nil || len(msgs) != 1 || msgs[0].Event.Type != abi.EventExecutionStarted || msgs[0].InstanceID != id {
		t.Fatalf("start message: %+v, %v", msgs, err)
	}
	if !zscoreExists(t, s, s.parts[p].idxStatus(abi.StatusPending), id) || !zscoreExists(t, s, s.parts[p].idxCreated(), id) {
		t.Error("new instance missing from created/Pending indexes")
	}

	// A non-terminal instance is not replaced.
	st2 := pendingState(id)
	st2.ExecutionID = "other"
	if err := s.CreateInstance(ctx, st2, startMsg(id)); !errors.Is(err, host.ErrInstanceExists) {
		t.Fatalf("create over Pending: %v, want ErrInstanceExists", err)
	}
	// Retrying the same creation (same execution id) succeeds.
	if err := s.CreateInstance(ctx, st, startMsg(id)); err != nil {
		t.Fatalf("retried create with same execution id: %v", err)
	}

	// Complete it with some history, then create again: replaced.
	ep := mustLease(t, s, p, "w1")
	st.Status = abi.StatusCompleted
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c1", State: st, Acks: []string{msgs[0].ID},
		NewEvents: []abi.HistoryEvent{msgs[0].Event, ev(abi.EventExecutionCompleted, -1)}})
	if h, _ := s.GetHistory(ctx, id); len(h) != 2 {
		t.Fatalf("history before replace has %d events", len(h))
	}
	if err := s.CreateInstance(ctx, st2, startMsg(id)); err != nil {
		t.Fatalf("create over Completed: %v", err)
	}
	got, _ = s.GetInstance(ctx, id)
	h, err := s.GetHistory(ctx, id)
	if err != nil || len(h) != 0 || got.ExecutionID != "other" || got.Status != abi.StatusPending || got.HistoryLength != 0 {
		t.Errorf("after replace: state %+v history %d %v", got, len(h), err)
	}
	if zscoreExists(t, s, s.parts[p].idxStatus(abi.StatusCompleted), id) || !zscoreExists(t, s, s.parts[p].idxStatus(abi.StatusPending), id) {
		t.Error("status index not moved from Completed to Pending on replace")
	}
	if err := s.CreateInstance(ctx, host.InstanceState{}, host.ControlMessage{}); err == nil {
		t.Error("create with empty id accepted")
	}
}

func testConcurrentCreate(t *testing.T, b *backend) {
	s := b.store(t, Options{})
	const n = 50
	var wg sync.WaitGroup
	var created, exists, other atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			st := pendingState("race")
			st.ExecutionID = fmt.Sprintf("exec-%d", i)
			err := s.CreateInstance(ctx, st, startMsg("race"))
			switch {
			case err == nil:
				created.Add(1)
			case errors.Is(err, host.ErrInstanceExists):
				exists.Add(1)
			default:
				other.Add(1)
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if created.Load() != 1 || exists.Load() != n-1 {
		t.Errorf("50 concurrent creates: %d created, %d exists, %d other errors; want 1 created", created.Load(), exists.Load(), other.Load())
	}
	p := host.PartitionFor("race", s.Partitions())
	if l := ctlLen(t, s, p); l != 1 {
		t.Errorf("control stream has %d start messages, want 1", l)
	}
}

// keySlot returns the Redis Cluster slot of key (CRC16/XMODEM of the hash tag).
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % 16384)
}

func testOddInstanceIDs(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 8})
	ids := []string{"a{b}c", "{x}", "}{", "x:y*z/…", "with space", "ünïcødé-日本", "*", "?[a]", `back\slash`, "dw:{hub:0}:i:evil", strings.Repeat("long", 100)}
	for _, id := range ids {
		t.Run("", func(t *testing.T) {
			st := mustCreate(t, s, id)
			got, err := s.GetInstance(ctx, id)
			if err != nil || got.InstanceID != id || got.ExecutionID != st.ExecutionID {
				t.Fatalf("GetInstance(%q) = %+v, %v", id, got, err)
			}
			p := host.PartitionFor(id, s.Partitions())
			k := s.parts[p]
			want := keySlot(k.ctl())
			for _, key := range []string{k.instance(id), k.history(id), k.dedup(id)} {
				if got := keySlot(key); got != want {
					t.Errorf("key %q is in slot %d, partition %d is in slot %d", key, got, p, want)
				}
				if b.cluster {
					if got, err := b.client.ClusterKeySlot(ctx, key).Result(); err != nil || int(got) != want {
						t.Errorf("CLUSTER KEYSLOT %q = %d, %v; want %d", key, got, err, want)
					}
				}
			}
			msgs, err := s.ClaimControl(ctx, p, "w")
			if err != nil {
				t.Fatal(err)
			}
			msgs2, err := s.ReadControl(ctx, p, "w", 100, 0)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, m := range append(msgs, msgs2...) {
				found = found || m.InstanceID == id
			}
			if !found {
				t.Errorf("start message for %q not on partition %d's control stream", id, p)
			}
		})
	}
	// Similar ids do not alias each other.
	if _, err := s.GetInstance(ctx, "a{b}"); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("GetInstance(a{b}) = %v, want not found", err)
	}
}

func testSendToInstance(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 2})
	raised := func(id, mid string) host.ControlMessage {
		e := ev(abi.EventEventRaised, -1)
		e.Name, e.Input = "Approval", `true`
		return host.ControlMessage{InstanceID: id, MessageID: mid, Event: e}
	}
	if err := s.SendToInstance(ctx, raised("missing", "")); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("send to missing: %v", err)
	}
	st := mustCreate(t, s, "live")
	p := host.PartitionFor("live", 2)
	before := ctlLen(t, s, p)
	if err := s.SendToInstance(ctx, raised("live", "m1")); err != nil {
		t.Fatal(err)
	}
	if err := s.SendToInstance(ctx, raised("live", "m1")); err != nil {
		t.Fatalf("resend of same message id: %v", err)
	}
	if err := s.SendToInstance(ctx, raised("live", "")); err != nil {
		t.Fatal(err)
	}
	if got := ctlLen(t, s, p) - before; got != 2 {
		t.Errorf("enqueued %d messages, want 2 (second m1 de-duplicated)", got)
	}
	setStatus(t, s, st, abi.StatusTerminated)
	if err := s.SendToInstance(ctx, raised("live", "m2")); !errors.Is(err, host.ErrInstanceFinished) {
		t.Errorf("send to terminated: %v, want ErrInstanceFinished", err)
	}
	for _, status := range []abi.RuntimeStatus{abi.StatusRunning, abi.StatusSuspended} {
		st2 := mustCreate(t, s, "s-"+string(status))
		setStatus(t, s, st2, status)
		if err := s.SendToInstance(ctx, raised(st2.InstanceID, "")); err != nil {
			t.Errorf("send to %s instance: %v", status, err)
		}
	}
}

func testLeases(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 2})
	ep1, ok, err := s.AcquireLease(ctx, 0, "A", 300*time.Millisecond)
	if err != nil || !ok || ep1 < 1 {
		t.Fatalf("A acquire = %d %v %v", ep1, ok, err)
	}
	if ep, ok, _ := s.AcquireLease(ctx, 0, "B", time.Second); ok || ep != ep1 {
		t.Errorf("B acquired a held lease: %d %v", ep, ok)
	}
	if ep, ok, _ := s.AcquireLease(ctx, 0, "A", 300*time.Millisecond); !ok || ep != ep1 {
		t.Errorf("A re-acquire (renew) = %d %v, want same epoch %d", ep, ok, ep1)
	}
	if ok, _ := s.RenewLease(ctx, 0, "A", ep1, 300*time.Millisecond); !ok {
		t.Error("A renew failed")
	}
	if ok, _ := s.RenewLease(ctx, 0, "B", ep1, time.Second); ok {
		t.Error("B renewed A's lease")
	}
	if ok, _ := s.RenewLease(ctx, 0, "A", ep1+1, time.Second); ok {
		t.Error("A renewed at a wrong epoch")
	}
	// Partition 1 is independent.
	if _, ok, _ := s.AcquireLease(ctx, 1, "B", time.Second); !ok {
		t.Error("B could not take the free partition 1")
	}
	time.Sleep(400 * time.Millisecond)
	ep2, ok, err := s.AcquireLease(ctx, 0, "B", time.Minute)
	if err != nil || !ok || ep2 <= ep1 {
		t.Fatalf("B takeover after expiry = %d %v %v, want epoch > %d", ep2, ok, err, ep1)
	}
	if ok, _ := s.RenewLease(ctx, 0, "A", ep1, time.Second); ok {
		t.Error("A renewed after losing the lease")
	}
	if _, ok, _ := s.AcquireLease(ctx, 0, "A", time.Second); ok {
		t.Error("A took B's live lease")
	}
	if err := s.ReleaseLease(ctx, 0, "A", ep1); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.AcquireLease(ctx, 0, "A", time.Second); ok {
		t.Error("release by a non-owner freed the lease")
	}
	if err := s.ReleaseLease(ctx, 0, "B", ep2); err != nil {
		t.Fatal(err)
	}
	if err := s.AckControl(ctx, 0, ep2, []string{"1-1"}); !errors.Is(err, host.ErrStaleEpoch) {
		t.Errorf("AckControl at a released epoch: %v, want ErrStaleEpoch", err)
	}
	ep3, ok, _ := s.AcquireLease(ctx, 0, "A", time.Second)
	if !ok || ep3 <= ep2 {
		t.Errorf("A acquire after release = %d %v, want epoch > %d", ep3, ok, ep2)
	}
	if _, _, err := s.AcquireLease(ctx, 5, "A", time.Second); err == nil {
		t.Error("lease of out-of-range partition accepted")
	}
}

func testHeartbeat(t *testing.T, b *backend) {
	s := b.store(t, Options{})
	if _, err := s.Heartbeat(ctx, "w-b", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeat(ctx, "w-short", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	live, err := s.Heartbeat(ctx, "w-a", time.Minute)
	if err != nil || strings.Join(live, ",") != "w-a,w-b,w-short" {
		t.Errorf("live = %v, %v", live, err)
	}
	time.Sleep(200 * time.Millisecond)
	live, _ = s.Heartbeat(ctx, "w-a", time.Minute)
	if strings.Join(live, ",") != "w-a,w-b" {
		t.Errorf("after expiry live = %v", live)
	}
	if err := s.LeaveWorkers(ctx, "w-b"); err != nil {
		t.Fatal(err)
	}
	live, _ = s.Heartbeat(ctx, "w-a", time.Minute)
	if strings.Join(live, ",") != "w-a" {
		t.Errorf("after leave live = %v", live)
	}
}

func testStaleCommit(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 2})
	st := mustCreate(t, s, "stale")
	p := host.PartitionFor("stale", 2)
	old, _, _ := s.AcquireLease(ctx, p, "A", time.Millisecond)
	time.Sleep(10 * time.Millisecond)
	cur := mustLease(t, s, p, "B")
	msgs, _ := s.ReadControl(ctx, p, "A", 10, 0)
	st.Status = abi.StatusRunning
	errs, err := s.Commit(ctx, []host.Commit{{
		Partition: p, Epoch: old, CommitID: "x", State: st, NewEvents: []abi.HistoryEvent{ev(abi.EventOrchestratorStarted, -1)},
		Acks:       []string{msgs[0].ID},
		Activities: []host.ActivityItem{{Name: "Act", TaskID: 1}},
		Timers:     []host.TimerItem{{FireAt: time.Now(), Message: host.ControlMessage{Event: ev(abi.EventTimerFired, -1)}}},
		Local:      []host.ControlMessage{{Event: ev(abi.EventGenericEvent, -1)}},
		Outbox:     []host.OutboxMessage{{Partition: 1 - p, Message: host.ControlMessage{InstanceID: "o", MessageID: "m", Event: ev(abi.EventEventRaised, -1)}}},
	}})
	if err != nil || len(errs) != 1 || !errors.Is(errs[0], host.ErrStaleEpoch) {
		t.Fatalf("stale commit = %v, %v; want ErrStaleEpoch", errs, err)
	}
	if !strings.Contains(errs[0].Error(), "stale") {
		t.Errorf("error does not name the instance: %v", errs[0])
	}
	got, h, _ := s.LoadInstance(ctx, "stale")
	k := s.parts[p]
	if got.Status != abi.StatusPending || len(h) != 0 {
		t.Errorf("stale commit wrote state %s / %d events", got.Status, len(h))
	}
	if n, _ := s.rdb.XLen(ctx, k.act()).Result(); n != 0 {
		t.Error("stale commit enqueued an activity")
	}
	if n, _ := s.rdb.ZCard(ctx, k.timers()).Result(); n != 0 {
		t.Error("stale commit added a timer")
	}
	if n, _ := s.rdb.XLen(ctx, k.outbox()).Result(); n != 0 {
		t.Error("stale commit wrote the outbox")
	}
	if pendingCount(t, s, k.ctl()) != 1 || ctlLen(t, s, p) != 1 {
		t.Error("stale commit acked or added control messages")
	}
	if zscoreExists(t, s, k.idxStatus(abi.StatusRunning), "stale") {
		t.Error("stale commit updated the status index")
	}
	// The current owner can commit.
	mustCommit(t, s, host.Commit{Partition: p, Epoch: cur, CommitID: "y", State: st})
}

func testDuplicateCommit(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 2})
	st := mustCreate(t, s, "dup")
	p := host.PartitionFor("dup", 2)
	ep := mustLease(t, s, p, "A")
	st.Status = abi.StatusRunning
	c := host.Commit{Partition: p, Epoch: ep, CommitID: "step-1", State: st,
		NewEvents:  []abi.HistoryEvent{ev(abi.EventOrchestratorStarted, -1), ev(abi.EventTaskScheduled, 0)},
		Activities: []host.ActivityItem{{Name: "Act", TaskID: 0}}}
	mustCommit(t, s, c)
	mustCommit(t, s, c) // a retry after a lost reply
	errs, err := s.Commit(ctx, []host.Commit{c, c})
	if err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("duplicate commits in one batch: %v %v", errs, err)
	}
	_, h, _ := s.LoadInstance(ctx, "dup")
	if len(h) != 2 {
		t.Errorf("history has %d events after 4 applications of one commit, want 2", len(h))
	}
	if n, _ := s.rdb.XLen(ctx, s.parts[p].act()).Result(); n != 1 {
		t.Errorf("%d activity items, want 1", n)
	}
	c2 := c
	c2.CommitID = "step-2"
	c2.NewEvents = c2.NewEvents[:1]
	c2.Activities = nil
	mustCommit(t, s, c2)
	if _, h, _ = s.LoadInstance(ctx, "dup"); len(h) != 3 {
		t.Errorf("next commit: %d events, want 3", len(h))
	}
}

func testLoadInstances(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 4})
	// Ids of several partitions, one with history, one missing, one invalid.
	ids := []string{"la", "lb", "lc", "ld", "missing", "bad/id"}
	for _, id := range ids[:4] {
		mustCreate(t, s, id)
	}
	st, _, _ := s.LoadInstance(ctx, "lb")
	p := host.PartitionFor("lb", 4)
	ep := mustLease(t, s, p, "A")
	st.Status = abi.StatusRunning
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c1", State: *st,
		NewEvents: []abi.HistoryEvent{ev(abi.EventOrchestratorStarted, -1), ev(abi.EventTaskScheduled, 0)}})
	got, err := s.LoadInstances(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ids) {
		t.Fatalf("%d results for %d ids", len(got), len(ids))
	}
	for i, id := range ids[:4] {
		want, wantHist, _ := s.LoadInstance(ctx, id)
		if got[i].Err != nil || got[i].State == nil || got[i].State.InstanceID != id || got[i].State.Status != want.Status || len(got[i].History) != len(wantHist) {
			t.Errorf("%s: got %+v, want state %+v with %d events", id, got[i], want, len(wantHist))
		}
	}
	if len(got[1].History) != 2 {
		t.Errorf("lb: %d history events, want 2", len(got[1].History))
	}
	if !errors.Is(got[4].Err, host.ErrInstanceNotFound) {
		t.Errorf("missing: err %v, want ErrInstanceNotFound", got[4].Err)
	}
	if got[5].Err == nil {
		t.Errorf("bad/id: no error")
	}
}

func testExpectFresh(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 2})
	commitFresh := func(id string, st host.InstanceState, cid string) error {
		p := host.PartitionFor(id, 2)
		ep := mustLease(t, s, p, "A")
		st.Status = abi.StatusRunning
		errs, err := s.Commit(ctx, []host.Commit{{Partition: p, Epoch: ep, CommitID: cid, State: st, ExpectFresh: st.ExecutionID,
			NewEvents: []abi.HistoryEvent{ev(abi.EventOrchestratorStarted, -1), ev(abi.EventExecutionStarted, -1)}}})
		if err != nil {
			t.Fatal(err)
		}
		return errs[0]
	}
	// A fresh instance: the commit applies.
	st := mustCreate(t, s, "fresh")
	if err := commitFresh("fresh", st, "c1"); err != nil {
		t.Fatalf("fresh instance: %v", err)
	}
	// The same commit again is a duplicate, not a change.
	if err := commitFresh("fresh", st, "c1"); err != nil {
		t.Fatalf("retried commit: %v", err)
	}
	// Another first step for it: it is Running with history now.
	if err := commitFresh("fresh", st, "c2"); !errors.Is(err, host.ErrStateChanged) {
		t.Fatalf("second first step: %v, want ErrStateChanged", err)
	}
	// Purged before its first step: refused, and nothing is resurrected.
	st = mustCreate(t, s, "gone")
	if err := s.PurgeInstance(ctx, "gone", true); err != nil {
		t.Fatal(err)
	}
	if err := commitFresh("gone", st, "c3"); !errors.Is(err, host.ErrStateChanged) {
		t.Fatalf("purged: %v, want ErrStateChanged", err)
	}
	if _, _, err := s.LoadInstance(ctx, "gone"); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Fatalf("purged instance after a refused commit: %v", err)
	}
	// Replaced by a new execution before its first step: refused.
	st = mustCreate(t, s, "replaced")
	old := st
	st2 := pendingState("replaced")
	st2.ExecutionID = "e-new"
	if err := s.PurgeInstance(ctx, "replaced", true); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateInstance(ctx, st2, startMsg("replaced")); err != nil {
		t.Fatal(err)
	}
	if err := commitFresh("replaced", old, "c4"); !errors.Is(err, host.ErrStateChanged) {
		t.Fatalf("replaced: %v, want ErrStateChanged", err)
	}
}

// testCommitLengths checks the stored history length after commits with and
// without events (fresh, reset, plain), with more events and acks than one
// command takes (the scripts split them), and that hl, lc and the digest
// index follow the last word when the field section sets them itself.
func testCommitLengths(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 2})
	id := "lengths"
	st := mustCreate(t, s, id)
	p := host.PartitionFor(id, 2)
	ep := mustLease(t, s, p, "A")
	events := func(n int) []abi.HistoryEvent {
		out := make([]abi.HistoryEvent, n)
		for i := range out {
			out[i] = ev(abi.EventTaskCompleted, -1)
			out[i].Result = strconv.Itoa(i)
		}
		return out
	}
	check := func(step string, want int) {
		t.Helper()
		got, h, err := s.LoadInstance(ctx, id)
		if err != nil || got.HistoryLength != int64(want) || len(h) != want {
			t.Fatalf("%s: length %d, %d events, %v; want %d", step, got.HistoryLength, len(h), err, want)
		}
	}
	st.Status = abi.StatusRunning
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c1", State: st, ExpectFresh: st.ExecutionID})
	check("fresh, no events", 0)
	if n, _ := s.rdb.Exists(ctx, s.parts[p].history(id)).Result(); n != 0 {
		t.Errorf("history key after a commit without events: exists")
	}
	local := make([]host.ControlMessage, 1100)
	for i := range local {
		local[i] = host.ControlMessage{Event: ev(abi.EventEventRaised, -1)}
	}
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c2", State: st, NewEvents: events(2500), Local: local})
	check("2500 events", 2500)
	if _, h, _ := s.LoadInstance(ctx, id); h[0].Result != "0" || h[1999].Result != "1999" || h[2499].Result != "2499" {
		t.Errorf("2500 events out of order: %q %q %q", h[0].Result, h[1999].Result, h[2499].Result)
	}
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c3", State: st})
	check("no events", 2500)
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c4", State: st, NewEvents: events(3)})
	check("3 more events", 2503)
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c5", State: st, ResetHistory: true})
	check("reset without events", 0)
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c6", State: st, ResetHistory: true, NewEvents: events(1200)})
	check("reset with 1200 events", 1200)
	// 1101 acks in one commit: all leave the stream and its pending list.
	msgs, err := s.ReadControl(ctx, p, "A", 2000, 0)
	if err != nil || len(msgs) != 1101 {
		t.Fatalf("read control: %d messages, %v", len(msgs), err)
	}
	acks := make([]string, len(msgs))
	for i, m := range msgs {
		acks[i] = m.ID
	}
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c7", State: st, Acks: acks})
	ctl := s.parts[p].ctl()
	if n, err := s.rdb.XLen(ctx, ctl).Result(); err != nil || n != 0 {
		t.Errorf("control stream after acking all: %d entries, %v", n, err)
	}
	if pe, err := s.rdb.XPending(ctx, ctl, group).Result(); err != nil || pe.Count != 0 {
		t.Errorf("pending after acking all: %+v, %v", pe, err)
	}
	// A field section that sets hl and lc itself (Commit never sends one):
	// the script's hl and lc still win; a repeated 'd' counts by its last
	// value.
	wantOn(t, s, "sha256:x", id)
	call, err := s.commitCall(&host.Commit{Partition: p, Epoch: ep, CommitID: "c8", State: st, NewEvents: events(1)})
	if err != nil {
		t.Fatal(err)
	}
	const fields = 8 // ARGV index (0-based) of the field section's count
	n := call.args[fields].(int)
	extra := []interface{}{"hl", "77", "lc", "other", "d", "sha256:last"}
	args := append(append(append([]interface{}{}, call.args[:fields+1+n]...), extra...), call.args[fields+1+n:]...)
	args[fields] = n + len(extra)
	call.args = args
	cmds, err := s.runPipelined(ctx, []scriptCall{call})
	if err != nil || cmds[0].Val() != "ok c8" {
		t.Fatalf("commit with hl/lc fields: %v, %v", cmds[0].Val(), err)
	}
	h, err := s.rdb.HMGet(ctx, s.parts[p].instance(id), "hl", "lc", "d").Result()
	if err != nil || h[0] != "1201" || h[1] != "c8" || h[2] != "sha256:last" {
		t.Errorf("hl, lc, d = %v, %v; want 1201, c8, sha256:last", h, err)
	}
	wantOn(t, s, "sha256:x")
	wantOn(t, s, "sha256:last", id)
}

func testCommitAppliesEverything(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 4})
	id := "main{1}"
	st := mustCreate(t, s, id)
	p := host.PartitionFor(id, 4)
	k := s.parts[p]
	ep := mustLease(t, s, p, "A")
	msgs, err := s.ReadControl(ctx, p, "A", 10, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatal(msgs, err)
	}
	target := otherPartitionID(s, "child", p)
	fire := time.Now().Add(time.Hour)
	started := msgs[0].Event
	events := []abi.HistoryEvent{ev(abi.EventOrchestratorStarted, -1), started, ev(abi.EventTaskScheduled, 0),
		ev(abi.EventTimerCreated, 1), ev(abi.EventSubOrchestrationInstanceCreated, 2), ev(abi.EventOrchestratorCompleted, -1)}
	events[3].FireAt = fire.UnixNano()
	events[2].Name, events[2].Input = "SayHello", `"Tokyo"`
	st.Status = abi.StatusRunning
	st.CustomStatus = `"working"`
	st.UpdatedAt = time.Now()
	child := pendingState(target)
	child.ParentInstanceID, child.ParentTaskID = id, 2
	childStart := startMsg(target)
	childStart.MessageID = "sub-" + target
	mustCommit(t, s, host.Commit{
		Partition: p, Epoch: ep, CommitID: "c1", State: st, NewEvents: events,
		Acks:       []string{msgs[0].ID},
		Activities: []host.ActivityItem{{Partition: p, InstanceID: id, ExecutionID: st.ExecutionID, TaskID: 0, Name: "SayHello", Input: `"Tokyo"`, Digest: "sha256:x"}},
		Timers:     []host.TimerItem{{FireAt: fire, Message: host.ControlMessage{InstanceID: id, Event: abi.HistoryEvent{EventID: -1, Type: abi.EventTimerFired, TaskScheduledID: 1, FireAt: fire.UnixNano()}}}},
		Local:      []host.ControlMessage{{InstanceID: id, Event: ev(abi.EventGenericEvent, -1)}},
		Outbox:     []host.OutboxMessage{{Partition: host.PartitionFor(target, 4), Message: childStart, Create: &child}},
	})
	got, h, err := s.LoadInstance(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != len(events) || got.HistoryLength != int64(len(events)) || h[2].Name != "SayHello" || h[2].Input != `"Tokyo"` || h[3].FireAt != fire.UnixNano() {
		t.Errorf("history = %+v (HistoryLength %d)", h, got.HistoryLength)
	}
	if got.Status != abi.StatusRunning || got.CustomStatus != `"working"` {
		t.Errorf("state = %+v", got)
	}
	if zscoreExists(t, s, k.idxStatus(abi.StatusPending), id) || !zscoreExists(t, s, k.idxStatus(abi.StatusRunning), id) {
		t.Error("status index not moved Pending -> Running")
	}
	if pendingCount(t, s, k.ctl()) != 0 {
		t.Error("consumed control message still pending")
	}
	if n, _ := s.rdb.XRange(ctx, k.ctl(), msgs[0].ID, msgs[0].ID).Result(); len(n) != 0 {
		t.Error("acked control message not deleted")
	}
	local, _ := s.ReadControl(ctx, p, "A", 10, 0)
	if len(local) != 1 || local[0].Event.Type != abi.EventGenericEvent {
		t.Errorf("local messages = %+v", local)
	}
	acts, _ := s.ReadActivities(ctx, p, "W", 10, 0)
	if len(acts) != 1 || acts[0].Name != "SayHello" || acts[0].Input != `"Tokyo"` || acts[0].InstanceID != id || acts[0].Partition != p || acts[0].Deliveries != 1 || acts[0].Digest != "sha256:x" {
		t.Errorf("activities = %+v", acts)
	}
	if n, next, err := s.FireDueTimers(ctx, p, ep, time.Now(), 10); n != 0 || err != nil || !next.Equal(fire.Truncate(time.Millisecond).Add(time.Millisecond)) && !next.Equal(fire.Truncate(time.Millisecond)) {
		t.Errorf("FireDueTimers = %d, %v, %v; want 0 and next %v", n, next, err, fire)
	}
	n, err := s.DeliverOutbox(ctx, p, ep)
	if err != nil || n != 1 {
		t.Fatalf("DeliverOutbox = %d, %v", n, err)
	}
	cs, err := s.GetInstance(ctx, target)
	if err != nil || cs.ParentInstanceID != id || cs.ParentTaskID != 2 || cs.Status != abi.StatusPending {
		t.Errorf("sub-orchestration = %+v, %v", cs, err)
	}
	tp := host.PartitionFor(target, 4)
	if !zscoreExists(t, s, s.parts[tp].idxStatus(abi.StatusPending), target) {
		t.Error("created sub-orchestration not indexed")
	}
	cm, _ := s.ReadControl(ctx, tp, "B", 10, 0)
	if len(cm) != 1 || cm[0].Event.Type != abi.EventExecutionStarted || cm[0].MessageID != childStart.MessageID {
		t.Errorf("target control = %+v", cm)
	}
	// ResetHistory replaces the history (ContinueAsNew).
	st.ExecutionID = "gen2"
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c2", State: st, ResetHistory: true,
		NewEvents: []abi.HistoryEvent{ev(abi.EventExecutionStarted, -1)}})
	if got, h, _ := s.LoadInstance(ctx, id); len(h) != 1 || got.HistoryLength != 1 || got.ExecutionID != "gen2" {
		t.Errorf("after reset: %d events, length %d", len(h), got.HistoryLength)
	}
	// Bad input is refused per commit, before anything is written.
	bad := []host.Commit{
		{Partition: p, Epoch: ep, CommitID: "b1", State: host.InstanceState{}},
		{Partition: (p + 1) % 4, Epoch: ep, CommitID: "b2", State: st},
		{Partition: p, Epoch: ep, CommitID: "b3", State: st, Acks: []string{"not-an-id"}},
		{Partition: p, Epoch: ep, CommitID: "b4", State: st, Outbox: []host.OutboxMessage{{Message: host.ControlMessage{InstanceID: "x"}}}},
	}
	errs, err := s.Commit(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if e == nil {
			t.Errorf("bad commit %d accepted", i)
		}
	}
}

func testCommitBatch(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 4})
	var commits []host.Commit
	eps := map[int]int64{}
	for i := 0; i < 40; i++ {
		id := fmt.Sprintf("batch-%d", i)
		st := mustCreate(t, s, id)
		p := host.PartitionFor(id, 4)
		if _, ok := eps[p]; !ok {
			eps[p] = mustLease(t, s, p, "A")
		}
		st.Status = abi.StatusCompleted
		st.Output = fmt.Sprintf("%d", i)
		ep := eps[p]
		if i == 7 {
			ep = 9999 // one stale commit in the batch
		}
		commits = append(commits, host.Commit{Partition: p, Epoch: ep, CommitID: "c", State: st,
			NewEvents: []abi.HistoryEvent{ev(abi.EventExecutionCompleted, -1)}})
	}
	errs, err := s.Commit(ctx, commits)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if (i == 7) != errors.Is(e, host.ErrStaleEpoch) || i != 7 && e != nil {
			t.Errorf("commit %d: %v", i, e)
		}
	}
	for i := range commits {
		got, _ := s.GetInstance(ctx, commits[i].State.InstanceID)
		want := abi.StatusCompleted
		if i == 7 {
			want = abi.StatusPending
		}
		if got.Status != want {
			t.Errorf("%s status %s, want %s", got.InstanceID, got.Status, want)
		}
	}
}

func testControlReadBlockAndClaim(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 1})
	t0 := time.Now()
	msgs, err := s.ReadControl(ctx, 0, "A", 10, 0)
	if err != nil || len(msgs) != 0 || time.Since(t0) > time.Second {
		t.Fatalf("non-blocking read on empty stream = %v, %v after %v", msgs, err, time.Since(t0))
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		mustCreate(t, s, "late")
	}()
	msgs, err = s.ReadControl(ctx, 0, "A", 10, 5*time.Second)
	if err != nil || len(msgs) != 1 || msgs[0].InstanceID != "late" {
		t.Fatalf("blocking read = %+v, %v", msgs, err)
	}
	t0 = time.Now()
	// A lower bound: a blocking read never returns before its block time,
	// and slowness cannot make it return earlier.
	if msgs, _ := s.ReadControl(ctx, 0, "A", 10, 100*time.Millisecond); len(msgs) != 0 || time.Since(t0) < 80*time.Millisecond {
		t.Errorf("blocking read on empty stream returned %v after %v", msgs, time.Since(t0))
	}
	for _, id := range []string{"c1", "c2", "c3"} {
		mustCreate(t, s, id)
	}
	// Worker A reads two and crashes; B takes over the partition.
	got, _ := s.ReadControl(ctx, 0, "A", 2, 0)
	if len(got) != 2 {
		t.Fatalf("A read %d", len(got))
	}
	claimed, err := s.ClaimControl(ctx, 0, "B")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range claimed {
		ids = append(ids, m.InstanceID)
	}
	if strings.Join(ids, ",") != "late,c1,c2" {
		t.Errorf("B claimed %v, want late,c1,c2 in stream order", ids)
	}
	rest, _ := s.ReadControl(ctx, 0, "B", 10, 0)
	if len(rest) != 1 || rest[0].InstanceID != "c3" {
		t.Errorf("B then read %+v, want c3", rest)
	}
	// Claiming again returns B's own pending messages (all four).
	again, _ := s.ClaimControl(ctx, 0, "B")
	if len(again) != 4 {
		t.Errorf("second claim returned %d, want 4", len(again))
	}
	ep := mustLease(t, s, 0, "B")
	var all []string
	for _, m := range again {
		all = append(all, m.ID)
	}
	if err := s.AckControl(ctx, 0, ep+1, all); !errors.Is(err, host.ErrStaleEpoch) {
		t.Errorf("stale AckControl = %v", err)
	}
	if err := s.AckControl(ctx, 0, ep, all); err != nil {
		t.Fatal(err)
	}
	if pendingCount(t, s, s.parts[0].ctl()) != 0 || ctlLen(t, s, 0) != 0 {
		t.Error("AckControl left messages")
	}
	if err := s.AckControl(ctx, 0, ep, []string{"bad id"}); err == nil {
		t.Error("AckControl accepted a malformed id")
	}
	// A pending entry whose content was deleted is dropped, not returned.
	mustCreate(t, s, "gone")
	gone, _ := s.ReadControl(ctx, 0, "B", 10, 0)
	s.rdb.XDel(ctx, s.parts[0].ctl(), gone[0].ID)
	if msgs, err := s.ClaimControl(ctx, 0, "C"); err != nil || len(msgs) != 0 {
		t.Errorf("claim with a deleted pending entry = %+v, %v", msgs, err)
	}
	// A poison entry is dead-lettered, not returned and not stuck.
	s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.parts[0].ctl(), Values: []string{fieldMsg, "{not json"}})
	if msgs, err := s.ReadControl(ctx, 0, "B", 10, 0); err != nil || len(msgs) != 0 {
		t.Errorf("poison read = %v, %v", msgs, err)
	}
	if n, _ := s.rdb.XLen(ctx, s.parts[0].dead()).Result(); n != 1 || b.name != "miniredis" && pendingCount(t, s, s.parts[0].ctl()) != 0 {
		t.Errorf("poison message: %d dead letters", n)
	}
}

func testActivities(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 2})
	st := mustCreate(t, s, "acts")
	p := host.PartitionFor("acts", 2)
	ep := mustLease(t, s, p, "O")
	st.Status = abi.StatusRunning
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c1", State: st, Activities: []host.ActivityItem{
		{Name: "A0", TaskID: 0}, {Name: "A1", TaskID: 1}, {Name: "A2", TaskID: 2}}})
	ctl0 := ctlLen(t, s, p)
	items, err := s.ReadActivities(ctx, p, "W1", 2, 0)
	if err != nil || len(items) != 2 || items[0].Name != "A0" || items[1].TaskID != 1 || items[0].Deliveries != 1 {
		t.Fatalf("W1 read = %+v, %v", items, err)
	}
	if c, _ := s.ClaimActivities(ctx, p, "W2", time.Hour, 10); len(c) != 0 {
		t.Errorf("claimed %d busy items", len(c))
	}
	time.Sleep(60 * time.Millisecond)
	claimed, err := s.ClaimActivities(ctx, p, "W2", 50*time.Millisecond, 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("W2 claim = %+v, %v", claimed, err)
	}
	for _, c := range claimed {
		if c.Deliveries != 2 || c.Partition != p || c.InstanceID != "acts" {
			t.Errorf("claimed item %+v, want Deliveries 2", c)
		}
	}
	res := func(it host.ActivityItem) host.ControlMessage {
		e := ev(abi.EventTaskCompleted, -1)
		e.TaskScheduledID, e.Result = it.TaskID, `"done"`
		return host.ControlMessage{InstanceID: it.InstanceID, ExecutionID: it.ExecutionID, Event: e}
	}
	if err := s.CompleteActivity(ctx, claimed[0], res(claimed[0])); err != nil {
		t.Fatal(err)
	}
	// The crashed-then-revived W1 completes the same item: no-op.
	if err := s.CompleteActivity(ctx, items[0], res(items[0])); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteActivity(ctx, claimed[0], res(claimed[0])); err != nil {
		t.Fatal(err)
	}
	if got := ctlLen(t, s, p) - ctl0; got != 1 {
		t.Errorf("completing one item three times posted %d results, want 1", got)
	}
	msgs, _ := s.ReadControl(ctx, p, "O", 10, 0)
	msgs = msgs[1:] // the start message
	if len(msgs) != 1 || msgs[0].Event.Type != abi.EventTaskCompleted || msgs[0].Event.TaskScheduledID != claimed[0].TaskID || msgs[0].Event.Result != `"done"` {
		t.Errorf("result message = %+v", msgs)
	}
	rest, _ := s.ReadActivities(ctx, p, "W1", 10, 0)
	if len(rest) != 1 || rest[0].Name != "A2" {
		t.Errorf("remaining read = %+v", rest)
	}
	for _, it := range []host.ActivityItem{claimed[1], rest[0]} {
		if err := s.CompleteActivity(ctx, it, res(it)); err != nil {
			t.Fatal(err)
		}
	}
	k := s.parts[p]
	if n, _ := s.rdb.XLen(ctx, k.act()).Result(); n != 0 || pendingCount(t, s, k.act()) != 0 {
		t.Errorf("activity stream keeps %d entries / %d pending after completion", n, pendingCount(t, s, k.act()))
	}
	if err := s.CompleteActivity(ctx, host.ActivityItem{ID: "zz", Partition: p}, host.ControlMessage{}); err == nil {
		t.Error("malformed item id accepted")
	}
	// Blocking read wakes on a new item.
	go func() {
		time.Sleep(50 * time.Millisecond)
		st.Status = abi.StatusRunning
		mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c2", State: st, Activities: []host.ActivityItem{{Name: "A3", TaskID: 3}}})
	}()
	if got, err := s.ReadActivities(ctx, p, "W3", 1, 5*time.Second); err != nil || len(got) != 1 || got[0].Name != "A3" {
		t.Errorf("blocking activity read = %+v, %v", got, err)
	}
}

func testTimers(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 1})
	st := mustCreate(t, s, "timers")
	ep := mustLease(t, s, 0, "O")
	// In the past: FireDueTimers caps its now at the server's TIME.
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	timer := func(at time.Time, task int32) host.TimerItem {
		return host.TimerItem{FireAt: at, Message: host.ControlMessage{InstanceID: "timers", Event: abi.HistoryEvent{
			EventID: -1, Type: abi.EventTimerFired, TaskScheduledID: task, FireAt: at.UnixNano()}}}
	}
	st.Status = abi.StatusRunning
	fine := base.Add(10*time.Millisecond + 500*time.Microsecond) // sub-millisecond fire time
	mustCommit(t, s, host.Commit{Partition: 0, Epoch: ep, CommitID: "c1", State: st,
		Timers: []host.TimerItem{timer(base, 1), timer(base.Add(time.Second), 2), timer(fine, 3), timer(base, 4)}})
	ctl0 := ctlLen(t, s, 0)
	for _, tc := range []struct {
		now      time.Time
		max      int
		want     int
		wantNext time.Time
	}{
		{base.Add(-time.Millisecond), 10, 0, base},
		{base.Add(-time.Nanosecond), 10, 0, base},
		{base, 1, 1, base},
		{base, 10, 1, base.Add(11 * time.Millisecond)},
		{base, 10, 0, base.Add(11 * time.Millisecond)},
		{fine.Add(-400 * time.Microsecond), 10, 0, base.Add(11 * time.Millisecond)},
		{fine, 10, 0, base.Add(11 * time.Millisecond)}, // rounded up: fires at the next millisecond
		{base.Add(11 * time.Millisecond), 10, 1, base.Add(time.Second)},
		{base.Add(2 * time.Second), 10, 1, time.Time{}},
		{base.Add(3 * time.Second), 10, 0, time.Time{}},
	} {
		n, next, err := s.FireDueTimers(ctx, 0, ep, tc.now, tc.max)
		if err != nil || n != tc.want || !next.Equal(tc.wantNext) {
			t.Errorf("FireDueTimers(now=base%+v, max %d) = %d, %v, %v; want %d, %v", tc.now.Sub(base), tc.max, n, next, err, tc.want, tc.wantNext)
		}
	}
	msgs, _ := s.ReadControl(ctx, 0, "O", 10, 0)
	var tasks []int
	for _, m := range msgs {
		if m.Event.Type == abi.EventTimerFired {
			tasks = append(tasks, int(m.Event.TaskScheduledID))
		}
	}
	sort.Ints(tasks[:2])
	if fmt.Sprint(tasks) != "[1 4 3 2]" || ctlLen(t, s, 0)-ctl0 != 4 {
		t.Errorf("fired tasks %v, want [1 4 3 2] once each", tasks)
	}
	// A worker whose clock runs ahead cannot fire a timer before the server's
	// time says it is due.
	future := time.Now().Add(time.Hour)
	mustCommit(t, s, host.Commit{Partition: 0, Epoch: ep, CommitID: "c2", State: st, Timers: []host.TimerItem{timer(future, 5)}})
	if n, next, err := s.FireDueTimers(ctx, 0, ep, future.Add(time.Hour), 10); err != nil || n != 0 || !next.Equal(future.Truncate(time.Millisecond).Add(time.Millisecond)) && !next.Equal(future.Truncate(time.Millisecond)) {
		t.Errorf("FireDueTimers with a clock an hour ahead of its timer's fire time = %d, %v, %v; want 0 fired", n, next, err)
	}
	if _, _, err := s.FireDueTimers(ctx, 0, ep+1, base.Add(time.Hour), 10); !errors.Is(err, host.ErrStaleEpoch) {
		t.Errorf("stale FireDueTimers = %v", err)
	}
}

func testOutbox(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 4})
	src := mustCreate(t, s, "parent")
	p := host.PartitionFor("parent", 4)
	ep := mustLease(t, s, p, "O")
	target := otherPartitionID(s, "peer", p)
	tp := host.PartitionFor(target, 4)
	mustCreate(t, s, target)
	busy := otherPartitionID(s, "busy", p)
	mustCreate(t, s, busy)
	raised := ev(abi.EventEventRaised, -1)
	raised.Name = "Ping"
	busyState := pendingState(busy)
	busyState.ExecutionID = "new"
	src.Status = abi.StatusRunning
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c1", State: src, Outbox: []host.OutboxMessage{
		{Partition: tp, Message: host.ControlMessage{InstanceID: target, MessageID: "evt-1", Event: raised}},
		{Partition: host.PartitionFor(busy, 4), Message: host.ControlMessage{InstanceID: busy, MessageID: "sub-busy", Event: startMsg(busy).Event}, Create: &busyState},
	}})
	// Simulate a crash after delivery but before the outbox deletion: deliver
	// the entries without deleting them, then run DeliverOutbox.
	entries, err := s.rdb.XRange(ctx, s.parts[p].outbox(), "-", "+").Result()
	if err != nil || len(entries) != 2 {
		t.Fatal(entries, err)
	}
	var calls []scriptCall
	for _, e := range entries {
		c, err := s.deliverCall(e)
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, c)
	}
	if _, err := s.runPipelined(ctx, calls); err != nil {
		t.Fatal(err)
	}
	tl := ctlLen(t, s, tp)
	if _, err := s.DeliverOutbox(ctx, p, ep+1); !errors.Is(err, host.ErrStaleEpoch) {
		t.Errorf("stale DeliverOutbox = %v", err)
	}
	n, err := s.DeliverOutbox(ctx, p, ep)
	if err != nil || n != 0 {
		t.Errorf("redelivery = %d, %v; want 0 new deliveries", n, err)
	}
	if got := ctlLen(t, s, tp); got != tl {
		t.Errorf("redelivery added %d messages", got-tl)
	}
	if l, _ := s.rdb.XLen(ctx, s.parts[p].outbox()).Result(); l != 0 {
		t.Errorf("outbox keeps %d entries", l)
	}
	var events int
	msgs, _ := s.ReadControl(ctx, tp, "T", 100, 0)
	for _, m := range msgs {
		if m.InstanceID == target && m.Event.Type == abi.EventEventRaised {
			events++
		}
	}
	if events != 1 {
		t.Errorf("target got %d EventRaised, want 1", events)
	}
	if got, _ := s.GetInstance(ctx, busy); got.ExecutionID != "e-"+busy {
		t.Errorf("sub-orchestration create replaced a non-terminal instance: %+v", got)
	}
	if n, err := s.DeliverOutbox(ctx, p, ep); n != 0 || err != nil {
		t.Errorf("empty outbox delivered %d, %v", n, err)
	}
}

func testModules(t *testing.T, b *backend) {
	s := b.store(t, Options{})
	fns := []host.FunctionInfo{{Name: "Hello", Kind: abi.KindOrchestrator}, {Name: "SayHello", Kind: abi.KindActivity}}
	wasm := []byte("\x00asm\x01\x00\x00\x00 binary \xff")
	if err := s.PutModule(ctx, "greeter", "sha256:aa", wasm, fns); err != nil {
		t.Fatal(err)
	}
	if err := s.PutModule(ctx, "greeter", "sha256:aa", wasm, fns); err != nil {
		t.Fatalf("idempotent put: %v", err)
	}
	got, err := s.GetModule(ctx, "sha256:aa")
	if err != nil || string(got) != string(wasm) {
		t.Errorf("GetModule = %q, %v", got, err)
	}
	if _, err := s.GetModule(ctx, "sha256:none"); !errors.Is(err, host.ErrModuleNotFound) {
		t.Errorf("GetModule(missing) = %v", err)
	}
	rec, fi, err := s.FindFunction(ctx, "SayHello")
	if err != nil || rec.Name != "greeter" || rec.Digest != "sha256:aa" || fi.Kind != abi.KindActivity || rec.DeployedAt.IsZero() {
		t.Errorf("FindFunction = %+v %+v %v", rec, fi, err)
	}
	if _, _, err := s.FindFunction(ctx, "Nope"); !errors.Is(err, host.ErrFunctionNotFound) {
		t.Errorf("FindFunction(missing) = %v", err)
	}
	err = s.PutModule(ctx, "other", "sha256:bb", []byte("x"), []host.FunctionInfo{{Name: "Other"}, {Name: "Hello", Kind: 1}})
	if err == nil || !strings.Contains(err.Error(), "greeter") || !strings.Contains(err.Error(), "other") || !strings.Contains(err.Error(), "Hello") {
		t.Errorf("conflicting put = %v; want an error naming Hello, greeter and other", err)
	}
	if _, err := s.GetModule(ctx, "sha256:bb"); !errors.Is(err, host.ErrModuleNotFound) {
		t.Error("refused put stored the module")
	}
	if _, err := s.GetApp(ctx, "other"); !errors.Is(err, host.ErrModuleNotFound) {
		t.Error("refused put created the app")
	}
	// Redeploy greeter without SayHello: the name is free again.
	if err := s.PutModule(ctx, "greeter", "sha256:cc", []byte("v2"), fns[:1]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.FindFunction(ctx, "SayHello"); !errors.Is(err, host.ErrFunctionNotFound) {
		t.Errorf("dropped function still found: %v", err)
	}
	if err := s.PutModule(ctx, "other", "sha256:bb", []byte("x"), []host.FunctionInfo{{Name: "SayHello", Kind: 2}}); err != nil {
		t.Fatal(err)
	}
	apps, err := s.ListApps(ctx)
	if err != nil || len(apps) != 2 || apps[0].Name != "greeter" || apps[0].Digest != "sha256:cc" || apps[1].Name != "other" || len(apps[1].Functions) != 1 {
		t.Errorf("ListApps = %+v, %v", apps, err)
	}
	if old, err := s.GetModule(ctx, "sha256:aa"); err != nil || string(old) != string(wasm) {
		t.Error("old module digest no longer readable (pinned instances need it)")
	}
	if _, err := s.GetApp(ctx, "nope"); !errors.Is(err, host.ErrModuleNotFound) {
		t.Errorf("GetApp(missing) = %v", err)
	}
}

func testDeleteHub(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 4})
	other := b.store(t, Options{Partitions: 4})
	for i := 0; i < 20; i++ {
		mustCreate(t, s, fmt.Sprintf("d{%d}*", i))
	}
	mustCreate(t, other, "keep")
	otherKeys := len(hubKeysLeft(t, b.client, other.Hub()))
	if err := s.PutModule(ctx, "app", "sha256:d", []byte("x"), []host.FunctionInfo{{Name: "F"}}); err != nil {
		t.Fatal(err)
	}
	// Every kind of key: history, timers and their index, activities,
	// outbox, dedup markers, leases, workers, dead letters, consumer groups.
	for i := 0; i < 4; i++ {
		st := withTimers(t, s, mustCreate(t, s, fmt.Sprintf("t%d", i)), abi.StatusRunning)
		p := host.PartitionFor(st.InstanceID, 4)
		ep := mustLease(t, s, p, "w-status")
		mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "x", State: st,
			Activities: []host.ActivityItem{{Name: "A", TaskID: 1}},
			Outbox:     []host.OutboxMessage{{Partition: (p + 1) % 4, Message: host.ControlMessage{InstanceID: "d{1}*", MessageID: fmt.Sprint("m", i), Event: ev(abi.EventEventRaised, -1)}}}})
		if _, err := s.ReadActivities(ctx, p, "W", 10, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReadControl(ctx, p, "W", 10, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DeliverOutbox(ctx, host.PartitionFor("t0", 4), mustLease(t, s, host.PartitionFor("t0", 4), "w-status")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeat(ctx, "W", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.parts[0].dead(), Values: []string{"raw", "x"}}).Err(); err != nil {
		t.Fatal(err)
	}
	before := hubKeysLeft(t, b.client, s.Hub())
	n, err := s.DeleteHub(ctx)
	if err != nil || n != int64(len(before)) {
		t.Fatalf("DeleteHub = %d, %v; the hub had %d keys", n, err, len(before))
	}
	if left := hubKeysLeft(t, b.client, s.Hub()); len(left) != 0 {
		t.Errorf("DeleteHub left %v", left)
	}
	if got := len(hubKeysLeft(t, b.client, other.Hub())); got != otherKeys {
		t.Errorf("other hub has %d keys after DeleteHub, had %d", got, otherKeys)
	}
	// The streams are gone, and their consumer groups with them.
	if _, err := s.rdb.XInfoGroups(ctx, s.parts[0].ctl()).Result(); err == nil {
		t.Error("consumer group of the control stream survived DeleteHub")
	}
	s2, err := New(ctx, b.client, s.Hub(), Options{Partitions: 2})
	if err != nil || s2.Partitions() != 2 {
		t.Fatalf("recreated hub: %v, partitions %d", err, s2.Partitions())
	}
	if _, err := s2.GetInstance(ctx, "d{1}*"); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("instance survived DeleteHub: %v", err)
	}
	if _, err := s2.GetModule(ctx, "sha256:d"); !errors.Is(err, host.ErrModuleNotFound) {
		t.Errorf("module survived DeleteHub: %v", err)
	}
	if _, err := other.GetInstance(ctx, "keep"); err != nil {
		t.Errorf("DeleteHub deleted another hub's instance: %v", err)
	}
}

// idem returns an Idempotency for tests.
func idem(key, op, fp string) host.Idempotency {
	return host.Idempotency{Key: key, Operation: op, Fingerprint: fp}
}

// testIdempotencyKeys: every client operation with an idempotency key is
// applied once however often it is retried (the record is written by the
// script that applies it, in the instance's slot); a retry reports the first
// outcome; the key with other arguments is refused; a refusal records
// nothing. "Retry after a lost reply" is a second call with the same key.
func testIdempotencyKeys(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 4})
	raised := func(id, data string) host.ControlMessage {
		e := ev(abi.EventEventRaised, -1)
		e.Name, e.Input = "Approval", data
		return host.ControlMessage{InstanceID: id, Event: e}
	}
	// Create: a retry with another execution id (a retry by a new process)
	// replays the first one's.
	st := pendingState("idem-c")
	r, err := s.CreateInstanceOnce(ctx, st, startMsg(st.InstanceID), idem("k-create", "start-new", "fp-create"))
	if err != nil || r.Replayed || r.ExecutionID != st.ExecutionID {
		t.Fatalf("first CreateInstanceOnce = %+v, %v", r, err)
	}
	p := host.PartitionFor(st.InstanceID, 4)
	k := s.parts[p]
	ctl0 := ctlLen(t, s, p)
	retry := st
	retry.ExecutionID = "e-other"
	r, err = s.CreateInstanceOnce(ctx, retry, startMsg(st.InstanceID), idem("k-create", "start-new", "fp-create"))
	if err != nil || !r.Replayed || r.ExecutionID != st.ExecutionID {
		t.Errorf("retried CreateInstanceOnce = %+v, %v; want a replay of execution %s", r, err, st.ExecutionID)
	}
	if got, _ := s.GetInstance(ctx, st.InstanceID); got.ExecutionID != st.ExecutionID {
		t.Errorf("retried create replaced the instance: execution %s", got.ExecutionID)
	}
	if _, err := s.CreateInstanceOnce(ctx, retry, startMsg(st.InstanceID), idem("k-create", "start-new", "fp-other")); !errors.Is(err, host.ErrIdempotencyKeyReused) ||
		!strings.Contains(err.Error(), "k-create") || !strings.Contains(err.Error(), "start-new") {
		t.Errorf("create with the key and other arguments = %v, want ErrIdempotencyKeyReused naming the key and the first operation", err)
	}
	// Without a key the existing instance refuses a second create.
	if err := s.CreateInstance(ctx, retry, startMsg(st.InstanceID)); !errors.Is(err, host.ErrInstanceExists) {
		t.Errorf("create without a key = %v, want ErrInstanceExists", err)
	}
	// The record is in the instance's slot, with the 24 h TTL.
	rec := k.idem(st.InstanceID, "k-create")
	if keySlot(rec) != keySlot(k.instance(st.InstanceID)) {
		t.Errorf("record %s is not in the instance's slot", rec)
	}
	if ttl, err := s.rdb.PTTL(ctx, rec).Result(); err != nil || ttl <= 23*time.Hour || ttl > host.IdempotencyTTL {
		t.Errorf("record TTL = %v, %v; want about %v", ttl, err, host.IdempotencyTTL)
	}

	// Send: applied once; the same key on another instance is independent.
	for i := 0; i < 3; i++ {
		r, err := s.SendToInstanceOnce(ctx, raised(st.InstanceID, `1`), idem("k-send", "raise-event", "fp-send"))
		if err != nil || r.Replayed != (i > 0) {
			t.Fatalf("SendToInstanceOnce #%d = %+v, %v", i, r, err)
		}
	}
	if got := ctlLen(t, s, p) - ctl0; got != 1 {
		t.Errorf("three sends with one key enqueued %d messages, want 1", got)
	}
	if _, err := s.SendToInstanceOnce(ctx, raised(st.InstanceID, `2`), idem("k-send", "raise-event", "fp-send2")); !errors.Is(err, host.ErrIdempotencyKeyReused) {
		t.Errorf("send with the key and other data = %v, want ErrIdempotencyKeyReused", err)
	}
	if _, err := s.SendToInstanceOnce(ctx, raised(st.InstanceID, `1`), idem("k-create", "raise-event", "fp-send")); !errors.Is(err, host.ErrIdempotencyKeyReused) {
		t.Errorf("send with the create's key = %v, want ErrIdempotencyKeyReused", err)
	}
	// A refusal records nothing: after the instance exists, the same key
	// applies.
	if _, err := s.SendToInstanceOnce(ctx, raised("idem-late", `1`), idem("k-late", "raise-event", "fp")); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Fatalf("send to a missing instance = %v", err)
	}
	mustCreate(t, s, "idem-late")
	if r, err := s.SendToInstanceOnce(ctx, raised("idem-late", `1`), idem("k-late", "raise-event", "fp")); err != nil || r.Replayed {
		t.Errorf("send after the refusal = %+v, %v; want applied", r, err)
	}
	// A replay succeeds even after the instance finished.
	setStatus(t, s, st, abi.StatusFailed)
	if r, err := s.SendToInstanceOnce(ctx, raised(st.InstanceID, `1`), idem("k-send", "raise-event", "fp-send")); err != nil || !r.Replayed {
		t.Errorf("send replay on a finished instance = %+v, %v", r, err)
	}

	// Rewind: applied once.
	rw := host.ControlMessage{InstanceID: st.InstanceID, Event: ev(abi.EventExecutionRewound, -1)}
	ctl1 := ctlLen(t, s, p)
	for i := 0; i < 2; i++ {
		if r, err := s.RewindInstanceOnce(ctx, rw, idem("k-rewind", "rewind", "fp-rw")); err != nil || r.Replayed != (i > 0) {
			t.Fatalf("RewindInstanceOnce #%d = %+v, %v", i, r, err)
		}
	}
	if got := ctlLen(t, s, p) - ctl1; got != 1 {
		t.Errorf("two rewinds with one key enqueued %d messages, want 1", got)
	}

	// Purge: the retry reports success, not "not found", and the record
	// survives the purge.
	for i := 0; i < 2; i++ {
		if r, err := s.PurgeInstanceOnce(ctx, st.InstanceID, false, idem("k-purge", "purge", "fp-purge")); err != nil || r.Replayed != (i > 0) {
			t.Fatalf("PurgeInstanceOnce #%d = %+v, %v", i, r, err)
		}
	}
	if err := s.PurgeInstance(ctx, st.InstanceID, false); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("purge without the key = %v, want ErrInstanceNotFound", err)
	}
	// Recreated under the same id: a new key applies, the purge key replays.
	mustCreate(t, s, st.InstanceID)
	if r, err := s.PurgeInstanceOnce(ctx, st.InstanceID, true, idem("k-purge", "purge", "fp-purge")); err != nil || !r.Replayed {
		t.Errorf("purge replay = %+v, %v", r, err)
	}
	if _, err := s.GetInstance(ctx, st.InstanceID); err != nil {
		t.Errorf("a purge replay deleted the new instance: %v", err)
	}
	if _, err := s.SendToInstanceOnce(ctx, raised(st.InstanceID, `1`), host.Idempotency{Key: "k"}); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Errorf("an idempotency without fingerprint = %v, want a refusal", err)
	}
}

// deliverTo has a parent in another partition send msgs (with Create for a
// sub-orchestration start) to their targets through its outbox, and delivers
// them.
func deliverTo(t *testing.T, s *Store, parent string, msgs []host.OutboxMessage) {
	t.Helper()
	p := host.PartitionFor(parent, s.Partitions())
	ep := mustLease(t, s, p, "w-status")
	st, err := s.GetInstance(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	st.Status = abi.StatusRunning
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: fmt.Sprint("out-", time.Now().UnixNano()), State: *st, Outbox: msgs})
	if _, err := s.DeliverOutbox(ctx, p, ep); err != nil {
		t.Fatal(err)
	}
}

// dedupKeys returns the hub's dedup markers and dedup sets.
func dedupKeys(t *testing.T, b *backend, s *Store) []string {
	t.Helper()
	var out []string
	for _, key := range hubKeysLeft(t, b.client, s.Hub()) {
		if strings.Contains(key, "}:dedup:") || strings.Contains(key, "}:dm:") {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out
}

// ageDedup makes every marker of instance id look delivered more than the
// grace ago (its dedup set's scores; the markers keep their TTL).
func ageDedup(t *testing.T, s *Store, id string) {
	t.Helper()
	_, k := s.partition(id)
	ms, err := s.rdb.ZRange(ctx, k.dedupSet(id), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	old := float64(time.Now().Add(-dedupGrace - time.Minute).UnixMilli())
	for _, m := range ms {
		if err := s.rdb.ZAdd(ctx, k.dedupSet(id), redis.Z{Score: old, Member: m}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// testPurgeRemovesDedupMarkers: the dedup markers of the messages delivered
// to an instance (a sub-orchestration start, events, a client send with a
// message id) belong to it: purge removes them — at once when they are older
// than the grace, and young ones expire within it, keeping redeliveries of
// recent messages de-duplicated — as does a create that replaces it. The
// markers of other instances are left.
func testPurgeRemovesDedupMarkers(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 4})
	parent := "dd-parent"
	mustCreate(t, s, parent)
	pp := host.PartitionFor(parent, 4)
	feed := func(child string, n int) {
		cs := pendingState(child)
		start := startMsg(child)
		start.MessageID = child + "/start"
		msgs := []host.OutboxMessage{{Partition: host.PartitionFor(child, 4), Message: start, Create: &cs}}
		for i := 0; i < n; i++ {
			e := ev(abi.EventEventRaised, -1)
			e.Name = "E"
			msgs = append(msgs, host.OutboxMessage{Partition: host.PartitionFor(child, 4), Message: host.ControlMessage{InstanceID: child, MessageID: fmt.Sprintf("%s/e%d", child, i), Event: e}})
		}
		deliverTo(t, s, parent, msgs)
		if err := s.SendToInstance(ctx, host.ControlMessage{InstanceID: child, MessageID: child + "/client", Event: ev(abi.EventEventRaised, -1)}); err != nil {
			t.Fatal(err)
		}
	}
	var children []string
	for i := 0; i < 12; i++ {
		children = append(children, otherPartitionID(s, fmt.Sprintf("dd-child%d", i), pp))
	}
	for _, c := range children {
		feed(c, 3)
	}
	if got := len(dedupKeys(t, b, s)); got != len(children)*(5+1) {
		t.Fatalf("%d dedup keys after the deliveries, want %d (5 markers and a set per child)", got, len(children)*6)
	}
	keep := children[len(children)-1]
	keepKeys := func() []string {
		var out []string
		for _, key := range dedupKeys(t, b, s) {
			if strings.HasSuffix(key, ":dm:"+keep) || strings.Contains(key, ":dedup:"+keep+"/") {
				out = append(out, key)
			}
		}
		return out
	}
	if got := len(keepKeys()); got != 6 {
		t.Fatalf("the kept child has %d dedup keys, want 6", got)
	}
	complete := func(id string) {
		st, err := s.GetInstance(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		setStatus(t, s, *st, abi.StatusCompleted)
	}
	for _, c := range children[:len(children)-1] {
		complete(c)
		ageDedup(t, s, c)
	}
	// PurgeInstance, PurgeInstances, and a create that replaces a terminal
	// instance each retire their instance's markers.
	if err := s.PurgeInstance(ctx, children[0], false); err != nil {
		t.Fatal(err)
	}
	replacement := pendingState(children[1])
	replacement.ExecutionID = "e-second"
	if err := s.CreateInstance(ctx, replacement, startMsg(children[1])); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetInstance(ctx, children[1]); err != nil || got.Status != abi.StatusPending {
		t.Fatalf("replaced child: %+v, %v", got, err)
	}
	res, err := s.PurgeInstances(ctx, host.InstanceQuery{InstanceIDPrefix: "dd-child", Statuses: []abi.RuntimeStatus{abi.StatusCompleted}}, false, 0, nil)
	if err != nil || res.Deleted != len(children)-3 {
		t.Fatalf("PurgeInstances = %+v, %v; want %d deleted", res, err, len(children)-3)
	}
	left := dedupKeys(t, b, s)
	if len(left) != 6 {
		t.Errorf("dedup keys left after the purges: %v; want only the 6 of %s", left, keep)
	}
	if got := keepKeys(); len(got) != 6 {
		t.Errorf("the unpurged child kept %v, want its 6 dedup keys", got)
	}

	// Young markers are kept for the grace, no longer, and still make a
	// redelivered start a no-op: the purged child is not re-created.
	young := otherPartitionID(s, "dd-young", pp)
	feed(young, 1)
	complete(young)
	if err := s.PurgeInstance(ctx, young, false); err != nil {
		t.Fatal(err)
	}
	_, yk := s.partition(young)
	for _, key := range dedupKeys(t, b, s) {
		if !strings.Contains(key, ":dedup:"+young+"/") {
			continue
		}
		if ttl, err := s.rdb.PTTL(ctx, key).Result(); err != nil || ttl <= 0 || ttl > dedupGrace {
			t.Errorf("young marker %s has TTL %v, %v; want at most the grace %v", key, ttl, err, dedupGrace)
		}
	}
	if n, _ := s.rdb.Exists(ctx, yk.dedupSet(young)).Result(); n != 0 {
		t.Errorf("the purged instance's dedup set survived")
	}
	cs := pendingState(young)
	start := startMsg(young)
	start.MessageID = young + "/start"
	deliverTo(t, s, parent, []host.OutboxMessage{{Partition: host.PartitionFor(young, 4), Message: start, Create: &cs}})
	if _, err := s.GetInstance(ctx, young); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("a redelivered start re-created the purged instance within the grace: %v", err)
	}
}

// testReclaimActivities: the items of a consumer whose worker is not alive
// move to a live worker (delivery count incremented), the empty dead
// consumer is removed, a live or recently active consumer keeps its items,
// and a touched item is not claimed after the visibility timeout.
func testReclaimActivities(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 2})
	st := mustCreate(t, s, "reclaim")
	p := host.PartitionFor("reclaim", 2)
	ep := mustLease(t, s, p, "O")
	st.Status = abi.StatusRunning
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c1", State: st, Activities: []host.ActivityItem{
		{Name: "A0", TaskID: 0}, {Name: "A1", TaskID: 1}, {Name: "A2", TaskID: 2}}})
	if items, err := s.ReadActivities(ctx, p, "dead", 2, 0); err != nil || len(items) != 2 {
		t.Fatalf("dead read = %+v, %v", items, err)
	}
	live, err := s.ReadActivities(ctx, p, "W3", 1, 0)
	if err != nil || len(live) != 1 {
		t.Fatalf("W3 read = %+v, %v", live, err)
	}
	if b.name != "miniredis" { // miniredis does not report consumers' idle time
		if got, err := s.ReclaimActivities(ctx, p, "W2", []string{"W2", "W3"}, time.Hour, 10); err != nil || len(got) != 0 {
			t.Errorf("reclaim of consumers active within the min idle = %+v, %v", got, err)
		}
	}
	got, err := s.ReclaimActivities(ctx, p, "W2", []string{"W2", "W3"}, 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("reclaim = %+v, %v; want the dead consumer's 2 items", got, err)
	}
	for _, it := range got {
		if it.Deliveries != 2 || it.TaskID == live[0].TaskID {
			t.Errorf("reclaimed %+v; want a dead consumer's item with Deliveries 2", it)
		}
	}
	if again, err := s.ReclaimActivities(ctx, p, "W2", []string{"W2", "W3"}, 0, 10); err != nil || len(again) != 0 {
		t.Errorf("second reclaim = %+v, %v", again, err)
	}
	consumers, err := s.rdb.XInfoConsumers(ctx, s.parts[p].act(), group).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range consumers {
		if c.Name == "dead" {
			t.Errorf("the dead consumer is still in the group (%d pending)", c.Pending)
		}
	}
	// W3 is alive and touches its item: after the visibility timeout has
	// passed, the item is still not claimed.
	time.Sleep(80 * time.Millisecond)
	if err := s.TouchActivity(ctx, live[0], "W3"); err != nil {
		t.Fatal(err)
	}
	c, err := s.ClaimActivities(ctx, p, "W4", 60*time.Millisecond, 10)
	if err != nil || len(c) != 2 {
		t.Errorf("claim after the timeout = %+v, %v; want W2's 2 items, idle since the reclaim", c, err)
	}
	for _, it := range c {
		if it.ID == live[0].ID {
			t.Errorf("a touched item was claimed: %+v", it)
		}
	}
	// A touch by a worker that no longer holds an item does not take it.
	if err := s.TouchActivity(ctx, got[0], "W3"); err != nil {
		t.Fatal(err)
	}
	pend, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s.parts[p].act(), Group: group, Start: got[0].ID, End: got[0].ID, Count: 1}).Result()
	if err != nil || len(pend) != 1 || pend[0].Consumer != "W4" {
		t.Errorf("after W3's touch of W4's item: %+v, %v", pend, err)
	}
}
