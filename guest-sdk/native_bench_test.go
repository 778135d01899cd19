package durable

import (
	"encoding/json"
	"testing"

	"github.com/durablewasm/durablewasm/abi"
)

// benchHost is the smallest bridge.Host that runs sequences of activities:
// every scheduled activity is run at once on the same runtime (as the host's
// local activities do) and resolved for the next poll. It exists to count
// the SDK's own allocations and time per orchestration, natively.
type benchHost struct {
	r       *rt
	pending []benchTask // scheduled, not yet run
	results map[int32][]byte
	nextID  int32
	done    []byte
	actOut  []byte
}

type benchTask struct {
	id    int32
	name  string
	input []byte
}

func (h *benchHost) ScheduleActivity(hd int32, name string, input []byte) int32 {
	h.nextID++
	h.pending = append(h.pending, benchTask{h.nextID, name, input})
	return h.nextID
}
func (h *benchHost) ScheduleSubOrchestrator(int32, string, string, []byte) int32 { return -1 }
func (h *benchHost) CreateTimer(int32, int64) int32                              { return -1 }
func (h *benchHost) WaitEvent(int32, string) int32                               { return -1 }
func (h *benchHost) CancelTask(int32, int32) int32                               { return 0 }
func (h *benchHost) SendEvent(int32, string, string, []byte) int32               { return 0 }
func (h *benchHost) Poll(hd int32, ids []int32) int32 {
	for i, id := range ids {
		if _, ok := h.results[id]; ok {
			return int32(i)
		}
	}
	return abi.PollNone
}
func (h *benchHost) TaskResult(hd, task int32, buf []byte) int64 {
	p := h.results[task]
	delete(h.results, task)
	return int64(abi.ResultOK)<<32 | int64(copy(buf, p))
}
func (h *benchHost) Now(int32) int64                            { return 0 }
func (h *benchHost) NewGUID(int32, *[36]byte) int32             { return 0 }
func (h *benchHost) IsReplaying(int32) int32                    { return 0 }
func (h *benchHost) SetCustomStatus(int32, []byte) int32        { return 0 }
func (h *benchHost) ContinueAsNew(int32, []byte, int32) int32   { return 0 }
func (h *benchHost) Log(int32, int32, string)                   {}
func (h *benchHost) ManagementURLs(int32, string, []byte) int64 { return -1 }
func (h *benchHost) GetConfig(int32, string, []byte) int64      { return -1 }
func (h *benchHost) HTTPRequest(int32, []byte, []byte) int64    { return -1 }
func (h *benchHost) Stuck(int32)                                { panic("stuck") }
func (h *benchHost) Complete(hd int32, status int32, payload []byte) int32 {
	if hd < 0 {
		h.actOut = append(h.actOut[:0], payload...)
	} else {
		h.done = append(h.done[:0], payload...)
	}
	return 0
}

func benchEcho(ctx *ActivityContext) (any, error) {
	var v json.RawMessage
	if err := ctx.GetInput(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func benchHello5(ctx *OrchestrationContext) (any, error) {
	var v json.RawMessage
	if err := ctx.GetInput(&v); err != nil {
		return nil, err
	}
	for i := 0; i < 5; i++ {
		var out json.RawMessage
		if err := ctx.CallActivity("Bench_Echo", v).Await(&out); err != nil {
			return nil, err
		}
		v = out
	}
	return v, nil
}

// runHello5 runs one Hello5 on h the way the host does: start, then for each
// scheduled activity an activity run and a resume.
func (h *benchHost) runHello5(handle int32, start []byte) {
	h.r.Start(handle, start)
	for len(h.pending) > 0 {
		t := h.pending[0]
		h.pending = h.pending[:0]
		req := abi.ActivityRequest{InstanceID: "bench", Name: t.name, Input: t.input, TaskID: t.id}.Encode()
		h.r.RunActivity(-1, req)
		h.results[t.id] = append([]byte(nil), h.actOut...)
		h.r.Resume(handle)
	}
}

// BenchmarkHello5Native runs the SDK side of a Hello5 natively: the allocs/op
// it reports are the SDK's (the bench host allocates one result copy per
// activity), which cost far more in Wasm than natively.
func BenchmarkHello5Native(b *testing.B) {
	reg := NewRegistry()
	reg.RegisterOrchestrator("Hello5", benchHello5)
	reg.RegisterActivity("Bench_Echo", benchEcho)
	orch, act := reg.lookups()
	h := &benchHost{results: map[int32][]byte{}}
	h.r = newRuntime(h, orch, act, 0)
	start := abi.StartRequest{InstanceID: "bench", Name: "Hello5", Input: []byte(`"hello"`)}.Encode()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.runHello5(int32(i+1), start)
		if string(h.done) != `"hello"` {
			b.Fatalf("output %s", h.done)
		}
	}
}
