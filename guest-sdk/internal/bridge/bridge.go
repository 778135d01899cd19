// Package bridge connects the guest SDK's orchestration runtime (package
// durable) to a host implementation: the real Wasm imports when the guest is
// built for wasip1, or the native fake host of package durabletest.
//
// It exists so that both run exactly the same SDK code paths (coordinator,
// await, composite tasks) while keeping that plumbing out of durable's public
// API.
package bridge

import "time"

// Host is the set of host functions an orchestration or activity calls. Each
// method mirrors the abi.Import* function of the same name; buffers are passed
// as Go slices and strings instead of (ptr, len) pairs. Every method returns
// the raw host result (task id, index, status or negative abi.Err* code).
type Host interface {
	ScheduleActivity(h int32, name string, input []byte) int32
	ScheduleSubOrchestrator(h int32, name, instanceID string, input []byte) int32
	CreateTimer(h int32, fireAtUnixNano int64) int32
	WaitEvent(h int32, name string) int32
	CancelTask(h, task int32) int32
	SendEvent(h int32, instanceID, name string, data []byte) int32
	Poll(h int32, ids []int32) int32
	// TaskResult copies the payload into buf when it fits and returns
	// (result_kind << 32) | payload_len, or a negative error code.
	TaskResult(h, task int32, buf []byte) int64
	Now(h int32) int64
	NewGUID(h int32, buf *[36]byte) int32
	IsReplaying(h int32) int32
	SetCustomStatus(h int32, status []byte) int32
	ContinueAsNew(h int32, input []byte, keepEvents int32) int32
	Complete(h int32, status int32, payload []byte) int32
	Log(h int32, level int32, msg string)
	// ManagementURLs copies the management payload JSON of instanceID into
	// buf when it fits and returns its length, or a negative error code.
	ManagementURLs(h int32, instanceID string, buf []byte) int64
	// GetConfig copies the configuration value of key into buf when it fits
	// and returns its length, or a negative error code (abi.ErrNotFound).
	GetConfig(h int32, key string, buf []byte) int64
	// HTTPRequest performs an abi.HTTPRequest (JSON) and copies the
	// abi.HTTPResponse JSON into buf when it fits, returning its length.
	HTTPRequest(h int32, req []byte, buf []byte) int64
	// Stuck reports that the start, resume or drop call of handle h has
	// been blocked outside Await for longer than the step deadline. The
	// call can never return on its own: in Wasm, Stuck exits the instance
	// with abi.ExitStuck (and does not return); the fake host abandons the
	// call. It is called from the SDK's watchdog goroutine.
	Stuck(h int32)
}

// Runtime is the guest side of the exports that run functions: the
// implementation behind abi.ExportOrchestratorStart, ExportOrchestratorResume,
// ExportOrchestratorDrop, ExportActivityRun, ExportActivityResume and
// ExportActivityDrop. Calls must not overlap (the
// host never calls one Wasm instance concurrently; the fake host mirrors that).
type Runtime interface {
	Start(handle int32, req []byte) int32
	Resume(handle int32) int32
	Drop(handle int32) int32
	RunActivity(handle int32, req []byte) int32
	// ResumeActivity and DropActivity serve abi.ExportActivityResume and
	// abi.ExportActivityDrop: an activity that RunActivity left parked
	// (abi.StatusParked) goes on, or is discarded.
	ResumeActivity(handle int32) int32
	DropActivity(handle int32) int32
	// Close ends what the runtime keeps running between calls (idle
	// coroutines, the step watchdog). The host calls it when it makes no
	// more calls; a Wasm instance never needs it (it is discarded whole).
	Close()
}

// NewRuntime returns a Runtime that serves functions found by the lookup
// functions over host. orchestrator must return nil or a
// func(*durable.OrchestrationContext) (any, error); activity nil or a
// func(*durable.ActivityContext) (any, error). stepDeadline is how long a
// start, resume or drop may block outside Await before the runtime calls
// host.Stuck; when it is not positive, the runtime uses durable.StepDeadline
// as it is at this call. Package durable sets NewRuntime in its init
// function, so it is non-nil wherever durable is linked in.
var NewRuntime func(host Host, orchestrator, activity func(name string) any, stepDeadline time.Duration) Runtime
