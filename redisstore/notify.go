package redisstore

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Finish notifications. The commit script publishes an instance's id on its
// partition's "done" channel (keys.go) in the commit that makes it terminal.
// On Redis Cluster the channel is a shard channel (SPUBLISH/SSUBSCRIBE, Redis
// 7), served by the partition's master; elsewhere (one server, miniredis) it
// is a plain channel. Notifications are best effort — pub/sub drops messages
// while a subscriber reconnects — so waiters still poll, less often.

// publish is the command the commit script announces finished instances
// with: SPUBLISH (a shard channel, served by the partition's own master) on
// a cluster, PUBLISH elsewhere (miniredis has no sharded pub/sub).
func (s *Store) publish() string {
	if _, ok := s.rdb.(*redis.ClusterClient); ok {
		return "SPUBLISH"
	}
	return "PUBLISH"
}

// watches holds one subscription per partition, made on the first wait on
// it and kept until the store is closed.
type watches struct {
	mu     sync.Mutex
	parts  map[int]*partWatch
	closed bool
}

// partWatch is the subscription to one partition's done channel.
type partWatch struct {
	ps      *redis.PubSub
	ready   chan struct{} // closed once the server confirmed the subscription
	waiters map[string]map[chan struct{}]struct{}
}

// NotifyFinished implements host.FinishNotifier: ch receives a value after
// instanceID may have reached a terminal status (best effort; callers check
// the status). It returns once the subscription is in place (or after a
// second, or when ctx ends), so a status read made after it cannot miss a
// completion that a notification would have announced. release frees ch.
func (s *Store) NotifyFinished(ctx context.Context, instanceID string) (<-chan struct{}, func(), error) {
	p, k := s.partition(instanceID)
	s.watch.mu.Lock()
	if s.watch.closed {
		s.watch.mu.Unlock()
		return nil, func() {}, redis.ErrClosed
	}
	if s.watch.parts == nil {
		s.watch.parts = map[int]*partWatch{}
	}
	w := s.watch.parts[p]
	if w == nil {
		w = &partWatch{ready: make(chan struct{}), waiters: map[string]map[chan struct{}]struct{}{}}
		sub := context.WithoutCancel(ctx)
		if c, ok := s.rdb.(*redis.ClusterClient); ok {
			w.ps = c.SSubscribe(sub, k.done())
		} else {
			w.ps = s.rdb.Subscribe(sub, k.done())
		}
		s.watch.parts[p] = w
		go s.receive(w)
	}
	ch := make(chan struct{}, 1)
	if w.waiters[instanceID] == nil {
		w.waiters[instanceID] = map[chan struct{}]struct{}{}
	}
	w.waiters[instanceID][ch] = struct{}{}
	s.watch.mu.Unlock()
	release := func() {
		s.watch.mu.Lock()
		delete(w.waiters[instanceID], ch)
		if len(w.waiters[instanceID]) == 0 {
			delete(w.waiters, instanceID)
		}
		s.watch.mu.Unlock()
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-w.ready:
	case <-t.C:
	case <-ctx.Done():
	}
	return ch, release, nil
}

// receive delivers w's messages to their waiters until the subscription is
// closed. go-redis reconnects and resubscribes by itself after an error.
func (s *Store) receive(w *partWatch) {
	ready := false
	for {
		msg, err := w.ps.Receive(context.Background())
		if err != nil {
			if err == redis.ErrClosed {
				return
			}
			s.watch.mu.Lock()
			closed := s.watch.closed
			s.watch.mu.Unlock()
			if closed {
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if !ready {
				ready = true
				close(w.ready)
			}
		case *redis.Message:
			s.watch.mu.Lock()
			for ch := range w.waiters[m.Payload] {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
			s.watch.mu.Unlock()
		}
	}
}

// closeWatches ends every subscription.
func (s *Store) closeWatches() {
	s.watch.mu.Lock()
	s.watch.closed = true
	parts := s.watch.parts
	s.watch.parts = nil
	s.watch.mu.Unlock()
	for _, w := range parts {
		_ = w.ps.Close()
	}
}
