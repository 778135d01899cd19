package durabletest

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/guest-sdk/internal/bridge"
)

// This file implements bridge.Host: the host functions, answered from the
// fake host's in-memory state.

var _ bridge.Host = (*host)(nil)

func (h *host) ScheduleActivity(hd int32, name string, input []byte) int32 {
	in, code := h.orch(hd, abi.ImportScheduleActivity, name)
	if in == nil {
		return code
	}
	if code := h.checkJSON(in, "input of activity "+name, input); code != 0 {
		return code
	}
	id := h.newTask(in, &fakeTask{kind: CallActivity, name: name, input: append([]byte(nil), input...)})
	h.record(in, Call{Kind: CallActivity, Name: name, Input: append([]byte(nil), input...), TaskID: id})
	a := &activityRun{inst: in, gen: in.gen, id: id, name: name}
	h.queue = append(h.queue, func() { h.runActivity(a) })
	return id
}

func (h *host) ScheduleSubOrchestrator(hd int32, name, instanceID string, input []byte) int32 {
	in, code := h.orch(hd, abi.ImportScheduleSubOrchestrator, name)
	if in == nil {
		return code
	}
	if code := h.checkJSON(in, "input of sub-orchestration "+name, input); code != 0 {
		return code
	}
	id := h.newTask(in, &fakeTask{kind: CallSubOrchestration, name: name})
	if instanceID == "" {
		instanceID = fmt.Sprintf("%s:%d", in.res.InstanceID, id)
	}
	inp := append([]byte(nil), input...)
	h.record(in, Call{Kind: CallSubOrchestration, Name: name, Input: inp, TaskID: id, InstanceID: instanceID})
	child := h.newInstance(instanceID, name, inp, in, id)
	h.queue = append(h.queue, func() { h.start(child) })
	return id
}

func (h *host) CreateTimer(hd int32, fireAt int64) int32 {
	in, code := h.orch(hd, abi.ImportCreateTimer, "")
	if in == nil {
		return code
	}
	id := h.newTask(in, &fakeTask{kind: CallTimer, fireAt: fireAt})
	h.record(in, Call{Kind: CallTimer, TaskID: id, FireAt: time.Unix(0, fireAt).UTC()})
	return id
}

func (h *host) WaitEvent(hd int32, name string) int32 {
	in, code := h.orch(hd, abi.ImportWaitEvent, name)
	if in == nil {
		return code
	}
	id := h.newTask(in, &fakeTask{kind: CallWaitEvent, name: name})
	h.record(in, Call{Kind: CallWaitEvent, Name: name, TaskID: id})
	if q := in.inbox[name]; len(q) > 0 {
		in.inbox[name] = q[1:]
		h.resolve(in, id, abi.ResultOK, q[0])
	}
	return id
}

func (h *host) CancelTask(hd, task int32) int32 {
	in, code := h.orch(hd, abi.ImportCancelTask, "")
	if in == nil {
		return code
	}
	t := in.tasks[task]
	if t == nil {
		return abi.ErrUnknownTask
	}
	h.record(in, Call{Kind: CallCancel, Name: t.name, TaskID: task})
	if t.kind == CallWaitEvent && !t.resolved {
		t.canceled = true
	}
	return 0
}

func (h *host) SendEvent(hd int32, instanceID, name string, data []byte) int32 {
	in, code := h.orch(hd, abi.ImportSendEvent, name)
	if in == nil {
		return code
	}
	if code := h.checkJSON(in, "data of event "+name, data); code != 0 {
		return code
	}
	d := append([]byte(nil), data...)
	h.record(in, Call{Kind: CallSendEvent, Name: name, Input: d, InstanceID: instanceID})
	h.queue = append(h.queue, func() {
		for i := len(h.instances) - 1; i >= 0; i-- {
			if target := h.instances[i]; target.res.InstanceID == instanceID {
				h.deliver(target, name, d)
				return
			}
		}
	})
	return 0
}

func (h *host) Poll(hd int32, ids []int32) int32 {
	in, code := h.orch(hd, abi.ImportPoll, "")
	if in == nil {
		return code
	}
	best := int32(abi.PollNone)
	var bestSeq uint64
	for i, id := range ids {
		t := in.tasks[id]
		if t == nil {
			return abi.ErrUnknownTask
		}
		if t.resolved && (best < 0 || t.seq < bestSeq) {
			best, bestSeq = int32(i), t.seq
		}
	}
	if best < 0 {
		in.waiting = append(in.waiting[:0], ids...)
	}
	return best
}

func (h *host) TaskResult(hd, task int32, buf []byte) int64 {
	in, code := h.orch(hd, abi.ImportTaskResult, "")
	if in == nil {
		return int64(code)
	}
	t := in.tasks[task]
	if t == nil {
		return abi.ErrUnknownTask
	}
	if !t.resolved {
		return abi.ResultPending << 32
	}
	if len(t.payload) <= len(buf) {
		copy(buf, t.payload)
	}
	return t.result<<32 | int64(len(t.payload))
}

func (h *host) Now(hd int32) int64 {
	in, code := h.orch(hd, abi.ImportNow, "")
	if in == nil {
		return int64(code)
	}
	return h.now.UnixNano()
}

func (h *host) NewGUID(hd int32, buf *[36]byte) int32 {
	in, code := h.orch(hd, abi.ImportNewGUID, "")
	if in == nil {
		return code
	}
	in.guids++
	sum := sha1.Sum([]byte(fmt.Sprintf("%s/%d/%d", in.res.InstanceID, in.gen, in.guids)))
	sum[6] = sum[6]&0x0f | 0x50 // version 5
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	hx := hex.EncodeToString(sum[:16])
	copy(buf[:], hx[0:8]+"-"+hx[8:12]+"-"+hx[12:16]+"-"+hx[16:20]+"-"+hx[20:32])
	return 36
}

func (h *host) IsReplaying(hd int32) int32 {
	in, code := h.orch(hd, abi.ImportIsReplaying, "")
	if in == nil {
		return code
	}
	return 0
}

func (h *host) SetCustomStatus(hd int32, status []byte) int32 {
	in, code := h.orch(hd, abi.ImportSetCustomStatus, "")
	if in == nil {
		return code
	}
	if code := h.checkJSON(in, "custom status", status); code != 0 {
		return code
	}
	in.res.CustomStatus = append([]byte(nil), status...)
	return 0
}

func (h *host) ContinueAsNew(hd int32, input []byte, keepEvents int32) int32 {
	in, code := h.orch(hd, abi.ImportContinueAsNew, "")
	if in == nil {
		return code
	}
	if code := h.checkJSON(in, "continue-as-new input", input); code != 0 {
		return code
	}
	in.continued = true
	in.contInput = append([]byte(nil), input...)
	in.keepEvents = keepEvents != 0
	h.record(in, Call{Kind: CallContinueAsNew, Input: in.contInput})
	return 0
}

func (h *host) Complete(hd int32, status int32, payload []byte) int32 {
	if hd != h.cur {
		return abi.ErrNotInStep
	}
	if a := h.acts[hd]; a != nil {
		kind := int64(abi.ResultOK)
		if status == abi.CompleteFailed {
			kind = abi.ResultFailed
		}
		if kind == abi.ResultOK && len(payload) > 0 && !json.Valid(payload) {
			// As the real host: the activity fails with InvalidJSON.
			h.resolve(a.inst, a.id, abi.ResultFailed, failureJSON(abi.InvalidJSONFailure("the activity's result", string(payload))))
			return abi.ErrInvalidJSON
		}
		h.resolve(a.inst, a.id, kind, append([]byte(nil), payload...))
		return 0
	}
	in, code := h.orch(hd, abi.ImportComplete, "")
	if in == nil {
		return code
	}
	if in.done {
		return abi.ErrBadArgument
	}
	if status == abi.CompleteOK {
		if code := h.checkJSON(in, "orchestrator output", payload); code != 0 {
			return code
		}
	}
	in.done = true
	switch status {
	case abi.CompleteOK:
		in.res.Status = abi.StatusCompleted
		in.res.Output = append([]byte(nil), payload...)
	case abi.CompleteFailed:
		in.res.Status = abi.StatusFailed
		in.res.Failure = abi.DecodeFailure(payload)
	default:
		in.done = false
		return abi.ErrBadArgument
	}
	return 0
}

// checkJSON fails in with InvalidJSON, as the real host does, when a
// non-empty payload is not valid JSON, and returns abi.ErrInvalidJSON then.
func (h *host) checkJSON(in *instance, what string, p []byte) int32 {
	if len(p) == 0 || json.Valid(p) {
		return 0
	}
	h.fail(in, abi.InvalidJSONFailure(what, string(p)))
	return abi.ErrInvalidJSON
}

// GetConfig answers from Env.Config.
func (h *host) GetConfig(hd int32, key string, buf []byte) int64 {
	if a := h.acts[hd]; a == nil || hd != h.cur {
		return abi.ErrNotInStep
	}
	v, ok := h.env.Config[key]
	if !ok {
		return abi.ErrNotFound
	}
	copy(buf, v)
	return int64(len(v))
}

// HTTPRequest answers from Env.HTTP.
func (h *host) HTTPRequest(hd int32, req, buf []byte) int64 {
	if a := h.acts[hd]; a == nil || hd != h.cur {
		return abi.ErrNotInStep
	}
	var r abi.HTTPRequest
	resp := abi.HTTPResponse{Error: "no HTTP allowed: set durabletest.Env.HTTP"}
	if err := json.Unmarshal(req, &r); err != nil {
		resp = abi.HTTPResponse{Error: err.Error()}
	} else if h.env.HTTP != nil {
		resp = h.env.HTTP(r)
	}
	b, _ := json.Marshal(resp)
	if len(b) <= len(buf) {
		copy(buf, b)
	}
	return int64(len(b))
}

// ManagementURLs returns management URLs on
// http://localhost:7071/runtime/webhooks/durabletask for the activity's
// instance (or instanceID), like `durablewasm up` would.
func (h *host) ManagementURLs(hd int32, instanceID string, buf []byte) int64 {
	a := h.acts[hd]
	if a == nil || hd != h.cur {
		return abi.ErrNotInStep
	}
	if instanceID == "" {
		instanceID = a.inst.res.InstanceID
	}
	base := "http://localhost:7071/runtime/webhooks/durabletask/instances/" + url.PathEscape(instanceID)
	q := "?taskHub=DurableFunctionsHub&connection=Storage"
	b, _ := json.Marshal(map[string]string{
		"id": instanceID, "statusQueryGetUri": base + q, "sendEventPostUri": base + "/raiseEvent/{eventName}" + q,
		"terminatePostUri": base + "/terminate?reason={text}&" + q[1:], "rewindPostUri": base + "/rewind?reason={text}&" + q[1:],
		"purgeHistoryDeleteUri": base + q, "restartPostUri": base + "/restart" + q,
		"suspendPostUri": base + "/suspend?reason={text}&" + q[1:], "resumePostUri": base + "/resume?reason={text}&" + q[1:],
	})
	if len(b) <= len(buf) {
		copy(buf, b)
	}
	return int64(len(b))
}

func (h *host) Log(hd int32, level int32, msg string) {
	if a := h.acts[hd]; a != nil && hd == h.cur {
		a.inst.res.Logs = append(a.inst.res.Logs, Log{Level: level, Message: msg, Activity: a.name})
		return
	}
	if in := h.byHandle[hd]; in != nil && hd == h.cur {
		in.res.Logs = append(in.res.Logs, Log{Level: level, Message: msg})
	}
}
