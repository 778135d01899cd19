package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
)

// Activities.
//
// An activity instance of a module that exports abi.ExportActivityResume
// and abi.ExportActivityDrop runs many activities at once: when an
// activity's capability call (outbound HTTP) would block, the host starts
// the I/O in a goroutine and answers abi.ErrPending; the guest parks the
// activity and returns abi.StatusParked, and the instance is free for other
// activities' calls. When the I/O ends, the host resumes the activity,
// whose repeat of the call returns the result. A parked activity costs the
// guest its coroutine's memory and the host a goroutine, not an instance.
//
// A module without those exports runs one activity at a time: its
// capability calls block the instance until they return.

// ErrDiscarded is returned by RunActivity when the instance was discarded
// (another activity's call trapped or overran) while the activity was
// parked on it. The activity did nothing the guest could report: run it
// again on another instance.
var ErrDiscarded = errors.New("the activity's instance was discarded while the activity was parked on it")

// AsyncActivities reports whether g's module takes asynchronous
// activities, so that g can run many activities at once.
func (g *Instance) AsyncActivities() bool { return g.fnActResume != nil && g.fnActDrop != nil }

// asyncOp is an activity's outstanding asynchronous host call.
type asyncOp struct {
	req    []byte
	done   chan struct{}
	resp   []byte // set before done is closed
	cancel context.CancelFunc
}

// RunActivity runs one activity on g and returns whether it succeeded and
// its result or failure payload (JSON). It takes g's lock for each call
// into the guest only, so that activities of an asynchronous module
// (AsyncActivities) run on one instance at once, each parked while its
// host calls do I/O. An error means the activity could not run at all (the
// instance was discarded or interrupted — ErrDiscarded, ErrAborted — or
// ctx ended): nothing is to be reported for it. logger gives the
// activity's logger on first use; management, if not nil, returns an
// instance's management payload JSON.
//
// The activity's deadline (EngineOptions.ActivityTimeout, or the module's)
// covers its whole run, parked time included: an activity still parked at
// its deadline is dropped and fails with a GuestTrap.
func (g *Instance) RunActivity(ctx context.Context, item *host.ActivityItem, logger func() *slog.Logger, management func(string) ([]byte, error)) (ok bool, payload string, err error) {
	g.mu.Lock()
	c, res, err := g.startActivity(ctx, item, logger, management)
	g.mu.Unlock()
	for err == nil && res == abi.StatusParked && c.op != nil {
		res, err = g.awaitActivity(ctx, c)
	}
	if err != nil {
		return false, "", err
	}
	return g.activityOutcome(c, item, res)
}

// startActivity makes the activity's first call. The caller holds g.mu.
func (g *Instance) startActivity(ctx context.Context, item *host.ActivityItem, logger func() *slog.Logger, management func(string) ([]byte, error)) (*actCall, int32, error) {
	g.nextHandle++
	maxPayload := g.settings.MaxPayloadBytes
	if maxPayload <= 0 {
		maxPayload = 1 << 20
	}
	c := &actCall{handle: g.nextHandle, logger: logger, instanceID: item.InstanceID, management: management,
		settings: g.settings, maxPayload: maxPayload, deadline: time.Now().Add(g.timeout),
		async: g.AsyncActivities(), ctx: context.WithoutCancel(ctx)}
	cctx := withCall(ctx, c)
	req := abi.ActivityRequest{InstanceID: item.InstanceID, Name: item.Name, Input: []byte(item.Input), TaskID: item.TaskID}.Encode()
	ptr, err := g.write(cctx, req)
	if err != nil {
		return c, 0, err
	}
	res, err := g.call(cctx, abi.ExportActivityRun, g.fnAct, uint64(c.handle), uint64(ptr), uint64(len(req)))
	if err != nil {
		return c, 0, err
	}
	return c, int32(res[0]), nil
}

// awaitActivity waits, without g's lock, for the parked activity's
// asynchronous call, then resumes it and returns what the resume returned.
// At the activity's deadline, or when g is interrupted or aborted, it drops
// the activity instead.
func (g *Instance) awaitActivity(ctx context.Context, c *actCall) (int32, error) {
	op := c.op
	t := time.NewTimer(time.Until(c.deadline))
	defer t.Stop()
	var timedOut bool
	select {
	case <-op.done:
	case <-t.C:
		timedOut = true
	case <-g.wake: // interrupted (deadline of another call) or aborted
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	stop := func(err error) (int32, error) {
		op.cancel()
		g.dropActivity(c.handle)
		return 0, err
	}
	switch {
	case g.aborted.Load():
		return stop(fmt.Errorf("%s: %w", abi.ExportActivityResume, ErrAborted))
	case g.dead.Load():
		op.cancel()
		return 0, ErrDiscarded
	case ctx.Err() != nil:
		return stop(ctx.Err())
	case timedOut:
		stop(nil)
		c.done, c.status = true, abi.CompleteFailed
		c.payload = string(encodeJSON(&abi.FailureDetails{Type: abi.FailureGuestTrap, Code: replay.CodeGuestTrap,
			Message: fmt.Sprintf("the activity ran longer than its deadline of %s (it was parked on an HTTP request) and was stopped", g.timeout)}))
		return abi.StatusOK, nil
	}
	op.cancel()
	c.lastHTTPReq, c.lastHTTPResp, c.op = op.req, op.resp, nil
	res, err := g.call(withCall(ctx, c), abi.ExportActivityResume, g.fnActResume, uint64(c.handle))
	if err != nil {
		return 0, err
	}
	return int32(res[0]), nil
}

// activityOutcome turns the status of the activity's last call into its
// result.
func (g *Instance) activityOutcome(c *actCall, item *host.ActivityItem, res int32) (bool, string, error) {
	switch res {
	case abi.StatusOK:
		if !c.done {
			return false, string(encodeJSON(&abi.FailureDetails{Type: abi.FailureGuestError, Message: "activity returned without reporting a result"})), nil
		}
		return c.status == abi.CompleteOK, c.payload, nil
	case abi.StatusUnknownFunction:
		return false, string(encodeJSON(&abi.FailureDetails{Type: abi.FailureUnknownActivity,
			Message: fmt.Sprintf("module %s registers no activity named %q", g.digest, item.Name)})), nil
	case abi.StatusParked:
		if c.async {
			// Parked with no asynchronous call outstanding: it could never
			// be resumed.
			g.mu.Lock()
			g.dropActivity(c.handle)
			g.mu.Unlock()
			return false, string(encodeJSON(&abi.FailureDetails{Type: abi.FailureGuestError,
				Message: fmt.Sprintf("the activity returned status %d (parked) without an outstanding asynchronous host call", res)})), nil
		}
	}
	return false, string(encodeJSON(&abi.FailureDetails{Type: abi.FailureGuestError,
		Message: fmt.Sprintf("%s returned status %d", abi.ExportActivityRun, res)})), nil
}

// dropActivity discards the activity parked under handle, with no call
// context (its host calls return abi.ErrNotInStep), unless g is dead. The
// caller holds g.mu.
func (g *Instance) dropActivity(handle uint32) {
	if !g.dead.Load() {
		_, _ = g.call(context.Background(), abi.ExportActivityDrop, g.fnActDrop, uint64(handle))
	}
}
