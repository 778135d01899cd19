package worker

// The warm cache: orchestrations kept alive in their guest instances
// between steps, bounded by count (LRU).

import (
	"container/list"
	"context"
	"sync"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/host/replay"
	"github.com/durablewasm/durablewasm/host/sandbox"
)

// warm is one orchestration kept alive between steps.
type warm struct {
	id        string
	partition int
	meta      host.InstanceState
	state     *replay.State
	inst      *sandbox.Instance
	handle    uint32
	elem      *list.Element
	busy      bool
	// stale is set when the guest ran ahead of what will be committed (a
	// failed step after local activities): the entry is dropped after the
	// commit and rebuilt from history.
	stale bool
	// fresh is the execution id the first step assumed from the start
	// message instead of reading the instance (Commit.ExpectFresh).
	fresh string
}

// warmCache is an LRU of warm orchestrations bounded by count.
type warmCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*warm
	lru *list.List
}

func newWarmCache(max int) *warmCache {
	return &warmCache{max: max, m: map[string]*warm{}, lru: list.New()}
}

func (c *warmCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// take returns the warm entry for id marked busy, or nil.
func (c *warmCache) take(id string) *warm {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if e != nil {
		e.busy = true
		c.lru.MoveToFront(e.elem)
	}
	return e
}

// has reports whether id is warm.
func (c *warmCache) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id] != nil
}

// put inserts or refreshes e (no longer busy) and evicts beyond the bound.
func (c *warmCache) put(e *warm) {
	var evict []*warm
	c.mu.Lock()
	e.busy = false
	if e.elem == nil {
		e.elem = c.lru.PushFront(e)
		c.m[e.id] = e
	}
	for el := c.lru.Back(); len(c.m) > c.max && el != nil; {
		v := el.Value.(*warm)
		prev := el.Prev()
		if !v.busy {
			c.lru.Remove(el)
			delete(c.m, v.id)
			evict = append(evict, v)
		}
		el = prev
	}
	c.mu.Unlock()
	for _, v := range evict {
		v.release()
	}
}

// remove forgets e and ends its guest orchestration.
func (c *warmCache) remove(e *warm) {
	c.mu.Lock()
	if e.elem != nil && c.m[e.id] == e {
		c.lru.Remove(e.elem)
		delete(c.m, e.id)
	}
	e.elem = nil
	c.mu.Unlock()
	e.release()
}

func (c *warmCache) dropPartition(p int) {
	var drop []*warm
	c.mu.Lock()
	for id, e := range c.m {
		if e.partition == p {
			c.lru.Remove(e.elem)
			delete(c.m, id)
			drop = append(drop, e)
		}
	}
	c.mu.Unlock()
	for _, e := range drop {
		e.release()
	}
}

func (e *warm) release() {
	if e.inst == nil {
		return
	}
	e.inst.Orchestration(context.Background(), e.handle).End()
	e.inst = nil
}
