package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
	"github.com/durablewasm/durablewasm/host/sandbox"
)

// Client manages instances and modules. The CLI and the HTTP API are thin
// layers over it. It is safe for concurrent use.
type Client struct {
	store  Store
	engine *sandbox.Engine
	now    func() time.Time

	// fns caches FindFunction for FunctionCacheTTL, saving a round trip
	// per StartNew; this client's own deploys and removals clear it.
	fnMu sync.Mutex
	fns  map[string]cachedFunction
	// limits caches payload limits by module digest, like fns.
	limits map[string]cachedLimit
	// retry is how mutating operations are retried (idempotency.go).
	retry RetryPolicy
}

// FunctionCacheTTL is how long a Client remembers which app (and so which
// module digest) serves an orchestrator name. A deploy made by another
// process reaches this client's StartNew within it; a deploy made through
// this client does at once.
const FunctionCacheTTL = time.Second

type cachedFunction struct {
	app *host.AppRecord
	fn  host.FunctionInfo
	at  time.Time
}

// findFunction is Store.FindFunction through the client's cache.
func (c *Client) findFunction(ctx context.Context, name string) (*host.AppRecord, host.FunctionInfo, error) {
	now := c.now()
	c.fnMu.Lock()
	e, ok := c.fns[name]
	c.fnMu.Unlock()
	if ok && now.Sub(e.at) < FunctionCacheTTL {
		return e.app, e.fn, nil
	}
	app, fn, err := c.store.FindFunction(ctx, name)
	if err == nil {
		c.fnMu.Lock()
		if c.fns == nil || len(c.fns) > 10_000 {
			c.fns = map[string]cachedFunction{}
		}
		c.fns[name] = cachedFunction{app: app, fn: fn, at: now}
		c.fnMu.Unlock()
	}
	return app, fn, err
}

// forgetFunctions clears the FindFunction cache.
func (c *Client) forgetFunctions() {
	c.fnMu.Lock()
	c.fns = nil
	c.fnMu.Unlock()
}

// New returns a client over store. engine is needed only by Deploy and
// may be nil otherwise.
func New(store Store, engine *sandbox.Engine) *Client {
	return &Client{store: store, engine: engine, now: time.Now}
}

// Store returns the client's store.
func (c *Client) Store() Store { return c.store }

// StartOptions describe a new orchestration instance.
type StartOptions struct {
	// FunctionName is the orchestrator to run (required).
	FunctionName string
	// InstanceID is the id; empty means a random 32-hex-digit id.
	InstanceID string
	// Input is JSON text; empty means null.
	Input string
}

// StartNew creates an instance and queues its start. It returns the instance
// id. Errors: ErrInvalidInput (bad id, input that is not JSON, unknown or
// non-orchestrator function: the message lists the deployed orchestrators),
// ErrInstanceExists (an instance with that id is still running),
// ErrMaybeApplied, ErrIdempotencyKeyReused.
//
// It is applied at most once per idempotency key (WithIdempotencyKey; one is
// generated otherwise): a call with a key that already started the instance
// returns that instance (as it is now) instead of ErrInstanceExists. With a
// caller's key and no InstanceID the id is derived from the key (32 hex
// digits), so a retry targets the same instance.
func (c *Client) StartNew(ctx context.Context, o StartOptions) (*host.InstanceState, error) {
	return c.startNew(ctx, o, "start-new", "")
}

// startNew is StartNew recorded as operation op; scope distinguishes the
// ids derived from one key by different operations (Restart's source).
func (c *Client) startNew(ctx context.Context, o StartOptions, op, scope string) (*host.InstanceState, error) {
	if err := host.ValidateName("orchestrator function name", o.FunctionName); err != nil {
		return nil, fmt.Errorf("%w: %v", host.ErrInvalidInput, err)
	}
	k, err := idempotencyKey(ctx)
	if err != nil {
		return nil, err
	}
	if o.InstanceID == "" {
		o.InstanceID = k.derivedID(op, scope)
	} else if err := host.ValidateInstanceID(o.InstanceID); err != nil {
		return nil, fmt.Errorf("%w: %v", host.ErrInvalidInput, err)
	}
	if o.Input != "" && !json.Valid([]byte(o.Input)) {
		return nil, fmt.Errorf("%w: the input is not valid JSON (pass a JSON value, e.g. '\"text\"' or '{\"a\":1}', or @file.json)", host.ErrInvalidInput)
	}
	app, fn, err := c.findFunction(ctx, o.FunctionName)
	if err != nil && !errors.Is(err, host.ErrFunctionNotFound) {
		return nil, err
	}
	if err != nil || fn.Kind != abi.KindOrchestrator {
		names, lerr := c.Orchestrators(ctx)
		if lerr != nil {
			return nil, lerr
		}
		list := "none are deployed (deploy a module with `durablewasm deploy`)"
		if len(names) > 0 {
			list = "deployed orchestrators: " + strings.Join(names, ", ")
		}
		what := "no deployed module has an orchestrator"
		if err == nil {
			what = "the function is an activity, not an orchestrator:"
		}
		return nil, fmt.Errorf("%w: %s %q; %s", host.ErrInvalidInput, what, o.FunctionName, list)
	}
	if err := c.checkPayload(ctx, app.Digest, "the input", o.Input); err != nil {
		return nil, err
	}
	now := c.now().UTC()
	execID := host.NewInstanceID()
	st := host.InstanceState{InstanceID: o.InstanceID, Name: o.FunctionName, ExecutionID: execID, Status: abi.StatusPending,
		Input: o.Input, CreatedAt: now, UpdatedAt: now, App: app.Name, Digest: app.Digest}
	start := host.ControlMessage{InstanceID: o.InstanceID, ExecutionID: execID, Event: abi.HistoryEvent{EventID: -1,
		Type: abi.EventExecutionStarted, Timestamp: now.UnixNano(), Name: o.FunctionName, Input: o.Input,
		InstanceID: o.InstanceID, ExecutionID: execID},
		Fresh: &host.FreshInstance{App: st.App, Digest: st.Digest, CreatedAt: now}}
	r, err := c.applyOnce(ctx, "start "+o.InstanceID, k, op, fingerprint(op, o.InstanceID, o.FunctionName, o.Input), true,
		func(ctx context.Context, is host.IdempotentStore, idem host.Idempotency) (host.Replay, error) {
			return is.CreateInstanceOnce(ctx, st, start, idem)
		},
		func(ctx context.Context) error { return c.store.CreateInstance(ctx, st, start) })
	if err != nil {
		return nil, wrapOp("start "+o.InstanceID, err)
	}
	if r.Replayed {
		if cur, err := c.store.GetInstance(ctx, o.InstanceID); err == nil && cur.ExecutionID == r.ExecutionID {
			return cur, nil
		}
		st.ExecutionID = r.ExecutionID
	}
	return &st, nil
}

// wrapOp prefixes err with what, except a *MaybeAppliedError, which names
// the operation already.
func wrapOp(what string, err error) error {
	var mae *MaybeAppliedError
	if errors.As(err, &mae) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Orchestrators returns the names of all deployed orchestrators, sorted.
func (c *Client) Orchestrators(ctx context.Context) ([]string, error) {
	apps, err := c.store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, a := range apps {
		for _, f := range a.Functions {
			if f.Kind == abi.KindOrchestrator {
				names = append(names, f.Name)
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

// GetStatus returns an instance's state or ErrInstanceNotFound.
func (c *Client) GetStatus(ctx context.Context, instanceID string) (*host.InstanceState, error) {
	st, err := c.store.GetInstance(ctx, instanceID)
	if err != nil {
		return nil, fmt.Errorf("get status of %s: %w", instanceID, err)
	}
	return st, nil
}

// GetHistory returns an instance's current-generation history.
func (c *Client) GetHistory(ctx context.Context, instanceID string) ([]abi.HistoryEvent, error) {
	h, err := c.store.GetHistory(ctx, instanceID)
	if err != nil {
		return nil, fmt.Errorf("get history of %s: %w", instanceID, err)
	}
	return h, nil
}

// RaiseEvent delivers an external event to a Pending, Running or Suspended
// instance; it is kept until the orchestration waits for that name. data is
// JSON text ("" means null). Errors: ErrInstanceNotFound,
// ErrInstanceFinished, ErrInvalidInput, ErrMaybeApplied,
// ErrIdempotencyKeyReused. Like every mutating operation it is applied at
// most once per idempotency key (WithIdempotencyKey).
func (c *Client) RaiseEvent(ctx context.Context, instanceID, name, data string) error {
	if err := host.ValidateName("event name", name); err != nil {
		return fmt.Errorf("%w: %v", host.ErrInvalidInput, err)
	}
	if data != "" && !json.Valid([]byte(data)) {
		return fmt.Errorf("%w: the event data is not valid JSON", host.ErrInvalidInput)
	}
	if len(data) > MinPayloadLimit {
		if err := host.ValidateInstanceID(instanceID); err != nil {
			return fmt.Errorf("%w: %v", host.ErrInvalidInput, err)
		}
		st, err := c.GetStatus(ctx, instanceID)
		if err != nil {
			return fmt.Errorf("raise event %s: %w", name, err)
		}
		if err := c.checkPayload(ctx, st.Digest, "the event data", data); err != nil {
			return err
		}
	}
	return c.send(ctx, instanceID, abi.HistoryEvent{Type: abi.EventEventRaised, Name: name, Input: data}, "raise event "+name+" on")
}

// Terminate ends a running instance with reason: at once if it is waiting,
// else at its next await. With recursive, its running sub-orchestrations are
// terminated too (and theirs). Errors: ErrInstanceNotFound,
// ErrInstanceFinished, ErrMaybeApplied, ErrIdempotencyKeyReused; applied at
// most once per idempotency key (WithIdempotencyKey).
func (c *Client) Terminate(ctx context.Context, instanceID, reason string, recursive bool) error {
	return c.send(ctx, instanceID, abi.HistoryEvent{Type: abi.EventExecutionTerminated, Reason: reason, NoCascade: !recursive}, "terminate")
}

// Rewind puts a Failed instance back to Running. It re-runs only what
// failed (activities, sub-orchestrations, which are rewound in turn) and
// keeps every successful result; durable timers are kept too. Errors:
// ErrInstanceNotFound, ErrNotFailed, ErrMaybeApplied,
// ErrIdempotencyKeyReused; applied at most once per idempotency key
// (WithIdempotencyKey).
func (c *Client) Rewind(ctx context.Context, instanceID, reason string) error {
	if err := validateTarget(instanceID, reason); err != nil {
		return err
	}
	k, err := idempotencyKey(ctx)
	if err != nil {
		return err
	}
	msg := host.ControlMessage{InstanceID: instanceID, Event: abi.HistoryEvent{EventID: -1, Type: abi.EventExecutionRewound,
		Timestamp: c.now().UnixNano(), Reason: reason}}
	what := "rewind " + instanceID
	_, err = c.applyOnce(ctx, what, k, "rewind", fingerprint("rewind", instanceID, reason), false,
		func(ctx context.Context, is host.IdempotentStore, idem host.Idempotency) (host.Replay, error) {
			return is.RewindInstanceOnce(ctx, msg, idem)
		},
		func(ctx context.Context) error { return c.store.RewindInstance(ctx, msg) })
	if err != nil {
		return wrapOp(what, err)
	}
	return nil
}

// Restart starts the orchestrator of an existing instance again with the
// same input: under a new random id when newID, else under the same id
// (which must have finished: ErrInstanceExists otherwise). It returns the
// new instance. Errors: ErrInstanceNotFound, ErrMaybeApplied,
// ErrIdempotencyKeyReused. It is applied at most once per idempotency key
// (WithIdempotencyKey); with a caller's key and newID, the new id is derived
// from the key and instanceID, so a retry restarts into the same instance.
func (c *Client) Restart(ctx context.Context, instanceID string, newID bool) (*host.InstanceState, error) {
	st, err := c.GetStatus(ctx, instanceID)
	if err != nil {
		return nil, err
	}
	id := instanceID
	if newID {
		id = ""
	}
	return c.startNew(ctx, StartOptions{FunctionName: st.Name, InstanceID: id, Input: st.Input}, "restart", instanceID)
}

// QueryInstances returns one page of the instances matching q, ordered by
// created time then id; pass the returned token to get the next page.
func (c *Client) QueryInstances(ctx context.Context, q host.InstanceQuery) (*host.InstancePage, error) {
	page, err := c.store.QueryInstances(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("query instances: %w", err)
	}
	return page, nil
}

// PurgeInstance removes an instance and everything it owns. Without force
// only a finished instance is purged (ErrNotFinished otherwise). It is
// applied at most once per idempotency key (WithIdempotencyKey): a retry
// with the key of a purge that succeeded succeeds too, instead of reporting
// ErrInstanceNotFound. Errors: ErrInstanceNotFound, ErrNotFinished,
// ErrMaybeApplied, ErrIdempotencyKeyReused.
func (c *Client) PurgeInstance(ctx context.Context, instanceID string, force bool) error {
	k, err := idempotencyKey(ctx)
	if err != nil {
		return err
	}
	what := "purge " + instanceID
	_, err = c.applyOnce(ctx, what, k, "purge", fingerprint("purge", instanceID, strconv.FormatBool(force)), false,
		func(ctx context.Context, is host.IdempotentStore, idem host.Idempotency) (host.Replay, error) {
			return is.PurgeInstanceOnce(ctx, instanceID, force, idem)
		},
		func(ctx context.Context) error { return c.store.PurgeInstance(ctx, instanceID, force) })
	if err != nil {
		return wrapOp(what, err)
	}
	return nil
}

// PurgeInstances removes the instances matching q (finished ones only
// unless force), in batches, reporting progress after each; it can be run
// again to continue after an interruption.
func (c *Client) PurgeInstances(ctx context.Context, q host.InstanceQuery, force bool, progress func(host.PurgeResult)) (host.PurgeResult, error) {
	res, err := c.store.PurgeInstances(ctx, q, force, 0, progress)
	if err != nil {
		return res, fmt.Errorf("purge instances: %w", err)
	}
	return res, nil
}

// DeleteTaskHub removes every key of the task hub: instances, histories,
// queues, timers, modules. It returns the number of keys removed.
func (c *Client) DeleteTaskHub(ctx context.Context) (int64, error) {
	n, err := c.store.DeleteHub(ctx)
	if err != nil {
		return n, fmt.Errorf("delete task hub: %w", err)
	}
	return n, nil
}

// Suspend pauses an instance: events are kept but the orchestration does not
// run until Resume. Applied at most once per idempotency key
// (WithIdempotencyKey), like Resume.
func (c *Client) Suspend(ctx context.Context, instanceID, reason string) error {
	return c.send(ctx, instanceID, abi.HistoryEvent{Type: abi.EventExecutionSuspended, Reason: reason}, "suspend")
}

// Resume continues a suspended instance.
func (c *Client) Resume(ctx context.Context, instanceID, reason string) error {
	return c.send(ctx, instanceID, abi.HistoryEvent{Type: abi.EventExecutionResumed, Reason: reason}, "resume")
}

func (c *Client) send(ctx context.Context, instanceID string, ev abi.HistoryEvent, what string) error {
	if err := validateTarget(instanceID, ev.Reason); err != nil {
		return err
	}
	k, err := idempotencyKey(ctx)
	if err != nil {
		return err
	}
	ev.EventID = -1
	ev.Timestamp = c.now().UnixNano()
	msg := host.ControlMessage{InstanceID: instanceID, Event: ev}
	op := sendOperation(ev)
	fp := fingerprint(op, instanceID, ev.Name, ev.Input, ev.Reason, strconv.FormatBool(ev.NoCascade))
	what += " " + instanceID
	_, err = c.applyOnce(ctx, what, k, op, fp, false,
		func(ctx context.Context, is host.IdempotentStore, idem host.Idempotency) (host.Replay, error) {
			return is.SendToInstanceOnce(ctx, msg, idem)
		},
		func(ctx context.Context) error { return c.store.SendToInstance(ctx, msg) })
	if err != nil {
		return wrapOp(what, err)
	}
	return nil
}

// sendOperation names the operation that sends ev, for idempotency records.
func sendOperation(ev abi.HistoryEvent) string {
	switch ev.Type {
	case abi.EventEventRaised:
		return "raise-event"
	case abi.EventExecutionTerminated:
		return "terminate"
	case abi.EventExecutionSuspended:
		return "suspend"
	case abi.EventExecutionResumed:
		return "resume"
	}
	return "send-" + string(ev.Type)
}

// WaitForCompletion waits until an instance is terminal or ctx ends; it
// returns the last state seen and ctx's error on timeout. It reads the state
// when the store announces that the instance finished (WatchFinished: within
// a round trip of the completing commit) and, in any case, every interval
// (default 100 ms).
func (c *Client) WaitForCompletion(ctx context.Context, instanceID string, interval time.Duration) (*host.InstanceState, error) {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	finished, release := c.WatchFinished(ctx, instanceID)
	defer release()
	for {
		st, err := c.GetStatus(ctx, instanceID)
		if err != nil {
			return nil, err
		}
		if st.Status.Terminal() {
			return st, nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return st, ctx.Err()
		case <-finished:
			t.Stop()
		case <-t.C:
		}
	}
}

// WatchFinished returns a channel that receives a value when instanceID may
// have reached a terminal status, when the store can announce it
// (FinishNotifier; redisstore can): the caller then reads the status. It is
// best effort — keep polling too, more slowly. The channel is nil (never
// ready) when the store cannot notify. Call release when done.
func (c *Client) WatchFinished(ctx context.Context, instanceID string) (finished <-chan struct{}, release func()) {
	if n, ok := c.store.(host.FinishNotifier); ok {
		ch, rel, err := n.NotifyFinished(ctx, instanceID)
		if err == nil {
			return ch, rel
		}
	}
	return nil, func() {}
}

// Deploy validates a module (ABI version, imports, exports, registered
// functions), stores it content-addressed and points app at it. Running
// workers use it for new instances without restart; running instances keep
// the digest they started on. The module gets default settings.
func (c *Client) Deploy(ctx context.Context, app string, wasm []byte) (*sandbox.ModuleInfo, error) {
	return c.DeployWithSettings(ctx, app, wasm, host.AppSettings{})
}

// DeployWithSettings is Deploy with the module's limits and activity
// capabilities (pinned to its digest: deploying the same bytes again with
// other settings replaces them).
func (c *Client) DeployWithSettings(ctx context.Context, app string, wasm []byte, settings host.AppSettings) (*sandbox.ModuleInfo, error) {
	if c.engine == nil {
		return nil, errors.New("deploy: client has no engine")
	}
	if err := validateAppName(app); err != nil {
		return nil, err
	}
	if err := validateSettings(&settings); err != nil {
		return nil, fmt.Errorf("deploy %s: %w", app, err)
	}
	info, err := c.engine.Inspect(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", app, err)
	}
	if settings.MemoryLimitBytes > 0 && info.MinMemoryBytes > settings.MemoryLimitBytes {
		return nil, fmt.Errorf("deploy %s: %w: the module declares an initial memory of %d MiB, over its memory limit of %d MiB",
			app, sandbox.ErrInvalidModule, info.MinMemoryBytes>>20, settings.MemoryLimitBytes>>20)
	}
	// Settings first: a module is never visible without its settings.
	if err := c.store.PutModuleSettings(ctx, info.Digest, settings); err != nil {
		return nil, fmt.Errorf("deploy %s: %w", app, err)
	}
	defer c.forgetFunctions()
	if err := c.store.PutModule(ctx, app, info.Digest, wasm, info.Functions); err != nil {
		return nil, fmt.Errorf("deploy %s: %w", app, err)
	}
	return info, nil
}

// validateSettings refuses settings that cannot work, naming the field.
func validateSettings(s *host.AppSettings) error {
	switch {
	case s.StepTimeout < 0 || s.ActivityTimeout < 0 || s.HTTPTimeout < 0:
		return fmt.Errorf("%w: timeouts must not be negative", host.ErrInvalidInput)
	case s.StepTimeout > 0 && s.StepTimeout < 10*time.Millisecond:
		return fmt.Errorf("%w: a step timeout of %s is too short (at least 10ms)", host.ErrInvalidInput, s.StepTimeout)
	case s.MemoryLimitBytes > 0 && s.MemoryLimitBytes < 4<<20:
		return fmt.Errorf("%w: a memory limit of %d bytes is too small (at least 4 MiB; a Go guest needs about 4 MiB)", host.ErrInvalidInput, s.MemoryLimitBytes)
	case s.MaxPayloadBytes < 0 || s.MaxHistoryEvents < 0:
		return fmt.Errorf("%w: limits must not be negative", host.ErrInvalidInput)
	case s.MaxPayloadBytes > 0 && s.MaxPayloadBytes < MinPayloadLimit:
		return fmt.Errorf("%w: a payload limit of %d bytes is too small (at least %d bytes)", host.ErrInvalidInput, s.MaxPayloadBytes, MinPayloadLimit)
	}
	for _, h := range s.HTTPAllow {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return fmt.Errorf("%w: HTTP allowlist entry %q: use a host name, host:port or *.domain", host.ErrInvalidInput, h)
		}
	}
	return nil
}

func validateAppName(app string) error {
	if app == "" || len(app) > 64 {
		return fmt.Errorf("%w: app name %q must be 1–64 characters", host.ErrInvalidInput, app)
	}
	for _, r := range app {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%w: app name %q contains %q; use letters, digits, '-', '_' and '.'", host.ErrInvalidInput, app, r)
		}
	}
	return nil
}

// MinPayloadLimit is the smallest payload limit a module can be deployed
// with. A payload of at most this many bytes is under every module's limit,
// so clients check larger ones only.
const MinPayloadLimit = 4 << 10

// checkPayload refuses payload with ErrPayloadTooLarge when it is over the
// payload limit of the module with digest.
func (c *Client) checkPayload(ctx context.Context, digest, what, payload string) error {
	if len(payload) <= MinPayloadLimit {
		return nil
	}
	limit := c.payloadLimit(ctx, digest)
	if len(payload) > limit {
		return fmt.Errorf("%w: %s is %d bytes, over the payload limit of %d bytes of the module it is for (deploy it with a larger --max-payload, or pass a reference to the data instead)",
			host.ErrPayloadTooLarge, what, len(payload), limit)
	}
	return nil
}

// payloadLimit returns the payload limit of the module with digest, cached
// for FunctionCacheTTL; the default when its settings cannot be read.
func (c *Client) payloadLimit(ctx context.Context, digest string) int {
	now := c.now()
	c.fnMu.Lock()
	e, ok := c.limits[digest]
	c.fnMu.Unlock()
	if ok && now.Sub(e.at) < FunctionCacheTTL {
		return e.limit
	}
	limit := replay.Limits{}.WithDefaults().MaxPayloadBytes
	if st, err := c.store.GetModuleSettings(ctx, digest); err == nil && st.MaxPayloadBytes > 0 {
		limit = st.MaxPayloadBytes
	}
	c.fnMu.Lock()
	if c.limits == nil || len(c.limits) > 1000 {
		c.limits = map[string]cachedLimit{}
	}
	c.limits[digest] = cachedLimit{limit: limit, at: now}
	c.fnMu.Unlock()
	return limit
}

type cachedLimit struct {
	limit int
	at    time.Time
}

// validateTarget checks the instance id and reason of an operation on an
// existing instance.
func validateTarget(instanceID, reason string) error {
	if err := host.ValidateInstanceID(instanceID); err != nil {
		return fmt.Errorf("%w: %v", host.ErrInvalidInput, err)
	}
	if err := host.ValidateReason(reason); err != nil {
		return fmt.Errorf("%w: %v", host.ErrInvalidInput, err)
	}
	return nil
}
