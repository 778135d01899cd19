//go:build wasip1

package durable

import (
	"os"
	"unsafe"

	"github.com/durablewasm/durablewasm/abi"
)

// Host functions imported from abi.HostModule. Strings are passed as
// (ptr, len) by the compiler; byte slices as an explicit (ptr, len) pair.

//go:wasmimport durablewasm register
func hostRegister(kind int32, name string)

//go:wasmimport durablewasm schedule_activity
func hostScheduleActivity(h int32, name string, input *byte, inputLen uint32) int32

//go:wasmimport durablewasm schedule_sub_orchestrator
func hostScheduleSubOrchestrator(h int32, name string, id string, input *byte, inputLen uint32) int32

//go:wasmimport durablewasm create_timer
func hostCreateTimer(h int32, fireAt int64) int32

//go:wasmimport durablewasm wait_event
func hostWaitEvent(h int32, name string) int32

//go:wasmimport durablewasm cancel_task
func hostCancelTask(h int32, task int32) int32

//go:wasmimport durablewasm send_event
func hostSendEvent(h int32, id string, name string, data *byte, dataLen uint32) int32

//go:wasmimport durablewasm poll
func hostPoll(h int32, ids *int32, count uint32) int32

//go:wasmimport durablewasm task_result
func hostTaskResult(h int32, task int32, buf *byte, bufCap uint32) int64

//go:wasmimport durablewasm now
func hostNow(h int32) int64

//go:wasmimport durablewasm new_guid
func hostNewGUID(h int32, buf *[36]byte) int32

//go:wasmimport durablewasm is_replaying
func hostIsReplaying(h int32) int32

//go:wasmimport durablewasm set_custom_status
func hostSetCustomStatus(h int32, status *byte, statusLen uint32) int32

//go:wasmimport durablewasm continue_as_new
func hostContinueAsNew(h int32, input *byte, inputLen uint32, keepEvents int32) int32

//go:wasmimport durablewasm complete
func hostComplete(h int32, status int32, payload *byte, payloadLen uint32) int32

//go:wasmimport durablewasm log
func hostLog(h int32, level int32, msg string)

//go:wasmimport durablewasm get_config
func hostGetConfig(h int32, key string, buf *byte, bufCap uint32) int64

//go:wasmimport durablewasm http_request
func hostHTTPRequest(h int32, req *byte, reqLen uint32, buf *byte, bufCap uint32) int64

func (wasmHost) GetConfig(h int32, key string, buf []byte) int64 {
	p, n := bytesArg(buf)
	return hostGetConfig(h, key, p, n)
}

func (wasmHost) HTTPRequest(h int32, req, buf []byte) int64 {
	rp, rn := bytesArg(req)
	p, n := bytesArg(buf)
	return hostHTTPRequest(h, rp, rn, p, n)
}

//go:wasmimport durablewasm management_urls
func hostManagementURLs(h int32, id string, buf *byte, bufCap uint32) int64

func (wasmHost) ManagementURLs(h int32, id string, buf []byte) int64 {
	p, n := bytesArg(buf)
	return hostManagementURLs(h, id, p, n)
}

// wasmHost implements bridge.Host over the imports.
type wasmHost struct{}

func bytesArg(b []byte) (*byte, uint32) { return unsafe.SliceData(b), uint32(len(b)) }

func (wasmHost) ScheduleActivity(h int32, name string, input []byte) int32 {
	p, n := bytesArg(input)
	return hostScheduleActivity(h, name, p, n)
}

func (wasmHost) ScheduleSubOrchestrator(h int32, name, id string, input []byte) int32 {
	p, n := bytesArg(input)
	return hostScheduleSubOrchestrator(h, name, id, p, n)
}

func (wasmHost) CreateTimer(h int32, fireAt int64) int32 { return hostCreateTimer(h, fireAt) }
func (wasmHost) WaitEvent(h int32, name string) int32    { return hostWaitEvent(h, name) }
func (wasmHost) CancelTask(h, task int32) int32          { return hostCancelTask(h, task) }

func (wasmHost) SendEvent(h int32, id, name string, data []byte) int32 {
	p, n := bytesArg(data)
	return hostSendEvent(h, id, name, p, n)
}

func (wasmHost) Poll(h int32, ids []int32) int32 {
	return hostPoll(h, unsafe.SliceData(ids), uint32(len(ids)))
}

func (wasmHost) TaskResult(h, task int32, buf []byte) int64 {
	p, n := bytesArg(buf)
	return hostTaskResult(h, task, p, n)
}

func (wasmHost) Now(h int32) int64                    { return hostNow(h) }
func (wasmHost) NewGUID(h int32, buf *[36]byte) int32 { return hostNewGUID(h, buf) }
func (wasmHost) IsReplaying(h int32) int32            { return hostIsReplaying(h) }
func (wasmHost) Log(h int32, level int32, msg string) { hostLog(h, level, msg) }

func (wasmHost) Stuck(h int32) {
	os.Stderr.WriteString("durablewasm: an orchestration blocked outside Await for longer than the step deadline\n")
	os.Exit(abi.ExitStuck)
}

func (wasmHost) SetCustomStatus(h int32, status []byte) int32 {
	p, n := bytesArg(status)
	return hostSetCustomStatus(h, p, n)
}

func (wasmHost) ContinueAsNew(h int32, input []byte, keep int32) int32 {
	p, n := bytesArg(input)
	return hostContinueAsNew(h, p, n, keep)
}

func (wasmHost) Complete(h int32, status int32, payload []byte) int32 {
	p, n := bytesArg(payload)
	return hostComplete(h, status, p, n)
}
