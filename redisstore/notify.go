package redisstore

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Finish notifications. The commit script publishes an instance's id on its
// partition's "done" channel (keys.go) in the commit that makes it terminal.
// On Redis Cluster the channel is a shard channel (SPUBLISH/SSUBSCRIBE, Redis
// 7), served by the partition's master; elsewhere (one server, miniredis) it
// is a plain channel. Notifications are best effort — pub/sub drops messages
// while a subscriber reconnects, and a server may refuse pub/sub — so
// waiters still poll, less often.
//
// No wakeup is missed while the subscription works: each time it is
// (re)established (the server's confirmation arrives), every waiter of the
// partition is woken to read its status again, which covers completions
// announced before the subscription, or during a reconnection.

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

// partWatch is the subscription to one partition's done channel, run by
// its own goroutine (watch).
type partWatch struct {
	channel string
	ps      *redis.PubSub // the current subscription; nil while none
	waiters map[string]map[chan struct{}]struct{}
}

// NotifyFinished implements host.FinishNotifier: ch receives a value after
// instanceID may have reached a terminal status, and whenever the
// subscription behind it is (re)established (best effort; callers read the
// status). It does not wait for the network. release frees ch.
func (s *Store) NotifyFinished(ctx context.Context, instanceID string) (<-chan struct{}, func(), error) {
	p, k := s.partition(instanceID)
	ch := make(chan struct{}, 1)
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	if s.watch.closed {
		return nil, func() {}, redis.ErrClosed
	}
	if s.watch.parts == nil {
		s.watch.parts = map[int]*partWatch{}
	}
	w := s.watch.parts[p]
	if w == nil {
		w = &partWatch{channel: k.done(), waiters: map[string]map[chan struct{}]struct{}{}}
		s.watch.parts[p] = w
		go s.watchLoop(w)
	}
	if w.waiters[instanceID] == nil {
		w.waiters[instanceID] = map[chan struct{}]struct{}{}
	}
	w.waiters[instanceID][ch] = struct{}{}
	release := func() {
		s.watch.mu.Lock()
		delete(w.waiters[instanceID], ch)
		if len(w.waiters[instanceID]) == 0 {
			delete(w.waiters, instanceID)
		}
		s.watch.mu.Unlock()
	}
	return ch, release, nil
}

// wake sends to the waiters of id, or of every instance when all is set.
// The caller holds s.watch.mu.
func wake(w *partWatch, id string, all bool) {
	for wid, chans := range w.waiters {
		if !all && wid != id {
			continue
		}
		for ch := range chans {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// watchLoop keeps w subscribed until the store is closed: it subscribes,
// delivers messages, pings an idle connection (Receive has no deadline, so a
// half-open one would otherwise go unnoticed) and subscribes anew when the
// server ends the subscription (a cluster slot moved to another node).
func (s *Store) watchLoop(w *partWatch) {
	ctx := context.Background()
	for {
		var ps *redis.PubSub
		if c, ok := s.rdb.(*redis.ClusterClient); ok {
			ps = c.SSubscribe(ctx, w.channel)
		} else {
			ps = s.rdb.Subscribe(ctx, w.channel)
		}
		s.watch.mu.Lock()
		if s.watch.closed {
			s.watch.mu.Unlock()
			_ = ps.Close()
			return
		}
		w.ps = ps
		s.watch.mu.Unlock()
		s.receive(ctx, w, ps)
		_ = ps.Close()
		s.watch.mu.Lock()
		w.ps = nil
		closed := s.watch.closed
		s.watch.mu.Unlock()
		if closed {
			return
		}
		if c, ok := s.rdb.(*redis.ClusterClient); ok {
			c.ReloadState(ctx)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// receive runs one subscription until the server ends it or it is closed.
func (s *Store) receive(ctx context.Context, w *partWatch, ps *redis.PubSub) {
	for {
		msg, err := ps.ReceiveTimeout(ctx, 15*time.Second)
		if err != nil {
			if errors.Is(err, redis.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				_ = ps.Ping(ctx) // a dead connection fails here and is redialled
				continue
			}
			// A refused subscription (ACL) or a broken connection: go-redis
			// redials and resubscribes on the next call.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			switch m.Kind {
			case "subscribe", "ssubscribe":
				// (Re)established: whatever was announced before is
				// covered by one more status read.
				s.watch.mu.Lock()
				wake(w, "", true)
				s.watch.mu.Unlock()
			case "unsubscribe", "sunsubscribe":
				return // the server ended it (cluster slot moved): subscribe anew
			}
		case *redis.Message:
			s.watch.mu.Lock()
			wake(w, m.Payload, false)
			s.watch.mu.Unlock()
		}
	}
}

// closeWatches ends every subscription.
func (s *Store) closeWatches() {
	s.watch.mu.Lock()
	s.watch.closed = true
	var open []*redis.PubSub
	for _, w := range s.watch.parts {
		if w.ps != nil {
			open = append(open, w.ps)
		}
	}
	s.watch.parts = nil
	s.watch.mu.Unlock()
	for _, ps := range open {
		_ = ps.Close()
	}
}
