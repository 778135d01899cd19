package redisstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand"
	"slices"
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

// Conformance tests of QueryInstances, PurgeInstance(s), RewindInstance and
// DeleteHub (registered in runConformance).

// queryBase is the created time of the test instances.
var queryBase = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// createAt creates id with the given created time and then, if status is not
// Pending, commits that status (as a worker would).
func createAt(t *testing.T, s *Store, id string, status abi.RuntimeStatus, created time.Time) host.InstanceState {
	t.Helper()
	st := pendingState(id)
	st.CreatedAt = created
	if err := s.CreateInstance(ctx, st, startMsg(id)); err != nil {
		t.Fatalf("CreateInstance(%q): %v", id, err)
	}
	if status != abi.StatusPending {
		st = setStatus(t, s, st, status)
	}
	return st
}

// bulkCreate creates instances with their statuses directly (CreateInstance's
// script, pipelined 1000 at a time): a fast loader for large tests and
// benchmarks.
func bulkCreate(tb testing.TB, s *Store, states []host.InstanceState) {
	tb.Helper()
	for i := 0; i < len(states); i += 1000 {
		var calls []scriptCall
		for _, st := range states[i:min(i+1000, len(states))] {
			_, k := s.partition(st.InstanceID)
			start := startMsg(st.InstanceID)
			args := []interface{}{st.InstanceID, st.ExecutionID, string(st.Status), createdScore(st.CreatedAt), encodeMsg(&start)}
			args = append(args, toStrings(stateFields(&st, true))...)
			calls = append(calls, scriptCall{script: scriptCreate, args: args,
				keys: []string{k.instance(st.InstanceID), k.history(st.InstanceID), k.ctl(), k.idxCreated(), k.idxStatusPrefix(), k.idxDigestPrefix()}})
		}
		cmds, err := s.runPipelined(ctx, calls)
		if err != nil {
			tb.Fatal(err)
		}
		for _, c := range cmds {
			if res, err := c.Text(); err != nil || res != "ok" {
				tb.Fatalf("bulk create: %q, %v", res, err)
			}
		}
	}
}

// queryAll pages through q and returns the ids in order. It fails on an
// empty page that carries a token, or a page larger than asked.
func queryAll(t *testing.T, s *Store, q host.InstanceQuery) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		page, err := s.QueryInstances(ctx, q)
		if err != nil {
			t.Fatalf("QueryInstances(%+v): %v", q, err)
		}
		want := q.PageSize
		if want <= 0 {
			want = DefaultPageSize
		}
		if len(page.Instances) > want {
			t.Fatalf("page of %d instances for page size %d", len(page.Instances), q.PageSize)
		}
		for _, st := range page.Instances {
			ids = append(ids, st.InstanceID)
		}
		if page.ContinuationToken == "" {
			return ids
		}
		if len(page.Instances) == 0 {
			t.Fatalf("empty page with a continuation token after %d pages", pages)
		}
		q.ContinuationToken = page.ContinuationToken
		if pages > 100000 {
			t.Fatal("paging does not end")
		}
	}
}

// expectIDs returns the ids of states matching keep in query order.
func expectIDs(states []host.InstanceState, keep func(st host.InstanceState) bool) []string {
	var sel []host.InstanceState
	for _, st := range states {
		if keep(st) {
			sel = append(sel, st)
		}
	}
	slices.SortFunc(sel, func(a, b host.InstanceState) int {
		if c := a.CreatedAt.UnixMilli() - b.CreatedAt.UnixMilli(); c != 0 {
			return int(c)
		}
		return strings.Compare(a.InstanceID, b.InstanceID)
	})
	ids := make([]string, len(sel))
	for i, st := range sel {
		ids[i] = st.InstanceID
	}
	return ids
}

// queryFixture creates 60 instances over 4 partitions: created times spread
// over a minute with several ids per millisecond, statuses cycling through
// Pending, Running, Completed, Failed, Terminated; ids "a-…" and "b-…".
func queryFixture(t *testing.T, s *Store) []host.InstanceState {
	t.Helper()
	statuses := []abi.RuntimeStatus{abi.StatusPending, abi.StatusRunning, abi.StatusCompleted, abi.StatusFailed, abi.StatusTerminated}
	var states []host.InstanceState
	for i := 0; i < 60; i++ {
		prefix := "a"
		if i%3 == 0 {
			prefix = "b"
		}
		id := fmt.Sprintf("%s-%02d", prefix, 59-i) // ids not in created order
		created := queryBase.Add(time.Duration(i/3) * time.Second).Add(time.Duration(i%3) * 100 * time.Microsecond)
		states = append(states, createAt(t, s, id, statuses[i%len(statuses)], created))
	}
	return states
}

func testQueryPaging(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 4})
	states := queryFixture(t, s)
	parts := map[int]bool{}
	for _, st := range states {
		parts[host.PartitionFor(st.InstanceID, 4)] = true
	}
	if len(parts) != 4 {
		t.Fatalf("fixture covers %d partitions", len(parts))
	}
	all := expectIDs(states, func(host.InstanceState) bool { return true })
	for _, size := range []int{1, 7, 100, 0} {
		got := queryAll(t, s, host.InstanceQuery{PageSize: size})
		if !slices.Equal(got, all) {
			t.Errorf("page size %d: got %v\nwant %v", size, got, all)
		}
	}
	// A full last page has no token (no empty page follows).
	page, err := s.QueryInstances(ctx, host.InstanceQuery{PageSize: 60})
	if err != nil || len(page.Instances) != 60 || page.ContinuationToken != "" {
		t.Errorf("page of exactly all 60: %d instances, token %q, %v", len(page.Instances), page.ContinuationToken, err)
	}
	got := page.Instances[0]
	i0 := slices.IndexFunc(states, func(st host.InstanceState) bool { return st.InstanceID == all[0] })
	if got.InstanceID != all[0] || got.Name != "Hello" || got.Input != `"in"` || !got.CreatedAt.Equal(states[i0].CreatedAt) || got.Status != states[i0].Status {
		t.Errorf("first instance = %+v", got)
	}
	// Oversized pages are clamped, not refused.
	if page, err := s.QueryInstances(ctx, host.InstanceQuery{PageSize: 5000}); err != nil || len(page.Instances) != 60 {
		t.Errorf("page size 5000: %d, %v", len(page.Instances), err)
	}
	// Many instances in one millisecond of one partition: paging past a
	// cursor inside the millisecond reads further than the page.
	same := b.store(t, Options{Partitions: 1})
	var sameStates []host.InstanceState
	for i := 0; i < 40; i++ {
		st := pendingState(fmt.Sprintf("same-%02d", 39-i))
		st.CreatedAt = queryBase.Add(time.Duration(i) * time.Microsecond)
		sameStates = append(sameStates, st)
	}
	bulkCreate(t, same, sameStates)
	sameIDs := expectIDs(sameStates, func(host.InstanceState) bool { return true })
	for _, size := range []int{1, 2, 7} {
		if got := queryAll(t, same, host.InstanceQuery{PageSize: size}); !slices.Equal(got, sameIDs) {
			t.Errorf("one millisecond, page size %d: got %v", size, got)
		}
	}
	// Two status sets of one partition are merged only up to where both
	// were read: a matching Running instance after the first Running reads
	// comes before the Suspended ones.
	fr := b.store(t, Options{Partitions: 1})
	var frStates []host.InstanceState
	add := func(id string, status abi.RuntimeStatus, ms int) {
		st := pendingState(id)
		st.Status, st.CreatedAt = status, queryBase.Add(time.Duration(ms)*time.Millisecond)
		frStates = append(frStates, st)
	}
	for i := 1; i <= 8; i++ {
		add(fmt.Sprint("x-", i), abi.StatusRunning, i)
	}
	add("s-r", abi.StatusRunning, 9)
	for i := 10; i <= 14; i++ {
		add(fmt.Sprint("s-", i), abi.StatusSuspended, i)
	}
	bulkCreate(t, fr, frStates)
	for _, size := range []int{1, 3, 7} {
		got := queryAll(t, fr, host.InstanceQuery{PageSize: size, InstanceIDPrefix: "s-", Statuses: []abi.RuntimeStatus{abi.StatusRunning, abi.StatusSuspended}})
		if want := []string{"s-r", "s-10", "s-11", "s-12", "s-13", "s-14"}; !slices.Equal(got, want) {
			t.Errorf("two status sets, page size %d: got %v, want %v", size, got, want)
		}
	}
	// An empty hub: an empty page, no token.
	empty := b.store(t, Options{Partitions: 3})
	if page, err := empty.QueryInstances(ctx, host.InstanceQuery{}); err != nil || len(page.Instances) != 0 || page.ContinuationToken != "" {
		t.Errorf("empty hub: %+v, %v", page, err)
	}
}

func testQueryFilters(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 4})
	states := queryFixture(t, s)
	has := func(sts ...abi.RuntimeStatus) func(host.InstanceState) bool {
		return func(st host.InstanceState) bool { return slices.Contains(sts, st.Status) }
	}
	from := states[10].CreatedAt // exact, sub-millisecond bounds
	to := states[40].CreatedAt
	for _, tc := range []struct {
		name string
		q    host.InstanceQuery
		keep func(host.InstanceState) bool
	}{
		{"from", host.InstanceQuery{CreatedFrom: from}, func(st host.InstanceState) bool { return !st.CreatedAt.Before(from) }},
		{"to", host.InstanceQuery{CreatedTo: to}, func(st host.InstanceState) bool { return !st.CreatedAt.After(to) }},
		{"range", host.InstanceQuery{CreatedFrom: from, CreatedTo: to}, func(st host.InstanceState) bool {
			return !st.CreatedAt.Before(from) && !st.CreatedAt.After(to)
		}},
		{"just after", host.InstanceQuery{CreatedFrom: from.Add(time.Nanosecond), CreatedTo: to.Add(-time.Nanosecond)}, func(st host.InstanceState) bool {
			return st.CreatedAt.After(from) && st.CreatedAt.Before(to)
		}},
		{"one status", host.InstanceQuery{Statuses: []abi.RuntimeStatus{abi.StatusFailed}}, has(abi.StatusFailed)},
		{"several statuses", host.InstanceQuery{Statuses: []abi.RuntimeStatus{abi.StatusRunning, abi.StatusCompleted, abi.StatusRunning}},
			has(abi.StatusRunning, abi.StatusCompleted)},
		{"status with no instance", host.InstanceQuery{Statuses: []abi.RuntimeStatus{abi.StatusSuspended}}, has(abi.StatusSuspended)},
		{"prefix", host.InstanceQuery{InstanceIDPrefix: "b-"}, func(st host.InstanceState) bool { return strings.HasPrefix(st.InstanceID, "b-") }},
		{"prefix matching none", host.InstanceQuery{InstanceIDPrefix: "zz"}, func(host.InstanceState) bool { return false }},
		{"all filters", host.InstanceQuery{CreatedFrom: from, CreatedTo: to, InstanceIDPrefix: "a-",
			Statuses: []abi.RuntimeStatus{abi.StatusPending, abi.StatusTerminated}}, func(st host.InstanceState) bool {
			return !st.CreatedAt.Before(from) && !st.CreatedAt.After(to) && strings.HasPrefix(st.InstanceID, "a-") &&
				(st.Status == abi.StatusPending || st.Status == abi.StatusTerminated)
		}},
	} {
		want := expectIDs(states, tc.keep)
		for _, size := range []int{1, 7, 100} {
			q := tc.q
			q.PageSize = size
			if got := queryAll(t, s, q); !slices.Equal(got, want) {
				t.Errorf("%s, page size %d: got %v\nwant %v", tc.name, size, got, want)
			}
		}
	}
	if _, err := s.QueryInstances(ctx, host.InstanceQuery{Statuses: []abi.RuntimeStatus{"Sleeping"}}); !errors.Is(err, host.ErrInvalidInput) || !strings.Contains(err.Error(), "Sleeping") {
		t.Errorf("unknown status: %v", err)
	}
	if _, err := s.QueryInstances(ctx, host.InstanceQuery{CreatedFrom: to, CreatedTo: from}); !errors.Is(err, host.ErrInvalidInput) ||
		!strings.Contains(err.Error(), "CreatedTo") || !strings.Contains(err.Error(), "CreatedFrom") {
		t.Errorf("CreatedTo before CreatedFrom: %v, want ErrInvalidInput naming both", err)
	}
	if _, err := s.PurgeInstances(ctx, host.InstanceQuery{CreatedFrom: to, CreatedTo: from}, false, 0, nil); !errors.Is(err, host.ErrInvalidInput) {
		t.Errorf("purge with CreatedTo before CreatedFrom: %v, want ErrInvalidInput", err)
	}
	// A status change between pages is seen by the re-check.
	page, err := s.QueryInstances(ctx, host.InstanceQuery{Statuses: []abi.RuntimeStatus{abi.StatusFailed}, PageSize: 2})
	if err != nil || page.ContinuationToken == "" {
		t.Fatal(page, err)
	}
	failed := expectIDs(states, has(abi.StatusFailed))
	for _, st := range states {
		if st.InstanceID == failed[2] {
			setStatus(t, s, st, abi.StatusCompleted)
		}
	}
	rest := queryAll(t, s, host.InstanceQuery{Statuses: []abi.RuntimeStatus{abi.StatusFailed}, PageSize: 2, ContinuationToken: page.ContinuationToken})
	if !slices.Equal(rest, failed[3:]) {
		t.Errorf("after a status change: %v, want %v", rest, failed[3:])
	}
}

func testQueryToken(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 4})
	states := queryFixture(t, s)
	all := expectIDs(states, func(host.InstanceState) bool { return true })
	p1, err := s.QueryInstances(ctx, host.InstanceQuery{PageSize: 10})
	if err != nil || p1.ContinuationToken == "" {
		t.Fatal(p1, err)
	}
	for i := 0; i < 2; i++ { // a token can be used again
		p2, err := s.QueryInstances(ctx, host.InstanceQuery{PageSize: 10, ContinuationToken: p1.ContinuationToken})
		if err != nil || len(p2.Instances) != 10 || p2.Instances[0].InstanceID != all[10] {
			t.Fatalf("second page: %+v, %v", p2, err)
		}
	}
	// A token works with a larger page and from another Store of the hub.
	s2, err := New(ctx, b.client, s.Hub(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s2.QueryInstances(ctx, host.InstanceQuery{PageSize: 1000, ContinuationToken: p1.ContinuationToken}); err != nil || len(p.Instances) != 50 || p.ContinuationToken != "" {
		t.Errorf("rest in one page: %d, %q, %v", len(p.Instances), p.ContinuationToken, err)
	}
	for _, tok := range []string{"garbage!", "MTpYOmE", s.encodeToken(cursor{1, "x"})[1:], "Mjox" + "OmE", "MTox"} {
		_, err := s.QueryInstances(ctx, host.InstanceQuery{ContinuationToken: tok})
		if !errors.Is(err, host.ErrBadToken) || !strings.Contains(err.Error(), "accepted") {
			t.Errorf("token %q: %v, want ErrBadToken saying what is accepted", tok, err)
		}
	}
	t.Run("Tamper", func(t *testing.T) { testQueryTokenTamper(t, b) })
}

// testQueryTokenTamper checks that continuation tokens are tamper-evident:
// every change to an issued token (each character replaced by each other
// base64url character, dropped, or followed by another one; a line break
// inserted; re-encoding the same cursor without the checksum, as version 1
// did; the token of another hub) gives host.ErrBadToken, while the token
// itself works in any Store of its hub.
func testQueryTokenTamper(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 2})
	queryFixture(t, s)
	p1, err := s.QueryInstances(ctx, host.InstanceQuery{PageSize: 3})
	if err != nil || p1.ContinuationToken == "" {
		t.Fatal(p1, err)
	}
	tok := p1.ContinuationToken
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var variants []string
	for i := range tok {
		for _, c := range alphabet {
			if byte(c) != tok[i] {
				variants = append(variants, tok[:i]+string(c)+tok[i+1:])
			}
		}
		variants = append(variants, tok[:i]+tok[i+1:], tok[:i+1]+"A"+tok[i+1:], tok[:i]+"\n"+tok[i:])
	}
	c, _, err := s.decodeToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	v1 := func(c cursor) string {
		return base64.RawURLEncoding.EncodeToString([]byte("1:" + strconv.FormatInt(c.score, 10) + ":" + c.id))
	}
	other := b.store(t, Options{Partitions: 2})
	variants = append(variants, v1(c), v1(cursor{c.score, c.id + "x"}), other.encodeToken(c), tok+tok)
	for _, v := range variants {
		if _, err := s.QueryInstances(ctx, host.InstanceQuery{PageSize: 3, ContinuationToken: v}); !errors.Is(err, host.ErrBadToken) {
			t.Fatalf("tampered token %q (of %q) accepted: %v", v, tok, err)
		}
	}
	s2, err := New(ctx, b.client, s.Hub(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []*Store{s, s2} {
		if p, err := st.QueryInstances(ctx, host.InstanceQuery{PageSize: 3, ContinuationToken: tok}); err != nil || len(p.Instances) != 3 {
			t.Fatalf("issued token refused: %v", err)
		}
	}
}

// testQueryConcurrent pages through a hub while other instances are created
// (with created times among the existing ones), changed and purged, and
// while pre-existing instances move between two statuses the query asks
// for: every pre-existing instance appears exactly once.
func testQueryConcurrent(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 4})
	var pre []host.InstanceState
	for i := 0; i < 200; i++ {
		st := pendingState(fmt.Sprintf("pre-%03d", i))
		st.CreatedAt = queryBase.Add(time.Duration(i) * 10 * time.Millisecond)
		st.Status = abi.StatusRunning
		pre = append(pre, st)
	}
	bulkCreate(t, s, pre)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	wg.Add(2)
	go func() { // new instances everywhere in the created range, some purged again
		defer wg.Done()
		r := rand.New(rand.NewSource(1))
		for i := 0; i < 600; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond): // paging must keep up
			}
			st := pendingState(fmt.Sprintf("new-%d", i))
			st.CreatedAt = queryBase.Add(time.Duration(r.Intn(2000)) * time.Millisecond)
			st.Status = []abi.RuntimeStatus{abi.StatusRunning, abi.StatusSuspended, abi.StatusCompleted}[i%3]
			if err := s.CreateInstance(ctx, st, startMsg(st.InstanceID)); err != nil {
				t.Error(err)
				return
			}
			if i%4 == 0 {
				_ = s.PurgeInstance(ctx, fmt.Sprintf("new-%d", i/2), true)
			}
			writes.Add(1)
		}
	}()
	go func() { // pre-existing instances toggle between Running and Suspended
		defer wg.Done()
		ep := map[int]int64{}
		for p := 0; p < 4; p++ {
			e, _, err := s.AcquireLease(ctx, p, "toggler", time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			ep[p] = e
		}
		r := rand.New(rand.NewSource(2))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			st := pre[r.Intn(len(pre))]
			st.Status = []abi.RuntimeStatus{abi.StatusRunning, abi.StatusSuspended}[i%2]
			p := host.PartitionFor(st.InstanceID, 4)
			if _, err := s.Commit(ctx, []host.Commit{{Partition: p, Epoch: ep[p], CommitID: fmt.Sprint("t", i), State: st}}); err != nil {
				t.Error(err)
				return
			}
			writes.Add(1)
		}
	}()
	check := func(name string, q host.InstanceQuery) {
		seen := map[string]int{}
		var prev cursor
		for pages := 0; ; pages++ {
			page, err := s.QueryInstances(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range page.Instances {
				c := cursor{st.CreatedAt.UnixMilli(), st.InstanceID}
				if c.less(prev) {
					t.Errorf("%s: %s out of order", name, st.InstanceID)
				}
				prev = c
				seen[st.InstanceID]++
			}
			if page.ContinuationToken == "" {
				break
			}
			q.ContinuationToken = page.ContinuationToken
			time.Sleep(time.Millisecond)
		}
		for _, st := range pre {
			if n := seen[st.InstanceID]; n != 1 {
				t.Errorf("%s: pre-existing %s seen %d times", name, st.InstanceID, n)
			}
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s: %s seen %d times", name, id, n)
			}
		}
	}
	for _, size := range []int{1, 7, 100} {
		check(fmt.Sprintf("all, page size %d", size), host.InstanceQuery{PageSize: size})
		check(fmt.Sprintf("Running or Suspended, page size %d", size),
			host.InstanceQuery{PageSize: size, Statuses: []abi.RuntimeStatus{abi.StatusSuspended, abi.StatusRunning}})
	}
	close(stop)
	wg.Wait()
	if writes.Load() < 100 {
		t.Errorf("only %d concurrent writes during paging", writes.Load())
	}
}

// withTimers commits a Running step of st with two timers an hour ahead.
func withTimers(t *testing.T, s *Store, st host.InstanceState, status abi.RuntimeStatus) host.InstanceState {
	t.Helper()
	p := host.PartitionFor(st.InstanceID, s.Partitions())
	ep := mustLease(t, s, p, "w-status")
	st.Status = status
	at := time.Now().Add(-time.Hour) // in the past: FireDueTimers never fires before the server's time
	timers := []host.TimerItem{
		{FireAt: at, Message: host.ControlMessage{InstanceID: st.InstanceID, Event: abi.HistoryEvent{EventID: -1, Type: abi.EventTimerFired, TaskScheduledID: 1}}},
		{FireAt: at.Add(time.Second), Message: host.ControlMessage{InstanceID: st.InstanceID, Event: abi.HistoryEvent{EventID: -1, Type: abi.EventTimerFired, TaskScheduledID: 2}}},
	}
	mustCommit(t, s, host.Commit{Partition: p, Epoch: ep, CommitID: "timers-" + st.InstanceID + string(status), State: st,
		NewEvents: []abi.HistoryEvent{ev(abi.EventOrchestratorStarted, -1), ev(abi.EventTimerCreated, 1)}, Timers: timers})
	return st
}

func testPurgeInstance(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 1}) // one partition: all timers share one set
	done := withTimers(t, s, mustCreate(t, s, "done"), abi.StatusCompleted)
	running := withTimers(t, s, mustCreate(t, s, "run{1}"), abi.StatusRunning)
	withTimers(t, s, mustCreate(t, s, "other"), abi.StatusRunning)
	k := s.parts[0]
	if n, _ := s.rdb.ZCard(ctx, k.timers()).Result(); n != 6 {
		t.Fatalf("timer set has %d members, want 6", n)
	}
	if n, _ := s.rdb.SCard(ctx, k.timerIndex("run{1}")).Result(); n != 2 {
		t.Fatalf("timer index of run{1} has %d members, want 2", n)
	}
	if err := s.PurgeInstance(ctx, "done", false); err != nil {
		t.Fatalf("purge Completed: %v", err)
	}
	if _, err := s.GetInstance(ctx, "done"); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("purged instance still found: %v", err)
	}
	for _, key := range []string{k.instance("done"), k.history("done"), k.timerIndex("done")} {
		if n, _ := s.rdb.Exists(ctx, key).Result(); n != 0 {
			t.Errorf("%s survived the purge", key)
		}
	}
	if zscoreExists(t, s, k.idxCreated(), "done") || zscoreExists(t, s, k.idxStatus(done.Status), "done") {
		t.Error("purged instance still indexed")
	}
	if n, _ := s.rdb.ZCard(ctx, k.timers()).Result(); n != 4 {
		t.Errorf("timer set has %d members after purge, want 4 (the others' timers)", n)
	}
	err := s.PurgeInstance(ctx, "run{1}", false)
	if !errors.Is(err, host.ErrNotFinished) || !strings.Contains(err.Error(), "Running") || !strings.Contains(err.Error(), "run{1}") {
		t.Errorf("purge Running without force = %v; want ErrNotFinished naming the instance and Running", err)
	}
	if _, err := s.GetInstance(ctx, "run{1}"); err != nil {
		t.Errorf("refused purge wrote: %v", err)
	}
	if err := s.PurgeInstance(ctx, "run{1}", true); err != nil {
		t.Fatalf("forced purge: %v", err)
	}
	if _, err := s.GetInstance(ctx, running.InstanceID); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("force-purged instance still found: %v", err)
	}
	if n, _ := s.rdb.ZCard(ctx, k.timers()).Result(); n != 2 {
		t.Errorf("timer set has %d members, want only other's 2", n)
	}
	if err := s.PurgeInstance(ctx, "missing", true); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("purge missing = %v", err)
	}
	if err := s.PurgeInstance(ctx, "done", false); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("second purge = %v", err)
	}
	// Firing a timer removes it from its instance's timer index.
	ep := mustLease(t, s, 0, "w-status")
	if n, _, err := s.FireDueTimers(ctx, 0, ep, time.Now().Add(2*time.Hour), 10); err != nil || n != 2 {
		t.Fatalf("FireDueTimers = %d, %v", n, err)
	}
	if n, _ := s.rdb.Exists(ctx, k.timerIndex("other")).Result(); n != 0 {
		t.Error("fired timers left in the timer index")
	}
	// A purged id can be created again.
	mustCreate(t, s, "done")
}

func testPurgeInstances(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 4})
	var states []host.InstanceState
	for i := 0; i < 120; i++ {
		st := pendingState(fmt.Sprintf("%s-%03d", []string{"a", "b"}[i%2], i))
		st.CreatedAt = queryBase.Add(time.Duration(i) * time.Millisecond)
		st.Status = []abi.RuntimeStatus{abi.StatusCompleted, abi.StatusFailed, abi.StatusRunning, abi.StatusCompleted, abi.StatusPending, abi.StatusTerminated}[i/2%6]
		states = append(states, st)
	}
	bulkCreate(t, s, states)
	// A few via the worker path, with timers.
	for i := 0; i < 4; i++ {
		withTimers(t, s, createAt(t, s, fmt.Sprintf("a-w%d", i), abi.StatusPending, queryBase.Add(time.Duration(200+i)*time.Millisecond)), abi.StatusCompleted)
	}
	count := func(q host.InstanceQuery) int { return len(queryAll(t, s, q)) }
	aTerminal := count(host.InstanceQuery{InstanceIDPrefix: "a-", Statuses: []abi.RuntimeStatus{abi.StatusCompleted, abi.StatusFailed, abi.StatusTerminated, abi.StatusCanceled}})
	aOpen := count(host.InstanceQuery{InstanceIDPrefix: "a-", Statuses: []abi.RuntimeStatus{abi.StatusRunning, abi.StatusPending, abi.StatusSuspended}})
	if aTerminal != 44 || aOpen != 20 {
		t.Fatalf("fixture: %d terminal and %d open a- instances", aTerminal, aOpen)
	}
	var calls []host.PurgeResult
	progress := func(r host.PurgeResult) { calls = append(calls, r) }
	// Stop after 30, then continue.
	res, err := s.PurgeInstances(ctx, host.InstanceQuery{InstanceIDPrefix: "a-"}, false, 30, progress)
	if err != nil || res.Deleted != 30 || res.Skipped != 20 {
		t.Fatalf("first run = %+v, %v; want 30 deleted, 20 skipped", res, err)
	}
	if len(calls) == 0 || calls[len(calls)-1] != res {
		t.Errorf("progress calls %v, last should be %+v", calls, res)
	}
	calls = nil
	res, err = s.PurgeInstances(ctx, host.InstanceQuery{InstanceIDPrefix: "a-"}, false, 0, progress)
	if err != nil || res.Deleted != 14 || res.Skipped != 20 || len(calls) == 0 {
		t.Fatalf("second run = %+v, %v (progress %v); want the remaining 14", res, err, calls)
	}
	if n := count(host.InstanceQuery{InstanceIDPrefix: "a-"}); n != 20 {
		t.Errorf("%d a- instances left, want the 20 unfinished", n)
	}
	if n := count(host.InstanceQuery{InstanceIDPrefix: "b-"}); n != 60 {
		t.Errorf("%d b- instances left, want all 60", n)
	}
	if n, _ := s.rdb.ZCard(ctx, s.parts[host.PartitionFor("a-w1", 4)].timers()).Result(); n != 0 {
		t.Errorf("purged instances left %d timers", n)
	}
	// By time range (exact, sub-millisecond bounds) and status.
	for _, r := range [][2]time.Duration{{15 * time.Millisecond, 51 * time.Millisecond}, {63*time.Millisecond + time.Microsecond, 99*time.Millisecond + time.Microsecond}} {
		failed := count(host.InstanceQuery{Statuses: []abi.RuntimeStatus{abi.StatusFailed}})
		q := host.InstanceQuery{CreatedFrom: queryBase.Add(r[0]), CreatedTo: queryBase.Add(r[1]), Statuses: []abi.RuntimeStatus{abi.StatusFailed}}
		want := count(q)
		if want == 0 || want == failed {
			t.Fatalf("range %v selects %d of %d Failed instances", r, want, failed)
		}
		res, err = s.PurgeInstances(ctx, q, false, 0, nil)
		if err != nil || res.Deleted != want || res.Skipped != 0 {
			t.Errorf("purge Failed in %v = %+v, %v; want %d deleted", r, res, err, want)
		}
		if n := count(host.InstanceQuery{Statuses: []abi.RuntimeStatus{abi.StatusFailed}}); n != failed-want {
			t.Errorf("%d Failed left, want %d", n, failed-want)
		}
	}
	// Unfinished ones in range are skipped without force, purged with it.
	q := host.InstanceQuery{CreatedTo: queryBase.Add(60 * time.Millisecond)}
	open := count(host.InstanceQuery{CreatedTo: q.CreatedTo, Statuses: []abi.RuntimeStatus{abi.StatusRunning, abi.StatusPending}})
	res, err = s.PurgeInstances(ctx, q, false, 0, nil)
	if err != nil || res.Skipped != open || res.Deleted == 0 {
		t.Errorf("purge to 60ms = %+v, %v; want %d skipped", res, err, open)
	}
	res, err = s.PurgeInstances(ctx, q, true, 0, nil)
	if err != nil || res.Deleted != open || res.Skipped != 0 {
		t.Errorf("forced purge to 60ms = %+v, %v; want %d deleted", res, err, open)
	}
	if n := count(q); n != 0 {
		t.Errorf("%d instances left before 60ms", n)
	}
	// Everything, forced.
	left := count(host.InstanceQuery{})
	res, err = s.PurgeInstances(ctx, host.InstanceQuery{}, true, 0, nil)
	if err != nil || res.Deleted != left || count(host.InstanceQuery{}) != 0 {
		t.Errorf("purge all = %+v, %v; want %d", res, err, left)
	}
	for p := 0; p < 4; p++ {
		for _, key := range []string{s.parts[p].idxCreated(), s.parts[p].idxStatus(abi.StatusRunning), s.parts[p].timers()} {
			if n, _ := s.rdb.Exists(ctx, key).Result(); n != 0 {
				t.Errorf("%s left after purging everything", key)
			}
		}
	}
	if _, err := s.PurgeInstances(ctx, host.InstanceQuery{Statuses: []abi.RuntimeStatus{"nope"}}, false, 0, nil); err == nil {
		t.Error("unknown status accepted")
	}
}

func testRewindInstance(t *testing.T, b *backend) {
	s := b.store(t, Options{Partitions: 2})
	rewind := func(id, mid string) host.ControlMessage {
		return host.ControlMessage{InstanceID: id, MessageID: mid, Event: abi.HistoryEvent{EventID: -1, Type: abi.EventExecutionRewound, Reason: "fixed"}}
	}
	failed := setStatus(t, s, mustCreate(t, s, "f"), abi.StatusFailed)
	p := host.PartitionFor("f", 2)
	before := ctlLen(t, s, p)
	if err := s.RewindInstance(ctx, rewind("f", "r1")); err != nil {
		t.Fatalf("rewind Failed: %v", err)
	}
	if err := s.RewindInstance(ctx, rewind("f", "r1")); err != nil {
		t.Fatalf("repeated rewind: %v", err)
	}
	if got := ctlLen(t, s, p) - before; got != 1 {
		t.Errorf("rewind enqueued %d messages, want 1", got)
	}
	if st, _ := s.GetInstance(ctx, "f"); st.Status != abi.StatusFailed {
		t.Errorf("rewind changed the status to %s", st.Status)
	}
	msgs, _ := s.ReadControl(ctx, p, "w", 100, 0)
	if m := msgs[len(msgs)-1]; m.InstanceID != "f" || m.Event.Type != abi.EventExecutionRewound || m.Event.Reason != "fixed" {
		t.Errorf("enqueued %+v", m)
	}
	setStatus(t, s, failed, abi.StatusRunning)
	err := s.RewindInstance(ctx, rewind("f", ""))
	if !errors.Is(err, host.ErrNotFailed) || !strings.Contains(err.Error(), "Running") || !strings.Contains(err.Error(), "f") {
		t.Errorf("rewind Running = %v; want ErrNotFailed naming Running", err)
	}
	if err := s.RewindInstance(ctx, rewind("missing", "")); !errors.Is(err, host.ErrInstanceNotFound) {
		t.Errorf("rewind missing = %v", err)
	}
	if err := s.RewindInstance(ctx, startMsg("f")); err == nil {
		t.Error("rewind with an ExecutionStarted event accepted")
	}
}

// hubKeysLeft lists the keys of hub on every master.
func hubKeysLeft(t *testing.T, c redis.UniversalClient, hub string) []string {
	t.Helper()
	var mu sync.Mutex
	var keys []string
	scan := func(cl *redis.Client) error {
		for _, pat := range hubPattern(hub) {
			it := cl.Scan(ctx, 0, pat, 1000).Iterator()
			for it.Next(ctx) {
				mu.Lock()
				keys = append(keys, it.Val())
				mu.Unlock()
			}
			if err := it.Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	switch cl := c.(type) {
	case *redis.ClusterClient:
		err = cl.ForEachMaster(ctx, func(_ context.Context, n *redis.Client) error { return scan(n) })
	case *redis.Client:
		err = scan(cl)
	}
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
