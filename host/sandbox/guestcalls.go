package sandbox

// The calls into a guest instance: an orchestration's start, resume and
// drop through Orchestration (replay.Guest). An activity's run is in
// activities.go.

import (
	"context"
	"fmt"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
)

// Orchestration adapts one handle of an orchestration instance to replay.Guest.
// Its replay.Guest methods are called inside locked (guest calls into one
// instance are serialized).
type Orchestration struct {
	ctx    context.Context
	inst   *Instance
	handle uint32
}

// Bind reserves a new orchestration handle on g (for one generation of one
// instance) and returns its guest. No guest call is made.
func (g *Instance) Bind(ctx context.Context) *Orchestration {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.nextHandle++
	return &Orchestration{ctx: ctx, inst: g, handle: g.nextHandle}
}

// Orchestration is the guest of an orchestration already bound to handle
// on g (Bind), for calls made with ctx.
func (g *Instance) Orchestration(ctx context.Context, handle uint32) *Orchestration {
	return &Orchestration{ctx: ctx, inst: g, handle: handle}
}

// Handle is the orchestration's handle in its instance.
func (o *Orchestration) Handle() uint32 { return o.handle }

// DropLocked ends the orchestration in the guest; the caller is inside
// Locked.
func (o *Orchestration) DropLocked() { o.inst.drop(o.ctx, o.handle) }

// Locked runs fn with the instance locked: the orchestration's
// replay.Guest methods are called inside it (calls into one instance are
// serialized).
func (o *Orchestration) Locked(fn func() error) error {
	o.inst.mu.Lock()
	defer o.inst.mu.Unlock()
	return fn()
}

// End ends the orchestration in the guest, taking the instance's lock.
func (o *Orchestration) End() {
	o.inst.mu.Lock()
	o.inst.drop(o.ctx, o.handle)
	o.inst.mu.Unlock()
}

func (o *Orchestration) status(s *replay.State, what string, res []uint64, err error) error {
	if err != nil {
		return err
	}
	switch int32(res[0]) {
	case abi.StatusOK:
		return nil
	case abi.StatusUnknownFunction:
		return &replay.GuestFailure{Failure: &abi.FailureDetails{Type: abi.FailureUnknownOrchestrator, Code: replay.CodeUnknownOrchestrator,
			Message: fmt.Sprintf("module %s registers no orchestrator named %q", o.inst.digest, s.Name)}}
	case abi.StatusStuck:
		return errStuck()
	default:
		return &replay.GuestFailure{Failure: &abi.FailureDetails{Type: abi.FailureGuestError, Code: replay.CodeGuestTrap,
			Message: fmt.Sprintf("%s returned status %d", what, int32(res[0]))}}
	}
}

func (o *Orchestration) Start(s *replay.State) error {
	o.inst.handles[o.handle] = s
	o.inst.current = o.handle
	o.inst.now.Store(s.Now())
	req := abi.StartRequest{InstanceID: s.InstanceID, Name: s.Name, Input: []byte(s.Input)}.Encode()
	ctx := withCall(o.ctx, &orchCall{inst: o.inst})
	ptr, err := o.inst.write(ctx, req)
	if err != nil {
		return err
	}
	res, err := o.inst.call(ctx, abi.ExportOrchestratorStart, o.inst.fnStart, uint64(o.handle), uint64(ptr), uint64(len(req)))
	return o.status(s, abi.ExportOrchestratorStart, res, err)
}

func (o *Orchestration) Resume(s *replay.State) error {
	o.inst.handles[o.handle] = s
	o.inst.current = o.handle
	o.inst.now.Store(s.Now())
	ctx := withCall(o.ctx, &orchCall{inst: o.inst})
	res, err := o.inst.call(ctx, abi.ExportOrchestratorResume, o.inst.fnRes, uint64(o.handle))
	return o.status(s, abi.ExportOrchestratorResume, res, err)
}

// drop ends the orchestration parked under handle. The caller holds inst.mu.
func (g *Instance) drop(ctx context.Context, handle uint32) {
	delete(g.handles, handle)
	if g.dead.Load() {
		return
	}
	g.current = handle
	_, _ = g.call(withCall(ctx, &orchCall{inst: g}), abi.ExportOrchestratorDrop, g.fnDrop, uint64(handle))
}
