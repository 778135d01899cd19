package sandbox

import (
	"context"
	"sync"
)

// Set tracks the live instances of one worker, so that its shutdown
// can interrupt every running guest call.
type Set struct {
	mu      sync.Mutex
	live    map[*Instance]struct{}
	aborted bool
	done    chan struct{} // closed by abort
}

type guestSetKey struct{}

func NewSet() *Set {
	return &Set{live: map[*Instance]struct{}{}, done: make(chan struct{})}
}

// with returns ctx carrying s: instances created with it are tracked, and
// blocking host calls (outbound HTTP) end when s is aborted.
func (s *Set) With(ctx context.Context) context.Context {
	if ctx.Value(guestSetKey{}) == s {
		return ctx
	}
	return context.WithValue(ctx, guestSetKey{}, s)
}

// add tracks g; false once s was aborted.
func (s *Set) add(g *Instance) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aborted {
		return false
	}
	s.live[g] = struct{}{}
	return true
}

func (s *Set) remove(g *Instance) {
	s.mu.Lock()
	delete(s.live, g)
	s.mu.Unlock()
}

// abort interrupts every tracked instance and refuses new ones.
func (s *Set) Abort() int {
	s.mu.Lock()
	if !s.aborted {
		s.aborted = true
		close(s.done)
	}
	live := make([]*Instance, 0, len(s.live))
	for g := range s.live {
		live = append(live, g)
	}
	s.mu.Unlock()
	for _, g := range live {
		g.abort()
	}
	return len(live)
}

// abortedChan returns a channel closed when the guest set in ctx, if any,
// is aborted (nil otherwise).
func abortedChan(ctx context.Context) <-chan struct{} {
	if s, _ := ctx.Value(guestSetKey{}).(*Set); s != nil {
		return s.done
	}
	return nil
}
