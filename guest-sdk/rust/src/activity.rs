//! Activities: ordinary async functions with capabilities (config, logs,
//! HTTP). HTTP requests park the activity on ErrPending (ABI 11.1) and the
//! runtime polls it again on `activity_resume`.

use crate::error::{Error, ErrorKind, Result};
use crate::host::{self, buffered, code, Host};
use crate::http::{HttpRequest, HttpResponse};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

pub(crate) struct ActInner {
    pub(crate) host: Rc<dyn Host>,
    pub(crate) handle: i32,
    pub(crate) instance_id: String,
    pub(crate) name: String,
    pub(crate) task_id: i32,
    /// Set by a capability call that returned ErrPending during this poll.
    pub(crate) parked: Cell<bool>,
    pub(crate) dead: Cell<bool>,
}

/// What an activity can do besides computing: its identity, configuration,
/// logs and HTTP. Cheap to clone.
#[derive(Clone)]
pub struct ActivityContext {
    pub(crate) inner: Rc<ActInner>,
}

impl ActivityContext {
    /// The instance id of the orchestration that scheduled the activity.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    /// The activity name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The task id in the orchestration's history; (instance id, task id)
    /// is an idempotency key, since delivery is at least once.
    pub fn task_id(&self) -> i32 {
        self.inner.task_id
    }

    /// Writes a log message at level 0 debug … 3 error.
    pub fn log(&self, level: i32, msg: &str) {
        if !self.inner.dead.get() {
            self.inner.host.log(self.inner.handle, level, msg)
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

    /// Logs at error level.
    pub fn log_error(&self, msg: &str) {
        self.log(3, msg)
    }

    /// The configuration value `key` the module was deployed with
    /// (`durablewasm deploy --config key=value`), None when absent.
    pub fn config(&self, key: &str) -> Result<Option<String>> {
        let (r, b) = buffered(|buf| self.inner.host.get_config(self.inner.handle, key, buf));
        match r {
            code::ERR_NOT_FOUND => Ok(None),
            r if r < 0 => Err(Error::host("get_config", r)),
            _ => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        }
    }

    /// The management URLs (HttpManagementPayload JSON) of instance `id`, or
    /// of the activity's own orchestration when `id` is empty.
    pub fn management_urls(&self, id: &str) -> Result<serde_json::Value> {
        let (r, b) = buffered(|buf| self.inner.host.management_urls(self.inner.handle, id, buf));
        if r < 0 {
            return Err(Error::host("management_urls", r));
        }
        crate::orchestration::from_json(&b)
    }

    /// Performs an HTTP request through the host (its allowlist applies).
    /// The activity parks while the request runs and other activities use
    /// the module instance. A refusal, timeout or network failure is an
    /// error of type "HTTPError"; any status is a response.
    pub fn http(&self, req: &HttpRequest) -> HttpFuture {
        let req = serde_json::to_vec(req).unwrap_or_default();
        HttpFuture { ctx: self.inner.clone(), req, cap: 4096 }
    }
}

/// The future of [`ActivityContext::http`].
pub struct HttpFuture {
    ctx: Rc<ActInner>,
    req: Vec<u8>,
    cap: usize,
}

impl Future for HttpFuture {
    type Output = Result<HttpResponse>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<HttpResponse>> {
        if self.ctx.dead.get() {
            return Poll::Ready(Err(Error::new(ErrorKind::Aborted, "HostError", "activity dropped")));
        }
        loop {
            let mut buf = vec![0u8; self.cap];
            // The repeat after activity_resume is byte for byte the same call.
            let r = self.ctx.host.http_request(self.ctx.handle, &self.req, &mut buf);
            if r == code::ERR_PENDING {
                self.ctx.parked.set(true);
                return Poll::Pending;
            }
            if r < 0 {
                return Poll::Ready(Err(Error::host("http_request", r)));
            }
            let n = r as usize;
            if n > buf.len() {
                self.cap = n;
                continue;
            }
            buf.truncate(n);
            let resp: HttpResponse = match serde_json::from_slice(&buf) {
                Ok(v) => v,
                Err(e) => return Poll::Ready(Err(Error::json("http response", e))),
            };
            if !resp.error.is_empty() {
                return Poll::Ready(Err(Error::with_type("HTTPError", &resp.error)));
            }
            return Poll::Ready(Ok(resp));
        }
    }
}

pub(crate) type ActFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>>>>>;

/// One activity run held by the runtime while parked.
pub(crate) struct ActivityRun {
    pub(crate) ctx: ActivityContext,
    pub(crate) fut: ActFuture,
}

impl ActivityRun {
    /// Polls the activity: returns `status::OK` after reporting with
    /// `complete`, `status::PARKED` when it waits on a host call.
    pub(crate) fn drive(&mut self) -> i32 {
        let waker = crate::orchestration::noop_waker_pub();
        let mut cx = Context::from_waker(&waker);
        let inner = &self.ctx.inner;
        inner.parked.set(false);
        match self.fut.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(out)) => {
                inner.host.complete(inner.handle, host::COMPLETE_OK, &out);
                host::status::OK
            }
            Poll::Ready(Err(e)) => {
                let mut d = e.details().clone();
                if d.error_type.is_empty() {
                    d.error_type = "ActivityError".into();
                }
                inner.host.complete(inner.handle, host::COMPLETE_FAILED, &serde_json::to_vec(&d).unwrap_or_default());
                host::status::OK
            }
            Poll::Pending if inner.parked.get() => host::status::PARKED,
            Poll::Pending => {
                let e = Error::with_type(
                    "ActivityError",
                    "the activity awaited a future that is not a host call (activities may await only the SDK's capability calls)",
                );
                inner.host.complete(inner.handle, host::COMPLETE_FAILED, &e.to_json());
                host::status::OK
            }
        }
    }
}
