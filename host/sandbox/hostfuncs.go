package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/durablewasm/durablewasm/host"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/replay"
)

// The host functions follow abi.Import* exactly; see abi/README.md for the
// memory layout of each. They never return Go errors: a bad pointer yields
// abi.ErrBadArgument, a call from the wrong kind of guest call yields
// abi.ErrNotInStep.

type callKey struct{}

// listCall collects registrations during ExportListFunctions.
type listCall struct {
	fns      []host.FunctionInfo
	problems []string
}

// orchCall marks a call into an orchestration instance.
type orchCall struct{ inst *Instance }

// actCall marks a call into an activity instance.
type actCall struct {
	handle     uint32
	instanceID string
	done       bool
	status     int32
	payload    string
	logger     func() *slog.Logger
	// management returns an instance's management payload JSON; nil when
	// the host serves no HTTP API.
	management func(instanceID string) ([]byte, error)
	// settings are the module's capabilities; maxPayload bounds HTTP
	// response bodies.
	settings   *host.AppSettings
	maxPayload int
	// lastHTTPReq/lastHTTPResp cache the last HTTP exchange for the buffer
	// protocol's second call.
	lastHTTPReq  []byte
	lastHTTPResp []byte
	// deadline is when the activity's run must end; blocking host calls
	// (HTTP) end with it.
	deadline time.Time
	// async: the module takes asynchronous activities (see
	// activities.go); op is the outstanding asynchronous call, and ctx,
	// which outlives the guest calls, is what its I/O runs under.
	async bool
	op    *asyncOp
	ctx   context.Context
}

func withCall(ctx context.Context, c any) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

var i32 = api.ValueTypeI32
var i64 = api.ValueTypeI64

type hostFunc struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      api.GoModuleFunc
}

var hostFunctionNames = map[string]bool{}

func init() {
	for _, f := range hostFunctions() {
		hostFunctionNames[f.name] = true
	}
}

func read(m api.Module, ptr, n uint64) (string, bool) {
	if n == 0 {
		return "", true
	}
	b, ok := m.Memory().Read(uint32(ptr), uint32(n))
	if !ok {
		return "", false
	}
	return string(b), true
}

// orchState returns the state for the handle in stack[0] if it is the
// orchestration being started or resumed, else nil: a guest cannot act on
// another orchestration's behalf.
func orchState(ctx context.Context, stack []uint64) *replay.State {
	c, ok := ctx.Value(callKey{}).(*orchCall)
	if !ok || uint32(stack[0]) != c.inst.current {
		return nil
	}
	return c.inst.handles[c.inst.current]
}

func ret32(stack []uint64, v int32) { stack[0] = api.EncodeI32(v) }

func hostFunctions() []hostFunc {
	return []hostFunc{
		{abi.ImportRegister, []api.ValueType{i32, i32, i32}, nil, func(ctx context.Context, m api.Module, stack []uint64) {
			c, ok := ctx.Value(callKey{}).(*listCall)
			if !ok {
				return
			}
			name, ok := read(m, stack[1], stack[2])
			kind := int(int32(stack[0]))
			switch {
			case !ok || name == "":
				c.problems = append(c.problems, "registers a function with an empty or unreadable name")
			case kind != abi.KindOrchestrator && kind != abi.KindActivity:
				c.problems = append(c.problems, fmt.Sprintf("registers %q with kind %d (accepted: %d orchestrator, %d activity)", name, kind, abi.KindOrchestrator, abi.KindActivity))
			default:
				c.fns = append(c.fns, host.FunctionInfo{Name: name, Kind: kind})
			}
		}},
		{abi.ImportScheduleActivity, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, stack []uint64) {
			s := orchState(ctx, stack)
			name, ok1 := read(m, stack[1], stack[2])
			input, ok2 := read(m, stack[3], stack[4])
			switch {
			case s == nil:
				ret32(stack, abi.ErrNotInStep)
			case !ok1 || !ok2 || badName(name):
				ret32(stack, abi.ErrBadArgument)
			default:
				ret32(stack, s.ScheduleActivity(name, input))
			}
		}},
		{abi.ImportScheduleSubOrchestrator, []api.ValueType{i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, stack []uint64) {
			s := orchState(ctx, stack)
			name, ok1 := read(m, stack[1], stack[2])
			id, ok2 := read(m, stack[3], stack[4])
			input, ok3 := read(m, stack[5], stack[6])
			switch {
			case s == nil:
				ret32(stack, abi.ErrNotInStep)
			case !ok1 || !ok2 || !ok3 || badName(name):
				ret32(stack, abi.ErrBadArgument)
			case id != "" && host.ValidateInstanceID(id) != nil:
				ret32(stack, abi.ErrBadArgument)
			default:
				ret32(stack, s.ScheduleSubOrchestration(name, id, input))
			}
		}},
		{abi.ImportCreateTimer, []api.ValueType{i32, i64}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, stack []uint64) {
			s := orchState(ctx, stack)
			if s == nil {
				ret32(stack, abi.ErrNotInStep)
				return
			}
			ret32(stack, s.CreateTimer(int64(stack[1])))
		}},
		{abi.ImportWaitEvent, []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, stack []uint64) {
			s := orchState(ctx, stack)
			name, ok := read(m, stack[1], stack[2])
			switch {
			case s == nil:
				ret32(stack, abi.ErrNotInStep)
			case !ok || badName(name):
				ret32(stack, abi.ErrBadArgument)
			default:
				ret32(stack, s.WaitEvent(name))
			}
		}},
		{abi.ImportCancelTask, []api.ValueType{i32, i32}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, stack []uint64) {
			s := orchState(ctx, stack)
			if s == nil {
				ret32(stack, abi.ErrNotInStep)
				return
			}
			ret32(stack, s.CancelTask(int32(stack[1])))
		}},
		{abi.ImportSendEvent, []api.ValueType{i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, stack []uint64) {
			s := orchState(ctx, stack)
			id, ok1 := read(m, stack[1], stack[2])
			name, ok2 := read(m, stack[3], stack[4])
			data, ok3 := read(m, stack[5], stack[6])
			switch {
			case s == nil:
				ret32(stack, abi.ErrNotInStep)
			case !ok1 || !ok2 || !ok3 || host.ValidateInstanceID(id) != nil || badName(name):
				ret32(stack, abi.ErrBadArgument)
			default:
				ret32(stack, s.SendEvent(id, name, data))
			}
		}},
		{abi.ImportPoll, []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, stack []uint64) {
			s := orchState(ctx, stack)
			if s == nil {
				ret32(stack, abi.ErrNotInStep)
				return
			}
			n := uint32(stack[2])
			b, ok := m.Memory().Read(uint32(stack[1]), n*4)
			if !ok || n > 1<<20 {
				ret32(stack, abi.ErrBadArgument)
				return
			}
			var small [16]int32
			ids := small[:0]
			for i := uint32(0); i < n; i++ {
				ids = append(ids, int32(uint32(b[i*4])|uint32(b[i*4+1])<<8|uint32(b[i*4+2])<<16|uint32(b[i*4+3])<<24))
			}
			ret32(stack, s.Poll(ids))
		}},
		{abi.ImportTaskResult, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i64}, func(ctx context.Context, m api.Module, stack []uint64) {
			s := orchState(ctx, stack)
			if s == nil {
				stack[0] = api.EncodeI64(abi.ErrNotInStep)
				return
			}
			kind, payload := s.TaskResult(int32(stack[1]))
			if kind < 0 {
				stack[0] = api.EncodeI64(int64(kind))
				return
			}
			if uint64(len(payload)) <= uint64(uint32(stack[3])) && len(payload) > 0 {
				if !m.Memory().WriteString(uint32(stack[2]), payload) {
					stack[0] = api.EncodeI64(abi.ErrBadArgument)
					return
				}
			}
			stack[0] = uint64(kind)<<32 | uint64(len(payload))
		}},
		{abi.ImportNow, []api.ValueType{i32}, []api.ValueType{i64}, func(ctx context.Context, m api.Module, stack []uint64) {
			if s := orchState(ctx, stack); s != nil {
				stack[0] = uint64(s.Now())
				return
			}
			stack[0] = uint64(nowNanos())
		}},
		{abi.ImportNewGUID, []api.ValueType{i32, i32}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, stack []uint64) {
			s := orchState(ctx, stack)
			var g string
			if s != nil {
				g = s.NewGUID()
			} else if _, ok := ctx.Value(callKey{}).(*actCall); ok {
				g = randomGUID()
			} else {
				ret32(stack, abi.ErrNotInStep)
				return
			}
			if !m.Memory().WriteString(uint32(stack[1]), g) {
				ret32(stack, abi.ErrBadArgument)
				return
			}
			ret32(stack, int32(len(g)))
		}},
		{abi.ImportIsReplaying, []api.ValueType{i32}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, stack []uint64) {
			s := orchState(ctx, stack)
			if s != nil && s.IsReplaying() {
				ret32(stack, 1)
				return
			}
			ret32(stack, 0)
		}},
		{abi.ImportSetCustomStatus, []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, stack []uint64) {
			s := orchState(ctx, stack)
			v, ok := read(m, stack[1], stack[2])
			switch {
			case s == nil:
				ret32(stack, abi.ErrNotInStep)
			case !ok:
				ret32(stack, abi.ErrBadArgument)
			default:
				ret32(stack, s.SetCustomStatus(v))
			}
		}},
		{abi.ImportContinueAsNew, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, stack []uint64) {
			s := orchState(ctx, stack)
			v, ok := read(m, stack[1], stack[2])
			switch {
			case s == nil:
				ret32(stack, abi.ErrNotInStep)
			case !ok:
				ret32(stack, abi.ErrBadArgument)
			default:
				ret32(stack, s.ContinueAsNew(v, stack[3] != 0))
			}
		}},
		{abi.ImportComplete, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, func(ctx context.Context, m api.Module, stack []uint64) {
			v, ok := read(m, stack[2], stack[3])
			if !ok {
				ret32(stack, abi.ErrBadArgument)
				return
			}
			status := int32(stack[1])
			switch c := ctx.Value(callKey{}).(type) {
			case *orchCall:
				s := orchState(ctx, stack)
				if s == nil {
					ret32(stack, abi.ErrNotInStep)
					return
				}
				ret32(stack, s.Complete(status, v))
			case *actCall:
				if c.handle != uint32(stack[0]) || c.done {
					ret32(stack, abi.ErrNotInStep)
					return
				}
				if status != abi.CompleteOK && status != abi.CompleteFailed {
					ret32(stack, abi.ErrBadArgument)
					return
				}
				if status == abi.CompleteOK && v != "" && !json.Valid([]byte(v)) {
					// The activity fails with a clear message rather than
					// writing text that is not JSON into the history.
					c.done, c.status, c.payload = true, abi.CompleteFailed, string(encodeJSON(abi.InvalidJSONFailure("the activity's result", v)))
					ret32(stack, abi.ErrInvalidJSON)
					return
				}
				c.done, c.status, c.payload = true, status, v
				ret32(stack, 0)
			default:
				ret32(stack, abi.ErrNotInStep)
			}
		}},
		{abi.ImportManagementURLs, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i64}, managementURLs},
		{abi.ImportGetConfig, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i64}, getConfig},
		{abi.ImportHTTPRequest, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i64}, httpRequest},
		{abi.ImportLog, []api.ValueType{i32, i32, i32, i32}, nil, func(ctx context.Context, m api.Module, stack []uint64) {
			msg, ok := read(m, stack[2], stack[3])
			if !ok {
				return
			}
			level := slog.LevelInfo
			switch int32(stack[1]) {
			case abi.LogDebug:
				level = slog.LevelDebug
			case abi.LogWarn:
				level = slog.LevelWarn
			case abi.LogError:
				level = slog.LevelError
			}
			switch c := ctx.Value(callKey{}).(type) {
			case *orchCall:
				s := orchState(ctx, stack)
				if s == nil || s.IsReplaying() {
					return
				}
				c.inst.logger.Log(ctx, level, msg, "instanceId", s.InstanceID, "orchestrator", s.Name)
			case *actCall:
				c.logger().Log(ctx, level, msg)
			}
		}},
	}
}

func managementURLs(ctx context.Context, m api.Module, stack []uint64) {
	c := activityCall(ctx, stack)
	if c == nil {
		stack[0] = api.EncodeI64(abi.ErrNotInStep)
		return
	}
	id, ok := read(m, stack[1], stack[2])
	if !ok {
		stack[0] = api.EncodeI64(abi.ErrBadArgument)
		return
	}
	if id == "" {
		id = c.instanceID
	}
	if c.management == nil {
		stack[0] = api.EncodeI64(abi.ErrUnavailable)
		return
	}
	payload, err := c.management(id)
	if err != nil {
		stack[0] = api.EncodeI64(abi.ErrBadArgument)
		return
	}
	writeResult(m, stack, stack[3], stack[4], payload)
}

func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abi.HostModule)
	for _, f := range hostFunctions() {
		b = b.NewFunctionBuilder().WithGoModuleFunction(f.fn, f.params, f.results).Export(f.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// badName reports whether a function or event name passed by a guest breaks
// ValidateName's rules (such a call fails with abi.ErrBadArgument).
func badName(name string) bool { return host.ValidateName("name", name) != nil }
