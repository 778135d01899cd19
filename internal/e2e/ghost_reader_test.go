package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/worker"
	"github.com/durablewasm/durablewasm/internal/redistest"
)

// TestMessagesSwallowedByAStaleReaderAreReclaimed reproduces what a paused
// former owner does: its blocking XREADGROUP is still outstanding on the
// server after the takeover, so Redis hands it new messages, which then sit
// in that consumer's pending list. The owner must claim them back; before
// the fix they were lost until the stale worker came back.
func TestMessagesSwallowedByAStaleReaderAreReclaimed(t *testing.T) {
	addr := redistest.StartServer(t)
	e := samplesEnv(t, "redis://"+addr)
	ctx := context.Background()
	e.worker(worker.Options{LeaseTTL: time.Second})
	e.start("HelloWorld", "warmup", `"x"`)
	e.wait("warmup", 20*time.Second)

	// Ghost readers: one blocked XREADGROUP per partition's control stream,
	// issued as another consumer and never processed.
	ghost := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64, ReadTimeout: -1})
	defer ghost.Close()
	for p := 0; p < e.store.Partitions(); p++ {
		stream := fmt.Sprintf("dw:{%s:%d}:ctl", e.hub, p)
		go ghost.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "dw", Consumer: "ghost", Streams: []string{stream, ">"}, Count: 100, Block: 30 * time.Second})
	}
	time.Sleep(300 * time.Millisecond) // the ghosts block before the worker's next read
	for i := 0; i < 8; i++ {
		e.start("HelloWorld", fmt.Sprint("g", i), `"y"`)
	}
	for i := 0; i < 8; i++ {
		if st := e.wait(fmt.Sprint("g", i), 20*time.Second); st.Status != abi.StatusCompleted || st.Output != `"Hello y!"` {
			t.Fatalf("g%d: %s %s", i, st.Status, st.Output)
		}
	}
}
