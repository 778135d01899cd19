package host

// The calls into a guest instance: an orchestration's start, resume and
// drop through orchGuest (replay.Guest), and an activity's run.

import (
	"context"
	"fmt"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
)

// orchGuest adapts one handle of an orchestration instance to replay.Guest.
// Its replay.Guest methods are called inside locked (guest calls into one
// instance are serialized).
type orchGuest struct {
	ctx    context.Context
	inst   *guestInstance
	handle uint32
}

// bind reserves a new orchestration handle on g (for one generation of one
// instance) and returns its guest. No guest call is made.
func (g *guestInstance) bind(ctx context.Context) *orchGuest {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.nextHandle++
	return &orchGuest{ctx: ctx, inst: g, handle: g.nextHandle}
}

// guestOf is the guest of handle on g for calls made with ctx.
func guestOf(ctx context.Context, g *guestInstance, handle uint32) *orchGuest {
	return &orchGuest{ctx: ctx, inst: g, handle: handle}
}

// locked runs fn with the instance locked.
func (o *orchGuest) locked(fn func() error) error {
	o.inst.mu.Lock()
	defer o.inst.mu.Unlock()
	return fn()
}

// end ends the orchestration in the guest, taking the instance's lock.
func (o *orchGuest) end() {
	o.inst.mu.Lock()
	o.inst.drop(o.ctx, o.handle)
	o.inst.mu.Unlock()
}

func (o *orchGuest) status(s *replay.State, what string, res []uint64, err error) error {
	if err != nil {
		return err
	}
	switch int32(res[0]) {
	case abi.StatusOK:
		return nil
	case abi.StatusUnknownFunction:
		return &replay.GuestFailure{Failure: &abi.FailureDetails{Type: "UnknownOrchestrator", Code: replay.CodeUnknownOrchestrator,
			Message: fmt.Sprintf("module %s registers no orchestrator named %q", o.inst.digest, s.Name)}}
	case abi.StatusStuck:
		return errStuck()
	default:
		return &replay.GuestFailure{Failure: &abi.FailureDetails{Type: "GuestError", Code: replay.CodeGuestTrap,
			Message: fmt.Sprintf("%s returned status %d", what, int32(res[0]))}}
	}
}

func (o *orchGuest) Start(s *replay.State) error {
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

func (o *orchGuest) Resume(s *replay.State) error {
	o.inst.handles[o.handle] = s
	o.inst.current = o.handle
	o.inst.now.Store(s.Now())
	ctx := withCall(o.ctx, &orchCall{inst: o.inst})
	res, err := o.inst.call(ctx, abi.ExportOrchestratorResume, o.inst.fnRes, uint64(o.handle))
	return o.status(s, abi.ExportOrchestratorResume, res, err)
}

// drop ends the orchestration parked under handle. The caller holds inst.mu.
func (g *guestInstance) drop(ctx context.Context, handle uint32) {
	delete(g.handles, handle)
	if g.dead.Load() {
		return
	}
	g.current = handle
	_, _ = g.call(withCall(ctx, &orchCall{inst: g}), abi.ExportOrchestratorDrop, g.fnDrop, uint64(handle))
}

// runActivity runs one activity to completion. The caller holds g.mu.
func (g *guestInstance) runActivity(ctx context.Context, item *ActivityItem, logger *activityLog, management func(string) ([]byte, error)) (ok bool, payload string, err error) {
	g.nextHandle++
	maxPayload := g.settings.MaxPayloadBytes
	if maxPayload <= 0 {
		maxPayload = 1 << 20
	}
	c := &actCall{handle: g.nextHandle, logger: logger, instanceID: item.InstanceID, management: management,
		settings: g.settings, maxPayload: maxPayload, deadline: time.Now().Add(g.timeout)}
	ctx = withCall(ctx, c)
	req := abi.ActivityRequest{InstanceID: item.InstanceID, Name: item.Name, Input: []byte(item.Input), TaskID: item.TaskID}.Encode()
	ptr, err := g.write(ctx, req)
	if err != nil {
		return false, "", err
	}
	res, err := g.call(ctx, abi.ExportActivityRun, g.fnAct, uint64(c.handle), uint64(ptr), uint64(len(req)))
	if err != nil {
		return false, "", err
	}
	switch int32(res[0]) {
	case abi.StatusOK:
		if !c.done {
			return false, string(encodeJSON(&abi.FailureDetails{Type: "GuestError", Message: "activity returned without reporting a result"})), nil
		}
		return c.status == abi.CompleteOK, c.payload, nil
	case abi.StatusUnknownFunction:
		return false, string(encodeJSON(&abi.FailureDetails{Type: "UnknownActivity",
			Message: fmt.Sprintf("module %s registers no activity named %q", g.digest, item.Name)})), nil
	default:
		return false, string(encodeJSON(&abi.FailureDetails{Type: "GuestError",
			Message: fmt.Sprintf("%s returned status %d", abi.ExportActivityRun, int32(res[0]))})), nil
	}
}
