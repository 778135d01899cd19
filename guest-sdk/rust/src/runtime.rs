//! The guest side of the exports (ABI section 3), independent of Wasm so
//! that the test harness drives it natively.

use crate::activity::{ActInner, ActivityContext, ActivityRun};
use crate::host::{status, Host};
use crate::orchestration::{OrchestrationContext, Orchestration, Outcome};
use crate::registry::Registry;
use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

/// Decodes exactly `n` frames (4-byte little-endian length + bytes).
pub(crate) fn decode_frames(mut b: &[u8], n: usize) -> Option<Vec<&[u8]>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if b.len() < 4 {
            return None;
        }
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        b = &b[4..];
        if b.len() < len {
            return None;
        }
        out.push(&b[..len]);
        b = &b[len..];
    }
    if b.is_empty() {
        Some(out)
    } else {
        None
    }
}

/// Encodes frames (used by the test harness).
#[allow(dead_code)]
pub(crate) fn encode_frames(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// The state of one module instance: its registry and the orchestrations
/// and parked activities it holds, by handle.
pub struct Runtime {
    host: Rc<dyn Host>,
    registry: Registry,
    orchestrations: HashMap<i32, Orchestration>,
    activities: HashMap<i32, ActivityRun>,
}

fn utf8(b: &[u8]) -> Option<String> {
    String::from_utf8(b.to_vec()).ok()
}

impl Runtime {
    /// A runtime serving `registry` over `host`.
    pub fn new(host: Rc<dyn Host>, registry: Registry) -> Runtime {
        Runtime { host, registry, orchestrations: HashMap::new(), activities: HashMap::new() }
    }

    /// `durablewasm_list_functions`.
    pub fn list_functions(&mut self) -> i32 {
        for (kind, name) in self.registry.functions() {
            self.host.register(*kind, name);
        }
        status::OK
    }

    /// `durablewasm_orchestrator_start`.
    pub fn start(&mut self, handle: i32, req: &[u8]) -> i32 {
        let f = match decode_frames(req, 3) {
            Some(f) => f,
            None => return status::BAD_REQUEST,
        };
        let (id, name) = match (utf8(f[0]), utf8(f[1])) {
            (Some(i), Some(n)) => (i, n),
            _ => return status::BAD_REQUEST,
        };
        if self.orchestrations.contains_key(&handle) {
            return status::BAD_REQUEST;
        }
        let func = match self.registry.orchestrators.get(&name) {
            Some(f) => f.clone(),
            None => return status::UNKNOWN_FUNCTION,
        };
        let ctx = OrchestrationContext::new(self.host.clone(), handle, id, name);
        let fut = func(ctx.clone(), f[2]);
        let mut o = Orchestration { ctx, fut };
        if let Outcome::Parked = o.drive() {
            self.orchestrations.insert(handle, o);
        }
        status::OK
    }

    /// `durablewasm_orchestrator_resume`.
    pub fn resume(&mut self, handle: i32) -> i32 {
        let mut o = match self.orchestrations.remove(&handle) {
            Some(o) => o,
            None => return status::UNKNOWN_HANDLE,
        };
        if let Outcome::Parked = o.drive() {
            self.orchestrations.insert(handle, o);
        }
        status::OK
    }

    /// `durablewasm_orchestrator_drop`: forget the orchestration without
    /// host calls.
    pub fn drop_orchestration(&mut self, handle: i32) -> i32 {
        if let Some(o) = self.orchestrations.remove(&handle) {
            o.ctx.inner.dead.set(true);
            drop(o);
        }
        status::OK
    }

    /// `durablewasm_activity_run`.
    pub fn run_activity(&mut self, handle: i32, req: &[u8]) -> i32 {
        let f = match decode_frames(req, 4) {
            Some(f) => f,
            None => return status::BAD_REQUEST,
        };
        let (id, name, task) = match (utf8(f[0]), utf8(f[1]), utf8(f[3]).and_then(|s| s.parse::<i32>().ok())) {
            (Some(i), Some(n), Some(t)) => (i, n, t),
            _ => return status::BAD_REQUEST,
        };
        let func = match self.registry.activities.get(&name) {
            Some(f) => f.clone(),
            None => return status::UNKNOWN_FUNCTION,
        };
        let ctx = ActivityContext {
            inner: Rc::new(ActInner {
                host: self.host.clone(),
                handle,
                instance_id: id,
                name,
                task_id: task,
                parked: Cell::new(false),
                dead: Cell::new(false),
            }),
        };
        let fut = func(ctx.clone(), f[2]);
        let mut run = ActivityRun { ctx, fut };
        let st = run.drive();
        if st == status::PARKED {
            self.activities.insert(handle, run);
        }
        st
    }

    /// `durablewasm_activity_resume`.
    pub fn resume_activity(&mut self, handle: i32) -> i32 {
        let mut run = match self.activities.remove(&handle) {
            Some(r) => r,
            None => return status::UNKNOWN_HANDLE,
        };
        let st = run.drive();
        if st == status::PARKED {
            self.activities.insert(handle, run);
        }
        st
    }

    /// `durablewasm_activity_drop`.
    pub fn drop_activity(&mut self, handle: i32) -> i32 {
        if let Some(r) = self.activities.remove(&handle) {
            r.ctx.inner.dead.set(true);
        }
        status::OK
    }

    /// Number of orchestrations held (parked).
    pub fn held(&self) -> usize {
        self.orchestrations.len()
    }
}
