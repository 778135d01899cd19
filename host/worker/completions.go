package worker

import (
	"context"
	"sync"

	"github.com/durablewasm/durablewasm/host"
)

// Batched activity completions.
//
// Each finished activity posts its result with one script. When many
// activities finish at once — many in flight, each waiting on I/O — one
// round trip per result was a fifth of the worker's CPU in hello5 with
// local activities off. The completer sends the results that are waiting
// when it is free in one pipeline (Store.CompleteActivities); a result
// that finds it idle is sent at once, so batching adds no latency.

// maxCompletionBatch bounds the results sent in one pipeline.
const maxCompletionBatch = 128

// completer batches activity completions; the zero value is ready, with
// store set.
type completer struct {
	store   Store
	mu      sync.Mutex
	queue   []*completion
	sending bool
}

// completion is one result waiting to be sent.
type completion struct {
	item host.ActivityItem
	msg  host.ControlMessage
	done chan error
}

// complete posts msg as item's result, batched with others, and returns
// its outcome (as Store.CompleteActivity).
func (c *completer) complete(ctx context.Context, item host.ActivityItem, msg host.ControlMessage) error {
	req := &completion{item: item, msg: msg, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, req)
	lead := !c.sending
	c.sending = true
	c.mu.Unlock()
	if lead {
		// This goroutine sends until the queue is empty; the others wait.
		c.send(context.WithoutCancel(ctx))
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send sends the queued completions, batch by batch, until none is left.
func (c *completer) send(ctx context.Context) {
	for {
		c.mu.Lock()
		n := min(len(c.queue), maxCompletionBatch)
		if n == 0 {
			c.sending = false
			c.mu.Unlock()
			return
		}
		batch := c.queue[:n:n]
		c.queue = c.queue[n:]
		c.mu.Unlock()
		items := make([]host.ActivityItem, len(batch))
		msgs := make([]host.ControlMessage, len(batch))
		for i, r := range batch {
			items[i], msgs[i] = r.item, r.msg
		}
		errs := c.store.CompleteActivities(ctx, items, msgs)
		for i, r := range batch {
			r.done <- errs[i]
		}
	}
}
