package httpapi

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
)

// fakeStore is an in-memory client.Store with just what the client API of
// the HTTP routes uses; any other method panics (nil embedded interface).
type fakeStore struct {
	client.Store
	mu        sync.Mutex
	instances map[string]*host.InstanceState
	history   map[string][]abi.HistoryEvent
	sent      []host.ControlMessage
	// panicOn makes GetInstance panic for that id.
	panicOn string
	// lastQuery is the last query passed to QueryInstances.
	lastQuery host.InstanceQuery
}

var fakeEpoch = time.Date(2024, 6, 4, 15, 18, 28, 123456789, time.UTC)

// newFakeStore returns a store holding: run (Running), pend (Pending),
// susp (Suspended), done (Completed), failed (Failed), term (Terminated).
func newFakeStore() *fakeStore {
	f := &fakeStore{instances: map[string]*host.InstanceState{}, history: map[string][]abi.HistoryEvent{}}
	add := func(id string, status abi.RuntimeStatus, i int, mod func(*host.InstanceState)) {
		st := &host.InstanceState{InstanceID: id, Name: "Hello", Status: status, Input: `{"city":"Tokyo"}`,
			CreatedAt: fakeEpoch.Add(time.Duration(i) * time.Second), UpdatedAt: fakeEpoch.Add(time.Duration(i)*time.Second + 10*time.Second)}
		if mod != nil {
			mod(st)
		}
		f.instances[id] = st
		f.history[id] = []abi.HistoryEvent{
			{EventID: -1, Type: abi.EventExecutionStarted, Name: "Hello", Input: st.Input, Timestamp: st.CreatedAt.UnixNano()},
			{EventID: 0, Type: abi.EventTaskScheduled, Name: "SayHello", Input: `"Tokyo"`, Timestamp: st.CreatedAt.UnixNano()},
			{EventID: -1, Type: abi.EventTaskCompleted, TaskScheduledID: 0, Result: `"Hello Tokyo!"`, Timestamp: st.UpdatedAt.UnixNano()},
		}
	}
	add("run", abi.StatusRunning, 0, func(s *host.InstanceState) { s.CustomStatus = `{"step":1}` })
	add("pend", abi.StatusPending, 1, nil)
	add("susp", abi.StatusSuspended, 2, nil)
	add("done", abi.StatusCompleted, 3, func(s *host.InstanceState) { s.Output = `["Hello Tokyo!"]` })
	add("failed", abi.StatusFailed, 4, func(s *host.InstanceState) {
		s.Failure = &abi.FailureDetails{Type: "Error", Message: "boom", Source: "activity SayHello"}
	})
	add("term", abi.StatusTerminated, 5, func(s *host.InstanceState) { s.Output = "bye now" })
	return f
}

func (f *fakeStore) Partitions() int { return 1 }

func (f *fakeStore) CreateInstance(_ context.Context, st host.InstanceState, _ host.ControlMessage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.instances[st.InstanceID]; ok && !old.Status.Terminal() {
		return fmt.Errorf("create %s: %w", st.InstanceID, host.ErrInstanceExists)
	}
	f.instances[st.InstanceID] = &st
	f.history[st.InstanceID] = nil
	return nil
}

func (f *fakeStore) GetInstance(_ context.Context, id string) (*host.InstanceState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicOn != "" && id == f.panicOn {
		panic("fake store: boom")
	}
	st, ok := f.instances[id]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", id, host.ErrInstanceNotFound)
	}
	c := *st
	return &c, nil
}

func (f *fakeStore) GetHistory(_ context.Context, id string) ([]abi.HistoryEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.history[id]
	if !ok {
		return nil, fmt.Errorf("history %s: %w", id, host.ErrInstanceNotFound)
	}
	return append([]abi.HistoryEvent(nil), h...), nil
}

func (f *fakeStore) SendToInstance(_ context.Context, msg host.ControlMessage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.instances[msg.InstanceID]
	if !ok {
		return host.ErrInstanceNotFound
	}
	if st.Status.Terminal() {
		return host.ErrInstanceFinished
	}
	f.sent = append(f.sent, msg)
	return nil
}

func (f *fakeStore) RewindInstance(_ context.Context, msg host.ControlMessage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.instances[msg.InstanceID]
	if !ok {
		return host.ErrInstanceNotFound
	}
	if st.Status != abi.StatusFailed {
		return fmt.Errorf("%w (it is %s)", host.ErrNotFailed, st.Status)
	}
	f.sent = append(f.sent, msg)
	return nil
}

func (f *fakeStore) matching(q host.InstanceQuery) []host.InstanceState {
	var out []host.InstanceState
	for _, st := range f.instances {
		if !q.CreatedFrom.IsZero() && st.CreatedAt.Before(q.CreatedFrom) || !q.CreatedTo.IsZero() && st.CreatedAt.After(q.CreatedTo) {
			continue
		}
		if !strings.HasPrefix(st.InstanceID, q.InstanceIDPrefix) {
			continue
		}
		if len(q.Statuses) > 0 {
			ok := false
			for _, s := range q.Statuses {
				ok = ok || s == st.Status
			}
			if !ok {
				continue
			}
		}
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].InstanceID < out[j].InstanceID
	})
	return out
}

func (f *fakeStore) QueryInstances(_ context.Context, q host.InstanceQuery) (*host.InstancePage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastQuery = q
	all := f.matching(q)
	off := 0
	if q.ContinuationToken != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(q.ContinuationToken, "off:"))
		if err != nil || !strings.HasPrefix(q.ContinuationToken, "off:") || n < 0 || n > len(all) {
			return nil, fmt.Errorf("query: %w", host.ErrBadToken)
		}
		off = n
	}
	size := q.PageSize
	if size <= 0 {
		size = 100
	}
	end := min(off+size, len(all))
	p := &host.InstancePage{Instances: all[off:end]}
	if end < len(all) {
		p.ContinuationToken = "off:" + strconv.Itoa(end)
	}
	return p, nil
}

func (f *fakeStore) PurgeInstance(_ context.Context, id string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.instances[id]
	if !ok {
		return host.ErrInstanceNotFound
	}
	if !force && !st.Status.Terminal() {
		return host.ErrNotFinished
	}
	delete(f.instances, id)
	delete(f.history, id)
	return nil
}

func (f *fakeStore) PurgeInstances(_ context.Context, q host.InstanceQuery, force bool, _ int, progress func(host.PurgeResult)) (host.PurgeResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var res host.PurgeResult
	for _, st := range f.matching(q) {
		if !force && !st.Status.Terminal() {
			res.Skipped++
			continue
		}
		delete(f.instances, st.InstanceID)
		res.Deleted++
	}
	if progress != nil {
		progress(res)
	}
	return res, nil
}

var fakeApps = []host.AppRecord{{Name: "app", Digest: "sha256:00", Functions: []host.FunctionInfo{
	{Name: "Hello", Kind: abi.KindOrchestrator}, {Name: "SayHello", Kind: abi.KindActivity}}}}

func (f *fakeStore) FindFunction(_ context.Context, name string) (*host.AppRecord, host.FunctionInfo, error) {
	for _, fn := range fakeApps[0].Functions {
		if fn.Name == name {
			return &fakeApps[0], fn, nil
		}
	}
	return nil, host.FunctionInfo{}, host.ErrFunctionNotFound
}

func (f *fakeStore) ListApps(context.Context) ([]host.AppRecord, error) { return fakeApps, nil }

// set changes an instance's status.
func (f *fakeStore) set(id string, status abi.RuntimeStatus, output string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances[id].Status = status
	f.instances[id].Output = output
}
