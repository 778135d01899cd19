//! Orchestrations: the context, tasks, and the executor that polls an
//! orchestration's future on each `orchestrator_start`/`resume`.

use crate::error::{Error, ErrorKind, FailureDetails, Result};
use crate::host::{self, buffered, code, Host};
use crate::retry::RetryPolicy;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

pub(crate) struct Inner {
    pub(crate) host: Rc<dyn Host>,
    pub(crate) handle: i32,
    pub(crate) instance_id: String,
    pub(crate) name: String,
    /// Results fetched with task_result and not consumed yet: id → (kind, payload).
    pub(crate) results: RefCell<HashMap<i32, (i64, Vec<u8>)>>,
    /// Ids of the tasks polled and found unresolved during the current poll.
    pub(crate) waiting: RefCell<Vec<i32>>,
    /// Set when the host aborted the orchestration or it was dropped: no
    /// more host calls.
    pub(crate) dead: Cell<bool>,
    pub(crate) continued: RefCell<Option<(Vec<u8>, bool)>>,
}

/// The handle orchestrator code uses to schedule tasks. It is cheap to
/// clone; clones refer to the same orchestration.
///
/// Everything the orchestrator does must be derived from its input, task
/// results and this context (time, ids, randomness): replay runs the code
/// again and the host checks that it makes the same calls.
#[derive(Clone)]
pub struct OrchestrationContext {
    pub(crate) inner: Rc<Inner>,
}

fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::json("encode", e))
}

pub(crate) fn from_json<T: DeserializeOwned>(b: &[u8]) -> Result<T> {
    let b: &[u8] = if b.is_empty() { b"null" } else { b };
    serde_json::from_slice(b).map_err(|e| Error::json("decode", e))
}

pub(crate) use crate::time::{from_nanos as nanos_to_time, to_nanos as time_to_nanos};

impl OrchestrationContext {
    pub(crate) fn new(host: Rc<dyn Host>, handle: i32, instance_id: String, name: String) -> Self {
        OrchestrationContext {
            inner: Rc::new(Inner {
                host,
                handle,
                instance_id,
                name,
                results: RefCell::new(HashMap::new()),
                waiting: RefCell::new(Vec::new()),
                dead: Cell::new(false),
                continued: RefCell::new(None),
            }),
        }
    }

    /// The instance id of this orchestration.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// The orchestrator name this orchestration runs.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether the host is replaying history (log only when it is not).
    pub fn is_replaying(&self) -> bool {
        self.inner.host.is_replaying(self.inner.handle) == 1
    }

    /// The replay-safe current time: the time of the current step, the same
    /// on every replay.
    pub fn current_time(&self) -> SystemTime {
        nanos_to_time(self.now_nanos())
    }

    /// [`current_time`](Self::current_time) in unix nanoseconds.
    pub fn now_nanos(&self) -> i64 {
        self.inner.host.now(self.inner.handle)
    }

    /// A deterministic UUID (the n-th call returns the same value on every
    /// replay).
    pub fn new_guid(&self) -> Result<String> {
        if self.inner.dead.get() {
            return Err(Error::new(ErrorKind::Aborted, "HostError", "orchestration aborted"));
        }
        let mut buf = [0u8; 36];
        let r = self.inner.host.new_guid(self.inner.handle, &mut buf);
        if r != 36 {
            return Err(self.host_error("new_guid", r as i64));
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// A pseudo-random generator seeded from [`new_guid`](Self::new_guid):
    /// replay-safe randomness.
    pub fn rng(&self) -> Result<Rng> {
        let g = self.new_guid()?;
        let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
        for b in g.bytes() {
            seed = (seed ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        Ok(Rng(seed | 1))
    }

    /// Writes a log message (at level 0 debug … 3 error); the host drops
    /// messages while replaying, so each appears once.
    pub fn log(&self, level: i32, msg: &str) {
        if !self.inner.dead.get() {
            self.inner.host.log(self.inner.handle, level, msg);
        }
    }

    /// Logs at info level.
    pub fn log_info(&self, msg: &str) {
        self.log(1, msg)
    }

    /// Logs at warn level.
    pub fn log_warn(&self, msg: &str) {
        self.log(2, msg)
    }

    fn host_error(&self, func: &str, c: i64) -> Error {
        if code::aborts(c) {
            self.inner.dead.set(true);
        }
        Error::host(func, c)
    }

    fn check(&self) -> Result<()> {
        if self.inner.dead.get() {
            Err(Error::new(ErrorKind::Aborted, "HostError", "orchestration aborted"))
        } else {
            Ok(())
        }
    }

    fn task<T>(&self, what: String, func: &str, r: Result<i32>) -> Task<T> {
        let (id, err) = match r {
            Ok(id) if id >= 0 => (id, None),
            Ok(c) => (-1, Some(self.host_error(func, c as i64))),
            Err(e) => (-1, Some(e)),
        };
        Task { ctx: self.inner.clone(), id, err, what: Rc::from(what), _t: PhantomData }
    }

    /// Schedules activity `name` with `input` (serialized to JSON); await
    /// the task for its output.
    pub fn call_activity<I: Serialize + ?Sized, O: DeserializeOwned>(&self, name: &str, input: &I) -> Task<O> {
        let r = self.check().and_then(|_| to_json(input)).map(|b| self.inner.host.schedule_activity(self.inner.handle, name, &b));
        self.task(format!("activity {}", name), "schedule_activity", r)
    }

    /// Like [`call_activity`](Self::call_activity), retrying failures with
    /// durable timers between attempts as `policy` says.
    pub async fn call_activity_with_retry<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        name: &str,
        input: &I,
        policy: &RetryPolicy,
    ) -> Result<O> {
        let input = to_json(input)?;
        policy
            .run(self, || {
                let r = self.check().map(|_| self.inner.host.schedule_activity(self.inner.handle, name, &input));
                self.task(format!("activity {}", name), "schedule_activity", r)
            })
            .await
    }

    /// Starts orchestrator `name` as a child instance with a deterministic
    /// id (`<parent id>:<task id>`); await the task for its output.
    pub fn call_sub_orchestrator<I: Serialize + ?Sized, O: DeserializeOwned>(&self, name: &str, input: &I) -> Task<O> {
        self.call_sub_orchestrator_with_id(name, "", input)
    }

    /// Starts orchestrator `name` as a child instance `instance_id`.
    pub fn call_sub_orchestrator_with_id<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        name: &str,
        instance_id: &str,
        input: &I,
    ) -> Task<O> {
        let r = self
            .check()
            .and_then(|_| to_json(input))
            .map(|b| self.inner.host.schedule_sub_orchestrator(self.inner.handle, name, instance_id, &b));
        self.task(format!("sub-orchestration {}", name), "schedule_sub_orchestrator", r)
    }

    /// Like [`call_sub_orchestrator`](Self::call_sub_orchestrator), with retries.
    pub async fn call_sub_orchestrator_with_retry<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        name: &str,
        input: &I,
        policy: &RetryPolicy,
    ) -> Result<O> {
        let input = to_json(input)?;
        policy
            .run(self, || {
                let r = self.check().map(|_| self.inner.host.schedule_sub_orchestrator(self.inner.handle, name, "", &input));
                self.task(format!("sub-orchestration {}", name), "schedule_sub_orchestrator", r)
            })
            .await
    }

    /// A durable timer that fires at `fire_at` (compute it from
    /// [`current_time`](Self::current_time)).
    pub fn create_timer(&self, fire_at: SystemTime) -> Task<()> {
        let r = self.check().map(|_| self.inner.host.create_timer(self.inner.handle, time_to_nanos(fire_at)));
        self.task("timer".into(), "create_timer", r)
    }

    /// A durable timer that fires `d` after the current (replay-safe) time.
    pub fn sleep(&self, d: Duration) -> Task<()> {
        self.create_timer(self.current_time() + d)
    }

    /// A task resolved by the next external event called `name`, with the
    /// event's data.
    pub fn wait_for_event<T: DeserializeOwned>(&self, name: &str) -> Task<T> {
        let r = self.check().map(|_| self.inner.host.wait_event(self.inner.handle, name));
        self.task(format!("event {}", name), "wait_event", r)
    }

    /// Waits for external event `name` for at most `timeout`; on timeout the
    /// wait is withdrawn (a later event is not consumed) and the result is an
    /// error for which [`Error::is_timeout`] is true.
    pub async fn wait_for_event_with_timeout<T: DeserializeOwned>(&self, name: &str, timeout: Duration) -> Result<T> {
        let ev = self.wait_for_event::<T>(name);
        let ev_id = ev.id;
        let timer = self.sleep(timeout);
        match crate::select2(ev, timer).await {
            crate::Either::Left(r) => r,
            crate::Either::Right(r) => {
                r?;
                self.cancel(ev_id);
                Err(Error::new(ErrorKind::Timeout, "Timeout", format!("event {} did not arrive within {:?}", name, timeout)))
            }
        }
    }

    /// Withdraws an unresolved event wait (see `cancel_task` in the ABI);
    /// does nothing for other tasks.
    pub fn cancel(&self, task_id: i32) {
        if task_id >= 0 && !self.inner.dead.get() {
            self.inner.host.cancel_task(self.inner.handle, task_id);
        }
    }

    /// Raises external event `name` with `data` on instance `instance_id`
    /// (fire and forget, delivered after this step commits).
    pub fn send_event<T: Serialize + ?Sized>(&self, instance_id: &str, name: &str, data: &T) -> Result<()> {
        self.check()?;
        let b = to_json(data)?;
        let r = self.inner.host.send_event(self.inner.handle, instance_id, name, &b);
        if r < 0 {
            return Err(self.host_error("send_event", r as i64));
        }
        Ok(())
    }

    /// Sets the instance's custom status, visible to clients.
    pub fn set_custom_status<T: Serialize + ?Sized>(&self, status: &T) -> Result<()> {
        self.check()?;
        let b = to_json(status)?;
        let r = self.inner.host.set_custom_status(self.inner.handle, &b);
        if r < 0 {
            return Err(self.host_error("set_custom_status", r as i64));
        }
        Ok(())
    }

    /// Ends this generation when the orchestrator returns: the instance
    /// starts again with `input` and a fresh history. The orchestrator's
    /// own return value is then ignored (return `Ok` of anything). With
    /// `keep_events`, events that arrived but were not consumed are kept.
    pub fn continue_as_new<T: Serialize + ?Sized>(&self, input: &T, keep_events: bool) -> Result<()> {
        let b = to_json(input)?;
        *self.inner.continued.borrow_mut() = Some((b, keep_events));
        Ok(())
    }

    /// Durable HTTP: the host performs `req` as the built-in activity
    /// `BuiltIn::HttpActivity` (ABI 11.2); request and response are in history.
    pub fn call_http(&self, req: &crate::http::HttpRequest) -> Task<crate::http::HttpResponse> {
        self.call_activity("BuiltIn::HttpActivity", req)
    }
}

/// A replay-safe xorshift pseudo-random generator from
/// [`OrchestrationContext::rng`].
pub struct Rng(u64);

impl Rng {
    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// A task scheduled with the host: an activity, sub-orchestration, timer or
/// event wait. Await it for its result; tasks are scheduled when created,
/// not when first awaited, so several can run at once (see
/// [`join_all`](crate::join_all), [`select`](crate::select)).
pub struct Task<T> {
    ctx: Rc<Inner>,
    id: i32,
    err: Option<Error>,
    what: Rc<str>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Task<T> {
    /// The host task id (-1 when the task could not be scheduled).
    pub fn id(&self) -> i32 {
        self.id
    }
}

impl<T: DeserializeOwned> Future for Task<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<T>> {
        if let Some(e) = self.err.take() {
            return Poll::Ready(Err(e));
        }
        let got = self.ctx.results.borrow_mut().remove(&self.id);
        match got {
            Some((host::RESULT_OK, payload)) => Poll::Ready(from_json(&payload)),
            Some((_, payload)) => {
                let details: FailureDetails = serde_json::from_slice(&payload)
                    .unwrap_or_else(|_| FailureDetails { message: String::from_utf8_lossy(&payload).into_owned(), ..Default::default() });
                Poll::Ready(Err(Error::task_failed(&self.what, details)))
            }
            None => {
                if self.ctx.dead.get() {
                    return Poll::Ready(Err(Error::new(ErrorKind::Aborted, "HostError", "orchestration aborted")));
                }
                self.ctx.waiting.borrow_mut().push(self.id);
                Poll::Pending
            }
        }
    }
}

pub(crate) type OrchFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>>>>>;

/// One orchestration held by the runtime.
pub(crate) struct Orchestration {
    pub(crate) ctx: OrchestrationContext,
    pub(crate) fut: OrchFuture,
}

pub(crate) fn noop_waker_pub() -> std::task::Waker {
    noop_waker()
}

fn noop_waker() -> std::task::Waker {
    use std::task::{RawWaker, RawWakerVTable, Waker};
    fn clone(_: *const ()) -> RawWaker {
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    fn noop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

pub(crate) enum Outcome {
    Parked,
    Finished,
}

impl Orchestration {
    /// Runs the orchestration until it parks or finishes (ABI 9.2): poll the
    /// future; when pending, ask the host which awaited task resolved first,
    /// fetch its result and poll again.
    pub(crate) fn drive(&mut self) -> Outcome {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let inner = self.ctx.inner.clone();
        let h = inner.handle;
        loop {
            inner.waiting.borrow_mut().clear();
            let r = self.fut.as_mut().poll(&mut cx);
            if inner.dead.get() {
                return Outcome::Finished;
            }
            match r {
                Poll::Ready(r) => {
                    self.finish(r);
                    return Outcome::Finished;
                }
                Poll::Pending => {
                    let mut ids = std::mem::take(&mut *inner.waiting.borrow_mut());
                    ids.sort_unstable();
                    ids.dedup();
                    if ids.is_empty() {
                        // Waiting on nothing the host knows: stays Running until an event.
                        return Outcome::Parked;
                    }
                    let i = inner.host.poll(h, &ids);
                    if i == code::POLL_NONE {
                        return Outcome::Parked;
                    }
                    if i < 0 || i as usize >= ids.len() {
                        self.fail_hard("poll", i as i64);
                        return Outcome::Finished;
                    }
                    let id = ids[i as usize];
                    let (r, payload) = buffered(|buf| inner.host.task_result(h, id, buf));
                    if r < 0 {
                        self.fail_hard("task_result", r);
                        return Outcome::Finished;
                    }
                    inner.results.borrow_mut().insert(id, (r >> 32, payload));
                }
            }
        }
    }

    fn fail_hard(&self, func: &str, c: i64) {
        let inner = &self.ctx.inner;
        if code::aborts(c) {
            inner.dead.set(true);
            return;
        }
        let e = Error::host(func, c);
        inner.host.complete(inner.handle, host::COMPLETE_FAILED, &e.to_json());
        inner.dead.set(true);
    }

    fn finish(&self, r: Result<Vec<u8>>) {
        let inner = &self.ctx.inner;
        let h = inner.handle;
        if let Some((input, keep)) = inner.continued.borrow_mut().take() {
            if r.is_ok() {
                inner.host.continue_as_new(h, &input, keep as i32);
                inner.dead.set(true);
                return;
            }
        }
        match r {
            Ok(out) => {
                inner.host.complete(h, host::COMPLETE_OK, &out);
            }
            Err(e) => {
                if e.kind() == &ErrorKind::Aborted {
                    // The host already failed it.
                } else {
                    let mut d = e.details().clone();
                    if d.error_type.is_empty() {
                        d.error_type = "OrchestratorError".into();
                    }
                    let b = serde_json::to_vec(&d).unwrap_or_default();
                    inner.host.complete(h, host::COMPLETE_FAILED, &b);
                }
            }
        }
        inner.dead.set(true);
    }
}
