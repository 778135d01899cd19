package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/redisstore"
)

// lossyStore is a redisstore.Store whose idempotent operations lose their
// reply: the first lose calls are applied and then report a connection
// reset (the reply of a script that ran never arrived), and the calls after
// fail (connection refused) before reaching Redis while refuse > 0. It
// records the keys it was called with, and finds every function.
type lossyStore struct {
	*redisstore.Store
	mu     sync.Mutex
	lose   int
	refuse int
	keys   []string
	ttls   []time.Duration
}

var errReset = fmt.Errorf("read tcp 127.0.0.1:1->127.0.0.1:6379: %w", syscall.ECONNRESET)

func (s *lossyStore) FindFunction(context.Context, string) (*host.AppRecord, host.FunctionInfo, error) {
	return &host.AppRecord{Name: "app", Digest: "sha256:x"}, host.FunctionInfo{Name: "F", Kind: abi.KindOrchestrator}, nil
}

// fail decides the fate of one call: apply it, then report err (nil: the
// reply arrives); or skip it (refused).
func (s *lossyStore) fail(idem host.Idempotency) (apply bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, idem.Key)
	s.ttls = append(s.ttls, idem.TTL)
	switch {
	case s.lose > 0:
		s.lose--
		return true, errReset
	case s.refuse > 0:
		s.refuse--
		return false, fmt.Errorf("dial tcp 127.0.0.1:6379: %w", syscall.ECONNREFUSED)
	}
	return true, nil
}

func (s *lossyStore) CreateInstanceOnce(ctx context.Context, st host.InstanceState, start host.ControlMessage, idem host.Idempotency) (host.Replay, error) {
	apply, ferr := s.fail(idem)
	if !apply {
		return host.Replay{}, ferr
	}
	r, err := s.Store.CreateInstanceOnce(ctx, st, start, idem)
	if err != nil {
		return r, err
	}
	return r, ferr
}

func (s *lossyStore) SendToInstanceOnce(ctx context.Context, msg host.ControlMessage, idem host.Idempotency) (host.Replay, error) {
	apply, ferr := s.fail(idem)
	if !apply {
		return host.Replay{}, ferr
	}
	r, err := s.Store.SendToInstanceOnce(ctx, msg, idem)
	if err != nil {
		return r, err
	}
	return r, ferr
}

func (s *lossyStore) PurgeInstanceOnce(ctx context.Context, id string, force bool, idem host.Idempotency) (host.Replay, error) {
	apply, ferr := s.fail(idem)
	if !apply {
		return host.Replay{}, ferr
	}
	r, err := s.Store.PurgeInstanceOnce(ctx, id, force, idem)
	if err != nil {
		return r, err
	}
	return r, ferr
}

func (s *lossyStore) set(lose, refuse int) {
	s.mu.Lock()
	s.lose, s.refuse, s.keys, s.ttls = lose, refuse, nil, nil
	s.mu.Unlock()
}

func newLossy(t *testing.T) (*lossyStore, *client.Client) {
	t.Helper()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { rdb.Close() })
	st, err := redisstore.New(context.Background(), rdb, "idem", redisstore.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	ls := &lossyStore{Store: st}
	c := client.New(ls, nil)
	c.SetRetryPolicy(client.RetryPolicy{Attempts: 4, Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})
	return ls, c
}

// raisedEvents counts the EventRaised messages queued for id.
func raisedEvents(t *testing.T, s *lossyStore, id string) int {
	t.Helper()
	p := host.PartitionFor(id, s.Partitions())
	msgs, err := s.ReadControl(context.Background(), p, fmt.Sprint("reader-", time.Now().UnixNano()), 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	msgs2, _ := s.ClaimControl(context.Background(), p, "counter")
	seen := map[string]bool{} // a claim returns the messages just read too
	for _, m := range append(msgs, msgs2...) {
		if m.InstanceID == id && m.Event.Type == abi.EventEventRaised {
			seen[m.ID] = true
		}
	}
	return len(seen)
}

// TestClientRetriesAmbiguousFailuresOnce: a raise-event whose reply is lost
// (applied, then a connection reset), then refused twice, is retried by the
// client with the same key and applied exactly once; without the key the
// retry would queue the event again.
func TestClientRetriesAmbiguousFailuresOnce(t *testing.T) {
	ctx := context.Background()
	s, c := newLossy(t)
	if _, err := c.StartNew(ctx, client.StartOptions{FunctionName: "F", InstanceID: "i1"}); err != nil {
		t.Fatal(err)
	}
	s.set(1, 2)
	if err := c.RaiseEvent(ctx, "i1", "Approval", `true`); err != nil {
		t.Fatalf("RaiseEvent with a lost reply: %v", err)
	}
	if len(s.keys) != 4 || s.keys[0] == "" || s.keys[0] != s.keys[3] || s.keys[1] != s.keys[0] {
		t.Errorf("attempts used keys %q, want 4 attempts with one generated key", s.keys)
	}
	if n := raisedEvents(t, s, "i1"); n != 1 {
		t.Errorf("%d events queued, want 1", n)
	}
	if s.ttls[0] != client.GeneratedIdempotencyTTL {
		t.Errorf("a generated key is recorded for %v, want %v", s.ttls[0], client.GeneratedIdempotencyTTL)
	}
	// A lost reply of a purge: the retry succeeds (not ErrInstanceNotFound).
	s.set(1, 0)
	if err := c.PurgeInstance(ctx, "i1", true); err != nil {
		t.Errorf("PurgeInstance with a lost reply: %v", err)
	}
	// And of a start: the retry returns the created instance, not
	// ErrInstanceExists.
	s.set(1, 0)
	st, err := c.StartNew(ctx, client.StartOptions{FunctionName: "F", InstanceID: "i2"})
	if err != nil {
		t.Fatalf("StartNew with a lost reply: %v", err)
	}
	if got, err := c.GetStatus(ctx, "i2"); err != nil || got.ExecutionID != st.ExecutionID {
		t.Errorf("StartNew returned execution %s, the instance has %+v, %v", st.ExecutionID, got, err)
	}
}

// TestClientGivesUpWithErrMaybeApplied: when every attempt fails the error
// is ErrMaybeApplied and names the key; retrying with that key
// (WithIdempotencyKey) applies the operation at most once.
func TestClientGivesUpWithErrMaybeApplied(t *testing.T) {
	ctx := context.Background()
	s, c := newLossy(t)
	if _, err := c.StartNew(ctx, client.StartOptions{FunctionName: "F", InstanceID: "i1"}); err != nil {
		t.Fatal(err)
	}
	s.set(1, 100)
	err := c.RaiseEvent(ctx, "i1", "Approval", `true`)
	var mae *client.MaybeAppliedError
	if !errors.Is(err, client.ErrMaybeApplied) || !errors.As(err, &mae) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("RaiseEvent after 4 failed attempts = %v, want ErrMaybeApplied wrapping the last failure", err)
	}
	if mae.Key == "" || !mae.Generated || mae.Attempts != 4 || !strings.Contains(err.Error(), mae.Key) ||
		!strings.Contains(err.Error(), "raise event Approval on i1") || !strings.Contains(err.Error(), "Idempotency-Key") {
		t.Errorf("error %q (%+v) does not name the operation, the key and how to pass it", err, mae)
	}
	s.set(0, 0)
	kctx := client.WithIdempotencyKey(ctx, mae.Key)
	for i := 0; i < 2; i++ {
		if err := c.RaiseEvent(kctx, "i1", "Approval", `true`); err != nil {
			t.Fatalf("retry #%d with the key: %v", i, err)
		}
	}
	if n := raisedEvents(t, s, "i1"); n != 1 {
		t.Errorf("%d events queued after the retries with the key, want 1", n)
	}
	if err := c.RaiseEvent(kctx, "i1", "Approval", `false`); !errors.Is(err, host.ErrIdempotencyKeyReused) {
		t.Errorf("the key with other data = %v, want ErrIdempotencyKeyReused", err)
	}
	if err := c.Terminate(kctx, "i1", "r", true); !errors.Is(err, host.ErrIdempotencyKeyReused) ||
		!strings.Contains(err.Error(), "raise-event") {
		t.Errorf("the key for a terminate = %v, want ErrIdempotencyKeyReused naming raise-event", err)
	}
	// A canceled context stops the retries and still says maybe applied.
	s.set(1, 100)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	c.SetRetryPolicy(client.RetryPolicy{Attempts: 1000, Backoff: 5 * time.Millisecond})
	if err := c.Suspend(cctx, "i1", ""); !errors.Is(err, client.ErrMaybeApplied) {
		t.Errorf("Suspend under an ending context = %v, want ErrMaybeApplied", err)
	}
}

// TestCallerIdempotencyKeys: a caller's key makes repeated calls apply once;
// StartNew without an id derives it from the key; bad keys are refused.
func TestCallerIdempotencyKeys(t *testing.T) {
	ctx := context.Background()
	s, c := newLossy(t)
	kctx := client.WithIdempotencyKey(ctx, "order-42")
	a, err := c.StartNew(kctx, client.StartOptions{FunctionName: "F", Input: `1`})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.StartNew(kctx, client.StartOptions{FunctionName: "F", Input: `1`})
	if err != nil || b.InstanceID != a.InstanceID || b.ExecutionID != a.ExecutionID {
		t.Fatalf("second StartNew with the key = %+v, %v; want the first instance %s/%s", b, err, a.InstanceID, a.ExecutionID)
	}
	if len(a.InstanceID) != 32 {
		t.Errorf("derived id %q, want 32 hex digits", a.InstanceID)
	}
	if _, err := c.StartNew(kctx, client.StartOptions{FunctionName: "F", Input: `2`}); !errors.Is(err, host.ErrIdempotencyKeyReused) {
		t.Errorf("StartNew with the key and other input = %v, want ErrIdempotencyKeyReused", err)
	}
	for i := 0; i < 3; i++ {
		if err := c.RaiseEvent(client.WithIdempotencyKey(ctx, "ev-1"), a.InstanceID, "E", `1`); err != nil {
			t.Fatal(err)
		}
	}
	if n := raisedEvents(t, s, a.InstanceID); n != 1 {
		t.Errorf("three raises with one key queued %d events", n)
	}
	if s.ttls[len(s.ttls)-1] != 0 {
		t.Errorf("a caller's key is recorded for %v, want the store's default (host.IdempotencyTTL)", s.ttls[len(s.ttls)-1])
	}
	// Restart into a new id: the retry restarts into the same one.
	r1, err := c.Restart(client.WithIdempotencyKey(ctx, "re-1"), a.InstanceID, true)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := c.Restart(client.WithIdempotencyKey(ctx, "re-1"), a.InstanceID, true)
	if err != nil || r2.InstanceID != r1.InstanceID || r2.ExecutionID != r1.ExecutionID {
		t.Errorf("restart retry = %+v, %v; want %s", r2, err, r1.InstanceID)
	}
	for _, bad := range []string{"with space", strings.Repeat("k", 256), "ünï"} {
		if err := c.RaiseEvent(client.WithIdempotencyKey(ctx, bad), a.InstanceID, "E", `1`); !errors.Is(err, host.ErrInvalidInput) ||
			!strings.Contains(err.Error(), "idempotency key") {
			t.Errorf("key %q: %v, want ErrInvalidInput about the idempotency key", bad, err)
		}
	}
}
