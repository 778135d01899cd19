// Package abi is the contract between the durablewasm host and guest modules:
// the ABI version, the names of the functions each side exports, the binary
// encodings of the values passed between them, status and error codes, and the
// wire types (history events, failures, runtime statuses) that the host stores
// and reports.
//
// The package has no dependencies outside the standard library, performs no
// I/O and builds for GOOS=wasip1 so that guest SDKs can import it. README.md
// in this folder documents the contract for authors of SDKs in other
// languages.
package abi

// Version is the ABI version implemented by this package. A guest module must
// export ExportABIVersion returning exactly this value, or the host refuses it.
const Version = 1

// HostModule is the Wasm import module name under which the host provides its
// functions to guests.
const HostModule = "durablewasm"

// Names of the functions a guest module exports. Every guest must export all of
// them (orchestrator-only or activity-only modules still export the others and
// answer StatusUnknownFunction).
const (
	// ExportABIVersion: () -> i32. Returns Version.
	ExportABIVersion = "durablewasm_abi_version"
	// ExportAlloc: (size i32) -> i32. Returns a pointer to size writable bytes
	// owned by the guest; valid until the next call of any export.
	ExportAlloc = "durablewasm_alloc"
	// ExportListFunctions: () -> i32. Calls ImportRegister once per registered
	// function, then returns StatusOK.
	ExportListFunctions = "durablewasm_list_functions"
	// ExportOrchestratorStart: (handle i32, ptr i32, len i32) -> i32. Starts the
	// orchestrator described by the StartRequest frames at ptr/len under handle
	// and runs it until it awaits an unresolved task or finishes.
	ExportOrchestratorStart = "durablewasm_orchestrator_start"
	// ExportOrchestratorResume: (handle i32) -> i32. Resumes the orchestration
	// parked under handle until it awaits an unresolved task or finishes.
	ExportOrchestratorResume = "durablewasm_orchestrator_resume"
	// ExportOrchestratorDrop: (handle i32) -> i32. Discards the orchestration
	// under handle (its goroutine or coroutine is ended without calling any
	// host function). Unknown handles are ignored.
	ExportOrchestratorDrop = "durablewasm_orchestrator_drop"
	// ExportActivityRun: (handle i32, ptr i32, len i32) -> i32. Runs the
	// activity described by the ActivityRequest frames at ptr/len to
	// completion; the result is reported with ImportComplete under handle.
	ExportActivityRun = "durablewasm_activity_run"
)

// Optional exports: a module that exports both takes asynchronous activities
// (abi/README.md, section 11.1). Its capability calls (ImportHTTPRequest)
// may then return ErrPending: the host does the I/O while the activity is
// parked, and other activities run in the same instance meanwhile.
const (
	// ExportActivityResume: (handle i32) -> i32. Resumes the activity parked
	// under handle (ExportActivityRun or an earlier resume returned
	// StatusParked) once its asynchronous call has a result: the guest
	// repeats the call, byte for byte, and gets the result. Returns like
	// ExportActivityRun, or StatusUnknownHandle.
	ExportActivityResume = "durablewasm_activity_resume"
	// ExportActivityDrop: (handle i32) -> i32. Discards the activity parked
	// under handle (its deadline passed or the worker is shutting down)
	// without calling any host function for it. Unknown handles are
	// ignored.
	ExportActivityDrop = "durablewasm_activity_drop"
)

// Names of the host functions a guest may import from HostModule. Pointers and
// lengths are i32 offsets into the guest's exported memory "memory". Functions
// that return a task id return a non-negative id on success and a negative
// error code (Err*) on failure.
const (
	// ImportRegister: (kind i32, name_ptr, name_len) -> (). Only valid during
	// ExportListFunctions. kind is KindOrchestrator or KindActivity.
	ImportRegister = "register"
	// ImportScheduleActivity: (h, name_ptr, name_len, input_ptr, input_len) -> i32 task id.
	ImportScheduleActivity = "schedule_activity"
	// ImportScheduleSubOrchestrator: (h, name_ptr, name_len, id_ptr, id_len, input_ptr, input_len) -> i32 task id.
	// An empty id asks the host to derive a deterministic one.
	ImportScheduleSubOrchestrator = "schedule_sub_orchestrator"
	// ImportCreateTimer: (h, fire_at_unix_nanos i64) -> i32 task id.
	ImportCreateTimer = "create_timer"
	// ImportWaitEvent: (h, name_ptr, name_len) -> i32 task id, resolved by the
	// next external event of that name (events raised earlier are buffered).
	ImportWaitEvent = "wait_event"
	// ImportCancelTask: (h, task i32) -> i32. Withdraws an unresolved event
	// wait so that it no longer consumes events. Other kinds are ignored (a
	// timer that lost a race still fires later; the orchestration is then
	// resumed for nothing, which costs one cheap step).
	ImportCancelTask = "cancel_task"
	// ImportSendEvent: (h, id_ptr, id_len, name_ptr, name_len, data_ptr, data_len) -> i32.
	// Raises an event on another instance (fire and forget).
	ImportSendEvent = "send_event"
	// ImportPoll: (h, ids_ptr, count) -> i32. ids_ptr holds count i32 (LE)
	// task ids. Returns the index in that array of the task that was resolved
	// first, or PollNone when none is resolved yet.
	ImportPoll = "poll"
	// ImportTaskResult: (h, task, buf_ptr, buf_cap) -> i64. Returns
	// (result_kind << 32) | payload_len. When payload_len <= buf_cap the
	// payload is copied to buf_ptr; otherwise nothing is copied and the guest
	// calls again with a larger buffer. result_kind is ResultPending,
	// ResultOK or ResultFailed; a negative i64 is an error code.
	ImportTaskResult = "task_result"
	// ImportNow: (h) -> i64. The replay-safe current time in unix nanoseconds
	// (outside an orchestration step: the real time). It never returns an
	// error code.
	ImportNow = "now"
	// ImportNewGUID: (h, buf_ptr) -> i32. Writes a deterministic 36-byte UUID
	// string to buf_ptr and returns 36.
	ImportNewGUID = "new_guid"
	// ImportIsReplaying: (h) -> i32. 1 while the host replays history, else 0.
	ImportIsReplaying = "is_replaying"
	// ImportSetCustomStatus: (h, ptr, len) -> i32. ptr/len is JSON text.
	ImportSetCustomStatus = "set_custom_status"
	// ImportContinueAsNew: (h, input_ptr, input_len, keep_events i32) -> i32.
	// The orchestration must then return (complete is not called).
	ImportContinueAsNew = "continue_as_new"
	// ImportComplete: (h, status i32, ptr, len) -> i32. Reports the result of
	// an orchestration or activity: status CompleteOK with JSON output, or
	// CompleteFailed with FailureDetails JSON.
	ImportComplete = "complete"
	// ImportLog: (h, level i32, ptr, len) -> (). Orchestrator logs are dropped
	// while replaying.
	ImportLog = "log"
	// ImportManagementURLs: (h, id_ptr, id_len, buf_ptr, buf_cap) -> i64.
	// Only for activities. Returns the length of the JSON management payload
	// of instance id (the activity's own orchestration when id is empty):
	// Durable Functions' HttpManagementPayload, {"id", "statusQueryGetUri",
	// "sendEventPostUri", "terminatePostUri", "rewindPostUri",
	// "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri",
	// "resumePostUri"}. The JSON is copied to buf_ptr when it fits in buf_cap
	// (same protocol as ImportTaskResult, without the kind). ErrUnavailable
	// when the host serves no HTTP API.
	ImportManagementURLs = "management_urls"
	// ImportGetConfig: (h, key_ptr, key_len, buf_ptr, buf_cap) -> i64. Only
	// for activities. Returns the length of the configuration value of key
	// (set at deploy), copied to buf_ptr when it fits; ErrNotFound when the
	// module has no such key.
	ImportGetConfig = "get_config"
	// ImportHTTPRequest: (h, req_ptr, req_len, buf_ptr, buf_cap) -> i64. Only
	// for activities. req is HTTPRequest JSON; the result is the length of
	// the HTTPResponse JSON, copied to buf_ptr when it fits. Calling again
	// with the same request bytes in the same activity execution returns the
	// same response without a second request (for the buffer protocol).
	// Refusals (host not in the module's allowlist, timeout, network
	// errors, oversized responses) are reported in the response's error
	// field, not as error codes.
	ImportHTTPRequest = "http_request"
)

// Function kinds passed to ImportRegister.
const (
	KindOrchestrator = 1
	KindActivity     = 2
)

// Status codes returned by the guest's exports.
const (
	// StatusOK: the call finished normally. For start/resume: the
	// orchestration is parked on an unresolved task, or it has completed
	// (ImportComplete or ImportContinueAsNew was called).
	StatusOK = 0
	// StatusUnknownFunction: no orchestrator or activity of that name.
	StatusUnknownFunction = 1
	// StatusUnknownHandle: resume of a handle the guest does not hold.
	StatusUnknownHandle = 2
	// StatusStuck: the orchestration blocked on something other than the
	// SDK's await (the guest's own deadline passed); the host fails it.
	StatusStuck = 3
	// StatusBadRequest: the request frames could not be decoded.
	StatusBadRequest = 4
	// StatusParked: activity run/resume only, in a module that exports
	// ExportActivityResume: the activity is parked on the asynchronous host
	// call that returned ErrPending; the host resumes it when the call's
	// result is ready.
	StatusParked = 5
)

// ExitStuck is the WASI proc_exit code with which a guest reports that the
// orchestration of the start, resume or drop call in progress blocked outside
// the SDK's await past the guest's deadline and that the instance cannot go
// on (its code runs on coroutines that cannot be abandoned). The host fails
// that orchestration with type Stuck (DW2001) and discards the instance.
const ExitStuck = 86

// Completion statuses passed to ImportComplete.
const (
	CompleteOK     = 1
	CompleteFailed = 2
)

// Result kinds returned (in the high 32 bits) by ImportTaskResult.
const (
	ResultPending = 0
	ResultOK      = 1
	ResultFailed  = 2
)

// PollNone is ImportPoll's result when none of the tasks is resolved yet. It
// is not an error; error codes start at -2.
const PollNone = -1

// Error codes returned by host functions. They are all below PollNone, so no
// result of any host function is ambiguous.
const (
	// ErrNotInStep: the call was made outside a step of that handle.
	ErrNotInStep = -2
	// ErrNondeterminism: the call does not match history. The host has
	// already failed the orchestration; the guest must stop running it.
	ErrNondeterminism = -3
	// ErrBadArgument: a pointer or length is out of range or a value is
	// malformed.
	ErrBadArgument = -4
	// ErrUnknownTask: the task id was never issued to this orchestration.
	ErrUnknownTask = -5
	// ErrLimit: a payload or history limit was exceeded; the host fails the
	// orchestration.
	ErrLimit = -6
	// ErrUnavailable: the host does not offer the requested service (e.g.
	// management URLs without an HTTP API).
	ErrUnavailable = -7
	// ErrNotFound: the requested item (a configuration key) does not exist.
	ErrNotFound = -8
	// ErrInvalidJSON: a payload that must be JSON (an orchestration's or
	// activity's input or output, event data, custom status, a
	// continue-as-new input) is not valid JSON. For an orchestration the
	// host has failed it (type InvalidJSON, code DW2005), as for ErrLimit;
	// an activity result is replaced by that failure.
	ErrInvalidJSON = -9
	// ErrPending: a capability call of an asynchronous activity (a module
	// exporting ExportActivityResume) was started and has no result yet:
	// the guest parks the activity and returns StatusParked; after
	// ExportActivityResume it repeats the same call and gets the result.
	// Also returned when the guest makes another asynchronous call before
	// parking (one call is outstanding per activity at a time).
	ErrPending = -10
)

// ManagementPayload is the JSON of ImportManagementURLs: an instance's HTTP
// management URLs with the JSON names and key order of Durable Functions'
// HttpManagementPayload.
type ManagementPayload struct {
	ID                    string `json:"id"`
	StatusQueryGetURI     string `json:"statusQueryGetUri"`
	SendEventPostURI      string `json:"sendEventPostUri"`
	TerminatePostURI      string `json:"terminatePostUri"`
	RewindPostURI         string `json:"rewindPostUri"`
	PurgeHistoryDeleteURI string `json:"purgeHistoryDeleteUri"`
	RestartPostURI        string `json:"restartPostUri"`
	SuspendPostURI        string `json:"suspendPostUri"`
	ResumePostURI         string `json:"resumePostUri"`
}

// HTTPRequest is the JSON request of ImportHTTPRequest. Body is base64 in
// JSON.
type HTTPRequest struct {
	Method string            `json:"method"`
	URL    string            `json:"url"`
	Header map[string]string `json:"headers,omitempty"`
	Body   []byte            `json:"body,omitempty"`
}

// ActivityHTTP is the name of the built-in activity of durable HTTP: an
// orchestration that schedules it with the JSON of an HTTPRequest as input
// has the host perform the request natively (no guest instance), with its
// module's HTTP allowlist, timeout and payload limit; the task completes
// with the JSON of the HTTPResponse (any status), or fails with type
// FailureHTTP when the request was refused or did not complete. Request
// and response are recorded in history like any activity's.
const ActivityHTTP = "BuiltIn::HttpActivity"

// HTTPResponse is the JSON response of ImportHTTPRequest. When Error is set
// the request was not made or did not complete, and the other fields are
// zero.
type HTTPResponse struct {
	Status int               `json:"status,omitempty"`
	Header map[string]string `json:"headers,omitempty"`
	Body   []byte            `json:"body,omitempty"`
	Error  string            `json:"error,omitempty"`
}

// Log levels passed to ImportLog.
const (
	LogDebug = 0
	LogInfo  = 1
	LogWarn  = 2
	LogError = 3
)
