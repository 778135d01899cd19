package client_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/host"
	"github.com/durablewasm/durablewasm/host/client"
	"github.com/durablewasm/durablewasm/host/sandbox"
	"github.com/durablewasm/durablewasm/redisstore"
	"github.com/durablewasm/durablewasm/samples"
)

// countingStore counts FindFunction calls.
type countingStore struct {
	client.Store
	finds atomic.Int32
}

func (s *countingStore) FindFunction(ctx context.Context, name string) (*host.AppRecord, host.FunctionInfo, error) {
	s.finds.Add(1)
	return s.Store.FindFunction(ctx, name)
}

// TestStartNewCachesFunctionLookup checks that StartNew resolves an
// orchestrator once per FunctionCacheTTL, that a deploy through the same
// client is seen at once, and one made elsewhere within the TTL.
func TestStartNewCachesFunctionLookup(t *testing.T) {
	ctx := context.Background()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	st, err := redisstore.New(ctx, rdb, "cache", redisstore.Options{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := sandbox.NewEngine(ctx, sandbox.EngineOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	cs := &countingStore{Store: st}
	c := client.New(cs, eng)
	other := client.New(st, eng) // another process's client
	v1, err := c.Deploy(ctx, "app", samples.Wasm)
	if err != nil {
		t.Fatal(err)
	}
	// A custom section at the end makes a second, equivalent module.
	v2wasm := append(append([]byte(nil), samples.Wasm...), 0x00, 0x04, 0x02, 'v', '2', 0x01)
	digestOf := func(id string) string {
		s, err := c.GetStatus(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return s.Digest
	}
	start := func(id string) {
		if _, err := c.StartNew(ctx, client.StartOptions{FunctionName: "HelloWorld", InstanceID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"a1", "a2", "a3"} {
		start(id)
	}
	if n := cs.finds.Load(); n != 1 {
		t.Errorf("3 starts looked the function up %d times, want 1", n)
	}
	v2, err := other.Deploy(ctx, "app", v2wasm)
	if err != nil {
		t.Fatal(err)
	}
	start("b1")
	if d := digestOf("b1"); d != v1.Digest {
		t.Logf("b1 already on v2 (the TTL ran out on a slow machine)")
	}
	time.Sleep(client.FunctionCacheTTL + 100*time.Millisecond)
	start("b2")
	if d := digestOf("b2"); d != v2.Digest {
		t.Errorf("a start %s after another client's deploy runs on %s, want %s", client.FunctionCacheTTL, d, v2.Digest)
	}
	v3, err := c.Deploy(ctx, "app", samples.Wasm)
	if err != nil {
		t.Fatal(err)
	}
	start("c1")
	if d := digestOf("c1"); d != v3.Digest || d != v1.Digest {
		t.Errorf("a start right after this client's deploy runs on %s, want %s", d, v3.Digest)
	}
}
