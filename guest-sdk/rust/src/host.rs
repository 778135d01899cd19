//! The host functions of ABI version 1 (abi/README.md section 5), behind a
//! trait so that the same runtime runs in Wasm (over the imports) and natively
//! (over the fake host of [`crate::testing`]).

/// Codes returned by guest exports (ABI section 6).
pub mod status {
    /// Finished normally (start/resume: parked or finished).
    pub const OK: i32 = 0;
    /// No orchestrator or activity of that name.
    pub const UNKNOWN_FUNCTION: i32 = 1;
    /// Resume of a handle the guest does not hold.
    pub const UNKNOWN_HANDLE: i32 = 2;
    /// The request frames could not be decoded (or the handle is in use).
    pub const BAD_REQUEST: i32 = 4;
    /// An activity waits on a host call that returned `ERR_PENDING`.
    pub const PARKED: i32 = 5;
}

/// Codes returned by host imports (ABI section 6).
pub mod code {
    /// `poll`: no task resolved yet (not an error).
    pub const POLL_NONE: i32 = -1;
    /// No such orchestration in a step.
    pub const ERR_NOT_IN_STEP: i64 = -2;
    /// The call contradicts history; the host failed the orchestration.
    pub const ERR_NONDETERMINISM: i64 = -3;
    /// A pointer/length is out of memory or a value is malformed.
    pub const ERR_BAD_ARGUMENT: i64 = -4;
    /// The task id was never issued to this orchestration.
    pub const ERR_UNKNOWN_TASK: i64 = -5;
    /// A payload or history limit was exceeded; the host failed the orchestration.
    pub const ERR_LIMIT: i64 = -6;
    /// The host does not offer the service.
    pub const ERR_UNAVAILABLE: i64 = -7;
    /// The requested item does not exist.
    pub const ERR_NOT_FOUND: i64 = -8;
    /// A payload is not valid JSON; the host failed the orchestration.
    pub const ERR_INVALID_JSON: i64 = -9;
    /// The asynchronous capability call has no result yet: park.
    pub const ERR_PENDING: i64 = -10;

    /// A short name for a host error code.
    pub fn name(c: i64) -> &'static str {
        match c {
            -2 => "not in step",
            -3 => "nondeterminism",
            -4 => "bad argument",
            -5 => "unknown task",
            -6 => "limit exceeded",
            -7 => "unavailable",
            -8 => "not found",
            -9 => "not valid JSON",
            -10 => "pending",
            _ => "unknown code",
        }
    }

    /// Whether the host has already failed the orchestration after returning `c`.
    pub fn aborts(c: i64) -> bool {
        c == ERR_NONDETERMINISM || c == ERR_LIMIT || c == ERR_INVALID_JSON || c == ERR_NOT_IN_STEP
    }
}

/// Function kinds passed to `register`.
pub const KIND_ORCHESTRATOR: i32 = 1;
/// See [`KIND_ORCHESTRATOR`].
pub const KIND_ACTIVITY: i32 = 2;
/// `complete` status of a success.
pub const COMPLETE_OK: i32 = 1;
/// `complete` status of a failure (payload: FailureDetails JSON).
pub const COMPLETE_FAILED: i32 = 2;
/// `task_result` kind of a pending task.
pub const RESULT_PENDING: i64 = 0;
/// `task_result` kind of a successful task.
pub const RESULT_OK: i64 = 1;
/// `task_result` kind of a failed task.
pub const RESULT_FAILED: i64 = 2;

/// The host functions, one method per import. `h` is the handle of the
/// current export call. Implemented over the Wasm imports by the SDK and by
/// the fake host of [`crate::testing`].
pub trait Host {
    /// `register(kind, name)`.
    fn register(&self, kind: i32, name: &str);
    /// `schedule_activity(h, name, input)`.
    fn schedule_activity(&self, h: i32, name: &str, input: &[u8]) -> i32;
    /// `schedule_sub_orchestrator(h, name, id, input)`.
    fn schedule_sub_orchestrator(&self, h: i32, name: &str, id: &str, input: &[u8]) -> i32;
    /// `create_timer(h, fire_at_unix_nanos)`.
    fn create_timer(&self, h: i32, fire_at: i64) -> i32;
    /// `wait_event(h, name)`.
    fn wait_event(&self, h: i32, name: &str) -> i32;
    /// `cancel_task(h, task)`.
    fn cancel_task(&self, h: i32, task: i32) -> i32;
    /// `send_event(h, instance_id, name, data)`.
    fn send_event(&self, h: i32, id: &str, name: &str, data: &[u8]) -> i32;
    /// `poll(h, ids)`.
    fn poll(&self, h: i32, ids: &[i32]) -> i32;
    /// `task_result(h, task, buf)`.
    fn task_result(&self, h: i32, task: i32, buf: &mut [u8]) -> i64;
    /// `now(h)`.
    fn now(&self, h: i32) -> i64;
    /// `new_guid(h, buf)`.
    fn new_guid(&self, h: i32, buf: &mut [u8; 36]) -> i32;
    /// `is_replaying(h)`.
    fn is_replaying(&self, h: i32) -> i32;
    /// `set_custom_status(h, status)`.
    fn set_custom_status(&self, h: i32, status: &[u8]) -> i32;
    /// `continue_as_new(h, input, keep_events)`.
    fn continue_as_new(&self, h: i32, input: &[u8], keep_events: i32) -> i32;
    /// `complete(h, status, payload)`.
    fn complete(&self, h: i32, status: i32, payload: &[u8]) -> i32;
    /// `log(h, level, msg)`.
    fn log(&self, h: i32, level: i32, msg: &str);
    /// `get_config(h, key, buf)`.
    fn get_config(&self, h: i32, key: &str, buf: &mut [u8]) -> i64;
    /// `http_request(h, req, buf)`.
    fn http_request(&self, h: i32, req: &[u8], buf: &mut [u8]) -> i64;
    /// `management_urls(h, id, buf)`.
    fn management_urls(&self, h: i32, id: &str, buf: &mut [u8]) -> i64;
}

/// Calls `f` with a buffer following the ABI's buffer protocol (section 7):
/// first with a 256-byte buffer, then once more with one of the returned
/// length when it did not fit. Returns the raw result (negative: an error
/// code) and the payload.
pub(crate) fn buffered(mut f: impl FnMut(&mut [u8]) -> i64) -> (i64, Vec<u8>) {
    let mut buf = vec![0u8; 256];
    loop {
        let r = f(&mut buf);
        if r < 0 {
            return (r, Vec::new());
        }
        let n = (r & 0xffff_ffff) as usize;
        if n <= buf.len() {
            buf.truncate(n);
            return (r, buf);
        }
        buf = vec![0u8; n];
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) mod wasm {
    //! The imports of module `durablewasm`.
    #[link(wasm_import_module = "durablewasm")]
    extern "C" {
        fn register(kind: i32, name: *const u8, name_len: usize);
        fn schedule_activity(h: i32, name: *const u8, name_len: usize, input: *const u8, input_len: usize) -> i32;
        fn schedule_sub_orchestrator(
            h: i32,
            name: *const u8,
            name_len: usize,
            id: *const u8,
            id_len: usize,
            input: *const u8,
            input_len: usize,
        ) -> i32;
        fn create_timer(h: i32, fire_at: i64) -> i32;
        fn wait_event(h: i32, name: *const u8, name_len: usize) -> i32;
        fn cancel_task(h: i32, task: i32) -> i32;
        fn send_event(
            h: i32,
            id: *const u8,
            id_len: usize,
            name: *const u8,
            name_len: usize,
            data: *const u8,
            data_len: usize,
        ) -> i32;
        fn poll(h: i32, ids: *const i32, count: usize) -> i32;
        fn task_result(h: i32, task: i32, buf: *mut u8, cap: usize) -> i64;
        fn now(h: i32) -> i64;
        fn new_guid(h: i32, buf: *mut u8) -> i32;
        fn is_replaying(h: i32) -> i32;
        fn set_custom_status(h: i32, p: *const u8, n: usize) -> i32;
        fn continue_as_new(h: i32, p: *const u8, n: usize, keep: i32) -> i32;
        fn complete(h: i32, status: i32, p: *const u8, n: usize) -> i32;
        fn log(h: i32, level: i32, p: *const u8, n: usize);
        fn get_config(h: i32, key: *const u8, key_len: usize, buf: *mut u8, cap: usize) -> i64;
        fn http_request(h: i32, req: *const u8, req_len: usize, buf: *mut u8, cap: usize) -> i64;
        fn management_urls(h: i32, id: *const u8, id_len: usize, buf: *mut u8, cap: usize) -> i64;
    }

    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        /// Imported so that the host can compile the module with its fast
        /// interruption path (it calls the module's own sched_yield import).
        fn sched_yield() -> i32;
    }

    /// Keeps the sched_yield import in the module.
    pub(crate) fn yield_now() {
        unsafe {
            sched_yield();
        }
    }

    /// The host of a Wasm guest: the imports.
    pub(crate) struct WasmHost;

    impl super::Host for WasmHost {
        fn register(&self, kind: i32, name: &str) {
            unsafe { register(kind, name.as_ptr(), name.len()) }
        }
        fn schedule_activity(&self, h: i32, name: &str, input: &[u8]) -> i32 {
            unsafe { schedule_activity(h, name.as_ptr(), name.len(), input.as_ptr(), input.len()) }
        }
        fn schedule_sub_orchestrator(&self, h: i32, name: &str, id: &str, input: &[u8]) -> i32 {
            unsafe {
                schedule_sub_orchestrator(h, name.as_ptr(), name.len(), id.as_ptr(), id.len(), input.as_ptr(), input.len())
            }
        }
        fn create_timer(&self, h: i32, fire_at: i64) -> i32 {
            unsafe { create_timer(h, fire_at) }
        }
        fn wait_event(&self, h: i32, name: &str) -> i32 {
            unsafe { wait_event(h, name.as_ptr(), name.len()) }
        }
        fn cancel_task(&self, h: i32, task: i32) -> i32 {
            unsafe { cancel_task(h, task) }
        }
        fn send_event(&self, h: i32, id: &str, name: &str, data: &[u8]) -> i32 {
            unsafe { send_event(h, id.as_ptr(), id.len(), name.as_ptr(), name.len(), data.as_ptr(), data.len()) }
        }
        fn poll(&self, h: i32, ids: &[i32]) -> i32 {
            unsafe { poll(h, ids.as_ptr(), ids.len()) }
        }
        fn task_result(&self, h: i32, task: i32, buf: &mut [u8]) -> i64 {
            unsafe { task_result(h, task, buf.as_mut_ptr(), buf.len()) }
        }
        fn now(&self, h: i32) -> i64 {
            unsafe { now(h) }
        }
        fn new_guid(&self, h: i32, buf: &mut [u8; 36]) -> i32 {
            unsafe { new_guid(h, buf.as_mut_ptr()) }
        }
        fn is_replaying(&self, h: i32) -> i32 {
            unsafe { is_replaying(h) }
        }
        fn set_custom_status(&self, h: i32, s: &[u8]) -> i32 {
            unsafe { set_custom_status(h, s.as_ptr(), s.len()) }
        }
        fn continue_as_new(&self, h: i32, input: &[u8], keep: i32) -> i32 {
            unsafe { continue_as_new(h, input.as_ptr(), input.len(), keep) }
        }
        fn complete(&self, h: i32, status: i32, p: &[u8]) -> i32 {
            unsafe { complete(h, status, p.as_ptr(), p.len()) }
        }
        fn log(&self, h: i32, level: i32, msg: &str) {
            unsafe { log(h, level, msg.as_ptr(), msg.len()) }
        }
        fn get_config(&self, h: i32, key: &str, buf: &mut [u8]) -> i64 {
            unsafe { get_config(h, key.as_ptr(), key.len(), buf.as_mut_ptr(), buf.len()) }
        }
        fn http_request(&self, h: i32, req: &[u8], buf: &mut [u8]) -> i64 {
            unsafe { http_request(h, req.as_ptr(), req.len(), buf.as_mut_ptr(), buf.len()) }
        }
        fn management_urls(&self, h: i32, id: &str, buf: &mut [u8]) -> i64 {
            unsafe { management_urls(h, id.as_ptr(), id.len(), buf.as_mut_ptr(), buf.len()) }
        }
    }
}
