package durable

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"runtime/debug"

	"github.com/durablewasm/durablewasm/abi"
)

// ActivityContext is passed to an activity.
type ActivityContext struct {
	rt     *rt
	handle int32
	req    abi.ActivityRequest
	// park suspends the activity's coroutine until the host resumes it
	// (abi.StatusParked); it returns false when the host dropped it.
	park func() bool
	// dropped: the host dropped the parked activity; it makes no more
	// host calls.
	dropped bool
}

// InstanceID returns the id of the orchestration that scheduled the activity.
func (c *ActivityContext) InstanceID() string { return c.req.InstanceID }

// Name returns the activity's registered name.
func (c *ActivityContext) Name() string { return c.req.Name }

// TaskID returns the id of the activity's TaskScheduled event in the
// orchestration's history. With InstanceID it identifies the call; an
// activity may run more than once for one call (at-least-once delivery), so
// use it as an idempotency key.
func (c *ActivityContext) TaskID() int32 { return c.req.TaskID }

// GetInput decodes the activity's JSON input into v. A missing input decodes
// as null, which leaves v unchanged.
func (c *ActivityContext) GetInput(v any) error {
	if len(c.req.Input) == 0 {
		return nil
	}
	if err := decodeJSON(c.req.Input, v); err != nil {
		return fmt.Errorf("decode input of activity %s: %w", c.req.Name, err)
	}
	return nil
}

// ManagementURLs are an instance's HTTP management endpoints, as Durable
// Functions' CreateHttpManagementPayload returns them, for handing to an
// external system (which can then query, raise events on, terminate, rewind,
// purge, restart, suspend or resume the instance).
type ManagementURLs = abi.ManagementPayload

// ManagementURLs returns the HTTP management URLs of instanceID ("" means
// the orchestration that scheduled this activity). It fails when the host
// serves no HTTP API.
func (c *ActivityContext) ManagementURLs(instanceID string) (*ManagementURLs, error) {
	buf := make([]byte, 2048)
	for {
		n := c.rt.host.ManagementURLs(c.handle, instanceID, buf)
		switch {
		case n == abi.ErrUnavailable:
			return nil, fmt.Errorf("management URLs of %q: the host serves no HTTP API (start it with an HTTP listener)", instanceID)
		case n < 0:
			return nil, &HostError{Func: abi.ImportManagementURLs, Code: n}
		case n > int64(len(buf)):
			buf = make([]byte, n)
			continue
		}
		var m ManagementURLs
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			return nil, fmt.Errorf("management URLs of %q: %w", instanceID, err)
		}
		return &m, nil
	}
}

// Config returns the configuration value of key, set when the module was
// deployed (durablewasm deploy --config key=value), and whether it exists.
func (c *ActivityContext) Config(key string) (string, bool) {
	buf := make([]byte, 256)
	for {
		n := c.rt.host.GetConfig(c.handle, key, buf)
		switch {
		case n < 0:
			return "", false
		case n > int64(len(buf)):
			buf = make([]byte, n)
			continue
		}
		return string(buf[:n]), true
	}
}

// HTTPRequest is an outbound HTTP request made by an activity.
type HTTPRequest = abi.HTTPRequest

// HTTPResponse is the response to an HTTPRequest.
type HTTPResponse struct {
	Status int
	Header map[string]string
	Body   []byte
}

// HTTP performs an outbound HTTP request. The host makes it only when the
// URL's host is in the module's allowlist (durablewasm deploy --allow-http
// HOST), with the module's timeout and response-size limit; a refusal or a
// network failure is the returned error. Non-2xx statuses are not errors.
func (c *ActivityContext) HTTP(req HTTPRequest) (*HTTPResponse, error) {
	raw, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("http %s %s: %w", req.Method, req.URL, err)
	}
	buf := make([]byte, 4096)
	for {
		if c.dropped {
			panic(errActivityDropped)
		}
		n := c.rt.host.HTTPRequest(c.handle, raw, buf)
		switch {
		case n == abi.ErrPending:
			// The host makes the request while this activity is parked
			// and other activities run; the same call then returns the
			// response.
			if c.park == nil || !c.park() {
				c.dropped = true
				panic(errActivityDropped)
			}
			continue
		case n < 0:
			return nil, &HostError{Func: abi.ImportHTTPRequest, Code: n}
		case n > int64(len(buf)):
			buf = make([]byte, n)
			continue
		}
		var r abi.HTTPResponse
		if err := json.Unmarshal(buf[:n], &r); err != nil {
			return nil, fmt.Errorf("http %s %s: malformed host response: %w", req.Method, req.URL, err)
		}
		if r.Error != "" {
			return nil, fmt.Errorf("http %s %s: %s", req.Method, req.URL, r.Error)
		}
		return &HTTPResponse{Status: r.Status, Header: r.Header, Body: r.Body}, nil
	}
}

// HTTPGet is HTTP with a GET of url.
func (c *ActivityContext) HTTPGet(url string) (*HTTPResponse, error) {
	return c.HTTP(HTTPRequest{Method: "GET", URL: url})
}

// Logger returns a logger whose messages go to the host's log under this
// activity.
func (c *ActivityContext) Logger() *Logger {
	return &Logger{emit: func(level int32, msg string) { c.rt.host.Log(c.handle, level, msg) }}
}

// RunActivity implements abi.ExportActivityRun: it runs the activity in a
// runner coroutine (so a panic or runtime.Goexit cannot take the export
// down) until it finishes — then it reports the outcome with complete and
// returns StatusOK — or parks on an asynchronous host call: then it returns
// StatusParked, and ResumeActivity continues it.
func (r *rt) RunActivity(handle int32, req []byte) int32 {
	ar, err := abi.DecodeActivityRequest(req)
	if err != nil {
		return abi.StatusBadRequest
	}
	ar.Input = bytes.Clone(ar.Input)
	fn, _ := r.act(ar.Name).(func(*ActivityContext) (any, error))
	if fn == nil {
		return abi.StatusUnknownFunction
	}
	if _, busy := r.actParked[handle]; busy {
		return abi.StatusBadRequest
	}
	c := &ActivityContext{rt: r, handle: handle, req: ar}
	var run *actRunner
	if n := len(r.actIdle); n > 0 {
		run, r.actIdle = r.actIdle[n-1], r.actIdle[:n-1]
	} else {
		run = newActRunner()
	}
	run.job = activityJob{c: c, fn: fn}
	return r.switchActivity(handle, run)
}

// ResumeActivity implements abi.ExportActivityResume: the activity parked
// under handle repeats the host call it parked on and goes on until it
// finishes or parks again.
func (r *rt) ResumeActivity(handle int32) int32 {
	run := r.actParked[handle]
	if run == nil {
		return abi.StatusUnknownHandle
	}
	delete(r.actParked, handle)
	return r.switchActivity(handle, run)
}

// DropActivity implements abi.ExportActivityDrop: the activity parked under
// handle is unwound (its parked call panics with errActivityDropped, which
// runs its deferred functions) without calling the host for it.
func (r *rt) DropActivity(handle int32) int32 {
	run := r.actParked[handle]
	if run == nil {
		return abi.StatusOK
	}
	delete(r.actParked, handle)
	run.job.c.dropped = true
	run.stop()
	return abi.StatusOK
}

// switchActivity runs run's activity until it finishes or parks, and
// answers the export for handle.
func (r *rt) switchActivity(handle int32, run *actRunner) int32 {
	o, ok := run.next()
	if ok && o.parked {
		r.actParked[handle] = run
		return abi.StatusParked
	}
	run.job = activityJob{}
	if ok && !o.goexit && len(r.actIdle) < maxIdleRunners {
		r.actIdle = append(r.actIdle, run)
	}
	r.host.Complete(handle, o.status, o.payload)
	return abi.StatusOK
}

// activityOutcome is what an activity run hands back to the export.
type activityOutcome struct {
	status  int32
	payload []byte
	// parked: the activity waits for an asynchronous host call; the
	// coroutine is resumed when its result is ready.
	parked bool
	// goexit: the runner coroutine is suspended inside runtime.Goexit and
	// must be neither resumed nor stopped (iter.Pull would re-raise Goexit
	// in the export); a new runner takes over.
	goexit bool
}

// activityJob is the activity a runner coroutine runs next.
type activityJob struct {
	c  *ActivityContext
	fn func(*ActivityContext) (any, error)
}

// actRunner is a long-lived coroutine that runs one activity per job: a
// switch into it costs far less than a goroutine hand-off or a new
// coroutine, and a panic or runtime.Goexit in an activity stays in it. An
// activity that parks keeps its runner until it finishes.
type actRunner struct {
	next func() (activityOutcome, bool)
	stop func()
	job  activityJob
}

// newActRunner starts a runner; its first next runs run.job.
func newActRunner() *actRunner {
	run := &actRunner{}
	run.next, run.stop = iter.Pull(func(yield func(activityOutcome) bool) {
		for {
			j := run.job
			j.c.park = func() bool { return yield(activityOutcome{parked: true}) }
			if !yield(runActivityJob(j, yield)) {
				return
			}
		}
	})
	return run
}

// errActivityDropped unwinds a parked activity that the host dropped.
var errActivityDropped = errors.New("durable: the host dropped this activity (its deadline passed or the worker is shutting down)")

// runActivityJob runs one activity. On runtime.Goexit it hands the outcome
// back through yield from its deferred function, stranding the coroutine.
func runActivityJob(j activityJob, yield func(activityOutcome) bool) (o activityOutcome) {
	returned := false
	defer func() {
		rec := recover()
		switch {
		case rec == errActivityDropped || j.c.dropped:
			// Dropped while parked: nothing is reported.
		case rec != nil:
			o = activityOutcome{status: abi.CompleteFailed, payload: failureJSON(&abi.FailureDetails{
				Type: "Panic", Message: fmt.Sprintf("panic: %v", rec), Stack: string(debug.Stack()),
			})}
		case !returned:
			yield(activityOutcome{status: abi.CompleteFailed, goexit: true, payload: failureJSON(&abi.FailureDetails{
				Type: "ActivityError", Message: "activity exited without returning (runtime.Goexit?)",
			})})
		}
	}()
	out, err := j.fn(j.c)
	returned = true
	if err != nil {
		return activityOutcome{status: abi.CompleteFailed, payload: failureJSON(errorFailure("ActivityError", err))}
	}
	b, err := encodeJSON(out)
	if err != nil {
		return activityOutcome{status: abi.CompleteFailed, payload: failureJSON(&abi.FailureDetails{
			Type: "ActivityError", Message: fmt.Sprintf("encode activity result: %v", err),
		})}
	}
	return activityOutcome{status: abi.CompleteOK, payload: b}
}
