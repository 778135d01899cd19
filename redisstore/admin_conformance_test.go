package redisstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/internal/redistest"
)

// Conformance tests of the module-administration and dead-letter methods
// (ListModules, CountDigestInstances, DigestInstances, RemoveApp,
// RemoveModule, DeadLetterActivity, ListDeadLetters, DeleteDeadLetter), on
// the same three backends as the main suite.

func runAdminConformance(t *testing.T, b *backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b *backend)
	}{
		{"DigestIndex", testDigestIndex},
		{"ListAndRemoveModules", testListAndRemoveModules},
		{"DeadLetters", testDeadLetters},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, b)
		})
	}
}

func TestAdminConformanceMiniredis(t *testing.T) {
	m := redistest.Miniredis(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr(), PoolSize: 16})
	t.Cleanup(func() { c.Close() })
	runAdminConformance(t, &backend{name: "miniredis", client: c})
}

func TestAdminConformanceRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("real Redis skipped in -short mode")
	}
	c := redis.NewClient(&redis.Options{Addr: redistest.StartServer(t), PoolSize: 16})
	t.Cleanup(func() { c.Close() })
	runAdminConformance(t, &backend{name: "redis", client: c})
}

func TestAdminConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("real Redis Cluster skipped in -short mode")
	}
	cl := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), PoolSize: 16})
	t.Cleanup(func() { c.Close() })
	runAdminConformance(t, &backend{name: "cluster", client: c, cluster: true})
}

// wantOn checks the digest index: the ids on digest, and the count.
func wantOn(t *testing.T, s *Store, digest string, ids ...string) {
	t.Helper()
	got, err := s.DigestInstances(ctx, digest, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.CountDigestInstances(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") || n != int64(len(ids)) {
		t.Errorf("on %s: %v (count %d), want %v", digest, got, n, ids)
	}
}

func testDigestIndex(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 3})
	a := mustCreate(t, s, "a") // on sha256:x (pendingState)
	mustCreate(t, s, "b")
	wantOn(t, s, "sha256:x", "a", "b")
	if ids, _ := s.DigestInstances(ctx, "sha256:x", 1); len(ids) != 1 {
		t.Errorf("max 1: %v", ids)
	}
	pa := host.PartitionFor("a", 3)
	ep := mustLease(t, s, pa, "O")
	a.Status = abi.StatusRunning
	mustCommit(t, s, host.Commit{Partition: pa, Epoch: ep, CommitID: "c1", State: a})
	wantOn(t, s, "sha256:x", "a", "b")
	// Migrated: moves to the new digest.
	a.Digest = "sha256:y"
	mustCommit(t, s, host.Commit{Partition: pa, Epoch: ep, CommitID: "c2", State: a})
	wantOn(t, s, "sha256:x", "b")
	wantOn(t, s, "sha256:y", "a")
	// Suspended and ContinuedAsNew are not finished.
	a.Status = abi.StatusContinuedAsNew
	mustCommit(t, s, host.Commit{Partition: pa, Epoch: ep, CommitID: "c3", State: a})
	wantOn(t, s, "sha256:y", "a")
	// Finished: leaves the index; rewound (Failed -> Running): back in.
	a.Status = abi.StatusFailed
	mustCommit(t, s, host.Commit{Partition: pa, Epoch: ep, CommitID: "c4", State: a})
	wantOn(t, s, "sha256:y")
	a.Status = abi.StatusRunning
	mustCommit(t, s, host.Commit{Partition: pa, Epoch: ep, CommitID: "c5", State: a})
	wantOn(t, s, "sha256:y", "a")
	// A forced purge of a running instance leaves the index.
	if err := s.PurgeInstance(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	wantOn(t, s, "sha256:y")
	// Terminal then replaced by CreateInstance.
	pb := host.PartitionFor("b", 3)
	epb := mustLease(t, s, pb, "O")
	bs := pendingState("b")
	bs.Status = abi.StatusCompleted
	mustCommit(t, s, host.Commit{Partition: pb, Epoch: epb, CommitID: "b1", State: bs})
	wantOn(t, s, "sha256:x")
	nb := pendingState("b")
	nb.ExecutionID, nb.Digest = "e-b2", "sha256:z"
	if err := s.CreateInstance(ctx, nb, startMsg("b")); err != nil {
		t.Fatal(err)
	}
	wantOn(t, s, "sha256:z", "b")
	// A sub-orchestration created by outbox delivery is indexed.
	child := pendingState("child")
	child.Digest = "sha256:z"
	start := startMsg("child")
	start.MessageID = "b/e-b2/0"
	mustCommit(t, s, host.Commit{Partition: pb, Epoch: epb, CommitID: "b2", State: nb,
		Outbox: []host.OutboxMessage{{Partition: host.PartitionFor("child", 3), Message: start, Create: &child}}})
	if _, err := s.DeliverOutbox(ctx, pb, epb); err != nil {
		t.Fatal(err)
	}
	wantOn(t, s, "sha256:z", "b", "child")
	// A bulk purge of finished instances does not touch running ones.
	res, err := s.PurgeInstances(ctx, host.InstanceQuery{}, false, 0, nil)
	if err != nil || res.Skipped != 2 {
		t.Errorf("purge = %+v, %v", res, err)
	}
	wantOn(t, s, "sha256:z", "b", "child")
	if _, err := s.PurgeInstances(ctx, host.InstanceQuery{}, true, 0, nil); err != nil {
		t.Fatal(err)
	}
	wantOn(t, s, "sha256:z")
}

func testListAndRemoveModules(t *testing.T, b *backend) {
	s := b.store(t, Options{})
	f1 := []host.FunctionInfo{{Name: "Orch", Kind: abi.KindOrchestrator}, {Name: "Act", Kind: abi.KindActivity}}
	if err := s.PutModule(ctx, "one", "sha256:v1", []byte("v1 bytes"), f1); err != nil {
		t.Fatal(err)
	}
	if err := s.PutModule(ctx, "one", "sha256:v2", []byte("v2 bytes!"), f1[:1]); err != nil {
		t.Fatal(err)
	}
	if err := s.PutModule(ctx, "two", "sha256:v2", []byte("v2 bytes!"), []host.FunctionInfo{{Name: "Other", Kind: abi.KindOrchestrator}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutModuleSettings(ctx, "sha256:v2", host.AppSettings{MaxPayloadBytes: 5}); err != nil {
		t.Fatal(err)
	}
	mods, err := s.ListModules(ctx)
	if err != nil || len(mods) != 2 || mods[0].Digest != "sha256:v1" || mods[0].Size != 8 || mods[1].Size != 9 || mods[0].StoredAt.IsZero() {
		t.Fatalf("ListModules = %+v, %v", mods, err)
	}
	if d := time.Since(mods[0].StoredAt); d < 0 || d > time.Minute {
		t.Errorf("stored at %s", mods[0].StoredAt)
	}
	// A module stored before the modules set existed is listed via its app.
	if err := s.rdb.ZRem(ctx, s.hk.modules(), "sha256:v2").Err(); err != nil {
		t.Fatal(err)
	}
	if mods, _ := s.ListModules(ctx); len(mods) != 2 || mods[1].Digest != "sha256:v2" || !mods[1].StoredAt.IsZero() {
		t.Errorf("legacy module: %+v", mods)
	}

	if err := s.RemoveModule(ctx, "sha256:v2"); !errors.Is(err, host.ErrModuleInUse) || !strings.Contains(err.Error(), "app one") && !strings.Contains(err.Error(), "app two") {
		t.Errorf("remove used module = %v", err)
	}
	if err := s.RemoveModule(ctx, "sha256:none"); !errors.Is(err, host.ErrModuleNotFound) {
		t.Errorf("remove missing module = %v", err)
	}
	if err := s.RemoveModule(ctx, "sha256:v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetModule(ctx, "sha256:v1"); !errors.Is(err, host.ErrModuleNotFound) {
		t.Errorf("removed module still there: %v", err)
	}

	if _, err := s.RemoveApp(ctx, "one", "sha256:v1", true); !errors.Is(err, host.ErrModuleInUse) {
		t.Errorf("remove app at a stale digest = %v", err)
	}
	if _, err := s.RemoveApp(ctx, "nope", "sha256:v1", true); !errors.Is(err, host.ErrModuleNotFound) {
		t.Errorf("remove missing app = %v", err)
	}
	// "two" still points at v2: the module stays.
	removed, err := s.RemoveApp(ctx, "one", "sha256:v2", true)
	if err != nil || removed {
		t.Fatalf("remove app one = %v, %v", removed, err)
	}
	if _, _, err := s.FindFunction(ctx, "Orch"); !errors.Is(err, host.ErrFunctionNotFound) {
		t.Errorf("function of removed app: %v", err)
	}
	if _, err := s.GetApp(ctx, "one"); !errors.Is(err, host.ErrModuleNotFound) {
		t.Errorf("removed app: %v", err)
	}
	removed, err = s.RemoveApp(ctx, "two", "sha256:v2", true)
	if err != nil || !removed {
		t.Fatalf("remove app two = %v, %v", removed, err)
	}
	if _, err := s.GetModule(ctx, "sha256:v2"); !errors.Is(err, host.ErrModuleNotFound) {
		t.Error("module of the last app not removed")
	}
	if st, err := s.GetModuleSettings(ctx, "sha256:v2"); err != nil || st.MaxPayloadBytes != 0 {
		t.Errorf("settings of removed module: %+v, %v", st, err)
	}
	if mods, _ := s.ListModules(ctx); len(mods) != 0 {
		t.Errorf("modules left: %+v", mods)
	}
	if fn, _ := s.rdb.HLen(ctx, s.hk.funcs()).Result(); fn != 0 {
		t.Errorf("%d function mappings left", fn)
	}
	// keepModule.
	if err := s.PutModule(ctx, "three", "sha256:v3", []byte("v3"), nil); err != nil {
		t.Fatal(err)
	}
	if removed, err := s.RemoveApp(ctx, "three", "sha256:v3", false); err != nil || removed {
		t.Errorf("remove keeping the module = %v, %v", removed, err)
	}
	if _, err := s.GetModule(ctx, "sha256:v3"); err != nil {
		t.Errorf("kept module: %v", err)
	}
}

func testDeadLetters(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 2})
	st := mustCreate(t, s, "dl")
	p := host.PartitionFor("dl", 2)
	ep := mustLease(t, s, p, "O")
	st.Status = abi.StatusRunning
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "c1", State: st, Activities: []host.ActivityItem{
		{Name: "Crash", TaskID: 3, Input: `"x"`, ExecutionID: st.ExecutionID, Digest: "sha256:x"}}})
	items, err := s.ReadActivities(ctx, p, "W", 1, 0)
	if err != nil || len(items) != 1 {
		t.Fatalf("read: %+v %v", items, err)
	}
	it := items[0]
	it.Deliveries = 11
	ctl0 := ctlLen(t, s, p)
	fail := ev(abi.EventTaskFailed, -1)
	fail.TaskScheduledID, fail.Failure = 3, &abi.FailureDetails{Type: "PoisonMessage", Message: "gave up"}
	res := host.ControlMessage{InstanceID: "dl", ExecutionID: st.ExecutionID, Event: fail}
	if err := s.DeadLetterActivity(ctx, it, "gave up after 10", res); err != nil {
		t.Fatal(err)
	}
	// Again (another worker): a no-op.
	if err := s.DeadLetterActivity(ctx, it, "gave up after 10", res); err != nil {
		t.Fatal(err)
	}
	if got := ctlLen(t, s, p) - ctl0; got != 1 {
		t.Errorf("posted %d results, want 1", got)
	}
	k := s.parts[p]
	if n, _ := s.rdb.XLen(ctx, k.act()).Result(); n != 0 || pendingCount(t, s, k.act()) != 0 {
		t.Errorf("activity stream keeps %d entries", n)
	}
	// An undecodable entry in the other partition is listed too.
	q := 1 - p
	if err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.parts[q].dead(), Values: []string{"src", "x", "id", "1-1", "field", "m", "raw", "{", "reason", "bad json"}}).Err(); err != nil {
		t.Fatal(err)
	}
	dls, err := s.ListDeadLetters(ctx, 0)
	if err != nil || len(dls) != 2 {
		t.Fatalf("list = %+v, %v", dls, err)
	}
	var d, u host.DeadLetter
	for _, x := range dls {
		if x.Kind == host.DeadLetterActivity {
			d = x
		} else {
			u = x
		}
	}
	if d.Partition != p || d.InstanceID != "dl" || d.ExecutionID != st.ExecutionID || d.Activity != "Crash" || d.TaskID != 3 || d.Input != `"x"` ||
		d.Deliveries != 11 || d.Reason != "gave up after 10" || d.EntryID != it.ID || time.Since(d.Time) > time.Minute {
		t.Errorf("activity dead letter = %+v", d)
	}
	if u.Kind != host.DeadLetterUndecodable || u.Partition != q || u.Raw != "{" || u.Reason != "bad json" {
		t.Errorf("undecodable dead letter = %+v", u)
	}
	if one, _ := s.ListDeadLetters(ctx, 1); len(one) != 1 {
		t.Errorf("max 1: %d", len(one))
	}
	if err := s.DeleteDeadLetter(ctx, d.Partition, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDeadLetter(ctx, d.Partition, d.ID); !errors.Is(err, host.ErrDeadLetterNotFound) {
		t.Errorf("delete twice = %v", err)
	}
	if err := s.DeleteDeadLetter(ctx, 0, "nonsense"); !errors.Is(err, host.ErrDeadLetterNotFound) {
		t.Errorf("delete bad id = %v", err)
	}
	if dls, _ := s.ListDeadLetters(ctx, 0); len(dls) != 1 {
		t.Errorf("after delete: %+v", dls)
	}
}
