//! A native test harness: run orchestrators with `cargo test`, against a
//! fake host with a fake clock (like the Go SDK's durabletest).
//!
//! ```ignore
//! let mut env = Env::new(my_samples::register);
//! env.on_activity("E1_SayHello", |name| Ok(json!(format!("Hi {}", name.as_str().unwrap()))));
//! let r = env.run("E1_HelloSequence", &());
//! assert_eq!(r.output::<Vec<String>>().unwrap()[0], "Hi Tokyo");
//! ```
//!
//! Activities run as registered (or as mocked with [`Env::on_activity`]);
//! timers fire when nothing else can happen, by moving the fake clock to
//! their fire time, so a test of a one-day timeout takes microseconds.
//! Sub-orchestrations run in the same environment. Events are raised with
//! [`Env::raise_event`] (at once) or [`Env::raise_event_after`] (at a fake time).

use crate::error::{Error, FailureDetails, Result};
use crate::host::{self, Host};
use crate::registry::Registry;
use crate::runtime::{encode_frames, Runtime};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

/// The fake clock's start when [`Env::start_time`] is not set:
/// 2024-01-01T00:00:00Z.
pub const DEFAULT_START_NANOS: i64 = 1_704_067_200_000_000_000;

/// The kind of a recorded scheduling call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// `call_activity`.
    Activity,
    /// `call_sub_orchestrator`.
    SubOrchestration,
    /// `create_timer` / `sleep`.
    Timer,
    /// `wait_for_event`.
    WaitEvent,
    /// `send_event`.
    SendEvent,
}

/// One scheduling call of the root orchestration, in call order.
#[derive(Clone, Debug)]
pub struct Call {
    /// What was called.
    pub kind: CallKind,
    /// Activity, orchestrator or event name ("" for timers).
    pub name: String,
    /// The JSON input (activity, sub-orchestration) or data (send_event).
    pub input: String,
    /// Timers: the fire time in unix nanoseconds.
    pub fire_at: i64,
    /// The fake time of the call.
    pub at: i64,
    /// The task id.
    pub task_id: i32,
}

/// How the root orchestration ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// It completed; see [`RunResult::output`].
    Completed,
    /// It failed; see [`RunResult::failure`].
    Failed,
    /// It waits for something that will never happen in this test (an event
    /// nobody raises).
    Running,
}

/// The outcome of [`Env::run`].
#[derive(Debug)]
pub struct RunResult {
    /// How the root orchestration ended.
    pub status: Status,
    /// The output JSON (Completed).
    pub raw_output: String,
    /// The failure (Failed).
    pub failure: Option<FailureDetails>,
    /// The root's scheduling calls, across continue-as-new generations.
    pub calls: Vec<Call>,
    /// The last custom status JSON set.
    pub custom_status: String,
    /// Log messages (orchestrations and activities), in order.
    pub logs: Vec<String>,
    /// Number of continue-as-new generations after the first.
    pub continued: usize,
    /// The fake time when the run ended.
    pub end: i64,
    /// The fake time when the run started.
    pub start: i64,
}

impl RunResult {
    /// Decodes the output; an error when the orchestration did not complete.
    pub fn output<T: DeserializeOwned>(&self) -> Result<T> {
        if self.status != Status::Completed {
            return Err(Error::msg(format!("orchestration {:?}: {:?}", self.status, self.failure)));
        }
        crate::orchestration::from_json(self.raw_output.as_bytes())
    }

    /// The recorded calls of one kind.
    pub fn calls_of(&self, kind: CallKind) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.kind == kind).collect()
    }

    /// Fake time elapsed from start to end.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos((self.end - self.start).max(0) as u64)
    }
}

type Mock = Rc<dyn Fn(Value) -> Result<Value>>;

/// A test environment: a registry, activity mocks, scheduled events and a
/// fake clock.
pub struct Env {
    registry: Registry,
    mocks: HashMap<String, Mock>,
    /// The fake clock's start, unix nanoseconds.
    pub start_time: i64,
    /// Configuration values activities read with `config`.
    pub config: HashMap<String, String>,
    events: Vec<(i64, String, Vec<u8>)>,
}

#[derive(Default)]
struct Task {
    resolved: Option<(i64, Vec<u8>, u64)>,
}

struct Inst {
    id: String,
    name: String,
    handle: i32,
    tasks: Vec<Task>,
    waits: VecDeque<(String, i32)>,
    buffered: Vec<(String, Vec<u8>)>,
    outcome: Option<(i32, Vec<u8>)>,
    continued: Option<(Vec<u8>, bool)>,
    parent: Option<(usize, i32)>,
    root: bool,
}

enum Work {
    Activity { inst: usize, task: i32, name: String, input: Vec<u8> },
    Child { parent: usize, task: i32, name: String, id: String, input: Vec<u8> },
}

#[derive(Default)]
struct State {
    clock: i64,
    seq: u64,
    next_handle: i32,
    insts: Vec<Inst>,
    by_handle: HashMap<i32, usize>,
    /// Activity handle → its reported result.
    act_results: HashMap<i32, Option<(i32, Vec<u8>)>>,
    work: VecDeque<Work>,
    timers: Vec<(i64, usize, i32)>,
    to_resume: Vec<usize>,
    calls: Vec<Call>,
    custom_status: String,
    logs: Vec<String>,
    guids: u64,
    continued: usize,
    config: HashMap<String, String>,
}

struct Fake(RefCell<State>);

impl Fake {
    fn orch<R>(&self, h: i32, f: impl FnOnce(&mut State, usize) -> R) -> Option<R> {
        let mut s = self.0.borrow_mut();
        let i = *s.by_handle.get(&h)?;
        if s.insts[i].outcome.is_some() || s.insts[i].continued.is_some() {
            return None;
        }
        Some(f(&mut s, i))
    }

    fn new_task(s: &mut State, i: usize, call: Option<Call>) -> i32 {
        let id = s.insts[i].tasks.len() as i32;
        s.insts[i].tasks.push(Task::default());
        if let Some(mut c) = call {
            if s.insts[i].root {
                c.task_id = id;
                c.at = s.clock;
                s.calls.push(c);
            }
        }
        id
    }

    fn resolve(s: &mut State, i: usize, task: i32, kind: i64, payload: Vec<u8>) {
        s.seq += 1;
        let seq = s.seq;
        s.insts[i].tasks[task as usize].resolved = Some((kind, payload, seq));
        s.to_resume.push(i);
    }
}

fn call(kind: CallKind, name: &str, input: &[u8], fire_at: i64) -> Option<Call> {
    Some(Call { kind, name: name.into(), input: String::from_utf8_lossy(input).into_owned(), fire_at, at: 0, task_id: 0 })
}

impl Host for Fake {
    fn register(&self, _: i32, _: &str) {}
    fn schedule_activity(&self, h: i32, name: &str, input: &[u8]) -> i32 {
        self.orch(h, |s, i| {
            let t = Fake::new_task(s, i, call(CallKind::Activity, name, input, 0));
            s.work.push_back(Work::Activity { inst: i, task: t, name: name.into(), input: input.to_vec() });
            t
        })
        .unwrap_or(-2)
    }
    fn schedule_sub_orchestrator(&self, h: i32, name: &str, id: &str, input: &[u8]) -> i32 {
        self.orch(h, |s, i| {
            let t = Fake::new_task(s, i, call(CallKind::SubOrchestration, name, input, 0));
            let id = if id.is_empty() { format!("{}:{}", s.insts[i].id, t) } else { id.to_string() };
            s.work.push_back(Work::Child { parent: i, task: t, name: name.into(), id, input: input.to_vec() });
            t
        })
        .unwrap_or(-2)
    }
    fn create_timer(&self, h: i32, fire_at: i64) -> i32 {
        self.orch(h, |s, i| {
            let t = Fake::new_task(s, i, call(CallKind::Timer, "", b"", fire_at));
            s.timers.push((fire_at, i, t));
            t
        })
        .unwrap_or(-2)
    }
    fn wait_event(&self, h: i32, name: &str) -> i32 {
        self.orch(h, |s, i| {
            let t = Fake::new_task(s, i, call(CallKind::WaitEvent, name, b"", 0));
            if let Some(p) = s.insts[i].buffered.iter().position(|(n, _)| n == name) {
                let (_, data) = s.insts[i].buffered.remove(p);
                Fake::resolve(s, i, t, host::RESULT_OK, data);
            } else {
                s.insts[i].waits.push_back((name.to_string(), t));
            }
            t
        })
        .unwrap_or(-2)
    }
    fn cancel_task(&self, h: i32, task: i32) -> i32 {
        self.orch(h, |s, i| {
            s.insts[i].waits.retain(|(_, t)| *t != task);
            0
        })
        .unwrap_or(-2)
    }
    fn send_event(&self, h: i32, id: &str, name: &str, data: &[u8]) -> i32 {
        self.orch(h, |s, i| {
            let t = Fake::new_task(s, i, call(CallKind::SendEvent, name, data, 0));
            Fake::resolve(s, i, t, host::RESULT_OK, Vec::new());
            if let Some(j) = s.insts.iter().rposition(|x| x.id == id) {
                deliver(s, j, name, data.to_vec());
            }
            t
        })
        .unwrap_or(-2)
    }
    fn poll(&self, h: i32, ids: &[i32]) -> i32 {
        self.orch(h, |s, i| {
            let mut best: Option<(u64, usize)> = None;
            for (k, id) in ids.iter().enumerate() {
                match s.insts[i].tasks.get(*id as usize) {
                    None => return -5,
                    Some(Task { resolved: Some((_, _, seq)) }) => {
                        if best.map_or(true, |(b, _)| *seq < b) {
                            best = Some((*seq, k));
                        }
                    }
                    _ => {}
                }
            }
            best.map_or(-1, |(_, k)| k as i32)
        })
        .unwrap_or(-2)
    }
    fn task_result(&self, h: i32, task: i32, buf: &mut [u8]) -> i64 {
        let s = self.0.borrow();
        let i = match s.by_handle.get(&h) {
            Some(i) => *i,
            None => return -2,
        };
        match s.insts[i].tasks.get(task as usize) {
            None => -5,
            Some(Task { resolved: None }) => 0,
            Some(Task { resolved: Some((kind, p, _)) }) => {
                if p.len() <= buf.len() {
                    buf[..p.len()].copy_from_slice(p);
                }
                kind << 32 | p.len() as i64
            }
        }
    }
    fn now(&self, _: i32) -> i64 {
        self.0.borrow().clock
    }
    fn new_guid(&self, _: i32, buf: &mut [u8; 36]) -> i32 {
        let mut s = self.0.borrow_mut();
        s.guids += 1;
        let g = format!("00000000-0000-5000-8000-{:012x}", s.guids);
        buf.copy_from_slice(g.as_bytes());
        36
    }
    fn is_replaying(&self, _: i32) -> i32 {
        0
    }
    fn set_custom_status(&self, h: i32, st: &[u8]) -> i32 {
        self.orch(h, |s, i| {
            if s.insts[i].root {
                s.custom_status = String::from_utf8_lossy(st).into_owned();
            }
            0
        })
        .unwrap_or(-2)
    }
    fn continue_as_new(&self, h: i32, input: &[u8], keep: i32) -> i32 {
        self.orch(h, |s, i| {
            s.insts[i].continued = Some((input.to_vec(), keep != 0));
            0
        })
        .unwrap_or(-2)
    }
    fn complete(&self, h: i32, status: i32, p: &[u8]) -> i32 {
        let mut s = self.0.borrow_mut();
        if let Some(r) = s.act_results.get_mut(&h) {
            if r.is_some() {
                return -2;
            }
            *r = Some((status, p.to_vec()));
            return 0;
        }
        drop(s);
        self.orch(h, |s, i| {
            s.insts[i].outcome = Some((status, p.to_vec()));
            0
        })
        .unwrap_or(-2)
    }
    fn log(&self, _: i32, level: i32, msg: &str) {
        let l = ["DEBUG", "INFO", "WARN", "ERROR"].get(level as usize).unwrap_or(&"INFO");
        self.0.borrow_mut().logs.push(format!("{} {}", l, msg));
    }
    fn get_config(&self, _: i32, key: &str, buf: &mut [u8]) -> i64 {
        match self.0.borrow().config.get(key) {
            None => host::code::ERR_NOT_FOUND,
            Some(v) => {
                if v.len() <= buf.len() {
                    buf[..v.len()].copy_from_slice(v.as_bytes());
                }
                v.len() as i64
            }
        }
    }
    fn http_request(&self, _: i32, _: &[u8], buf: &mut [u8]) -> i64 {
        let r = br#"{"error":"no HTTP in durablewasm::testing (mock the activity with Env::on_activity)"}"#;
        if r.len() <= buf.len() {
            buf[..r.len()].copy_from_slice(r);
        }
        r.len() as i64
    }
    fn management_urls(&self, _: i32, _: &str, _: &mut [u8]) -> i64 {
        host::code::ERR_UNAVAILABLE
    }
}

fn deliver(s: &mut State, i: usize, name: &str, data: Vec<u8>) {
    if s.insts[i].outcome.is_some() {
        return;
    }
    if let Some(p) = s.insts[i].waits.iter().position(|(n, _)| n == name) {
        let (_, t) = s.insts[i].waits.remove(p).unwrap();
        Fake::resolve(s, i, t, host::RESULT_OK, data);
    } else {
        s.insts[i].buffered.push((name.to_string(), data));
    }
}

/// The most continue-as-new generations a run may have.
const MAX_GENERATIONS: usize = 10_000;

impl Env {
    /// An environment with the functions `register` registers.
    pub fn new(register: fn(&mut Registry)) -> Env {
        let mut registry = Registry::new();
        register(&mut registry);
        Env { registry, mocks: HashMap::new(), start_time: DEFAULT_START_NANOS, config: HashMap::new(), events: Vec::new() }
    }

    /// The registry, to add functions.
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Answers activity `name` with `f` (input and output as JSON values)
    /// instead of running it.
    pub fn on_activity(&mut self, name: &str, f: impl Fn(Value) -> Result<Value> + 'static) -> &mut Env {
        self.mocks.insert(name.to_string(), Rc::new(f));
        self
    }

    /// Raises event `name` on the root orchestration when the run starts.
    pub fn raise_event<T: Serialize + ?Sized>(&mut self, name: &str, data: &T) -> &mut Env {
        self.raise_event_after(Duration::ZERO, name, data)
    }

    /// Raises event `name` on the root orchestration when the fake clock
    /// reaches start + `d`.
    pub fn raise_event_after<T: Serialize + ?Sized>(&mut self, d: Duration, name: &str, data: &T) -> &mut Env {
        let data = serde_json::to_vec(data).expect("event data");
        self.events.push((d.as_nanos() as i64, name.to_string(), data));
        self
    }

    /// The fake start time as a SystemTime.
    pub fn start(&self) -> SystemTime {
        crate::time::from_nanos(self.start_time)
    }

    /// Runs orchestrator `name` with `input` as the root orchestration (id
    /// "test") until it finishes or nothing more can happen.
    pub fn run<T: Serialize + ?Sized>(&self, name: &str, input: &T) -> RunResult {
        let fake = Rc::new(Fake(RefCell::new(State { clock: self.start_time, config: self.config.clone(), ..Default::default() })));
        let mut rt = Runtime::new(fake.clone(), self.registry.clone());
        let input = serde_json::to_vec(input).expect("input");
        let mut events: Vec<(i64, String, Vec<u8>)> = self.events.iter().map(|(d, n, b)| (self.start_time + d, n.clone(), b.clone())).collect();
        events.sort_by_key(|e| e.0);
        let mut events: VecDeque<_> = events.into();
        self.start_inst(&fake, &mut rt, "test", name, &input, None, true, Vec::new());
        loop {
            {
                let s = fake.0.borrow();
                if s.insts.iter().rev().find(|x| x.root).map_or(true, |r| r.outcome.is_some()) || s.continued > MAX_GENERATIONS {
                    break;
                }
            }
            // Due events.
            loop {
                let now = fake.0.borrow().clock;
                match events.front() {
                    Some((at, _, _)) if *at <= now => {
                        let (_, n, d) = events.pop_front().unwrap();
                        let mut s = fake.0.borrow_mut();
                        let r = s.insts.len() - s.insts.iter().rev().position(|x| x.root).unwrap() - 1;
                        deliver(&mut s, r, &n, d);
                    }
                    _ => break,
                }
            }
            let work = fake.0.borrow_mut().work.pop_front();
            if let Some(w) = work {
                self.do_work(&fake, &mut rt, w);
                continue;
            }
            let resume: Vec<usize> = std::mem::take(&mut fake.0.borrow_mut().to_resume);
            if !resume.is_empty() {
                let mut seen = Vec::new();
                for i in resume {
                    if seen.contains(&i) {
                        continue;
                    }
                    seen.push(i);
                    let (h, live) = {
                        let s = fake.0.borrow();
                        (s.insts[i].handle, s.insts[i].outcome.is_none() && s.insts[i].continued.is_none())
                    };
                    if live {
                        rt.resume(h);
                        self.after_step(&fake, &mut rt, i);
                    }
                }
                continue;
            }
            // Nothing runnable: move the clock to the next timer or event.
            let next_timer = {
                let s = fake.0.borrow();
                s.timers.iter().filter(|t| s.insts[t.1].outcome.is_none() && s.insts[t.1].continued.is_none()).map(|t| t.0).min()
            };
            let next_event = events.front().map(|e| e.0);
            let next = match (next_timer, next_event) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            let mut s = fake.0.borrow_mut();
            if next > s.clock {
                s.clock = next;
            }
            let now = s.clock;
            let due: Vec<(i64, usize, i32)> = s.timers.iter().filter(|t| t.0 <= now).cloned().collect();
            s.timers.retain(|t| t.0 > now);
            for (_, i, t) in due {
                if s.insts[i].outcome.is_none() && s.insts[i].continued.is_none() {
                    Fake::resolve(&mut s, i, t, host::RESULT_OK, Vec::new());
                }
            }
        }
        let s = fake.0.borrow();
        let r = s.insts.iter().rev().find(|x| x.root).unwrap();
        let (status, raw_output, failure) = match &r.outcome {
            Some((host::COMPLETE_OK, p)) => (Status::Completed, String::from_utf8_lossy(p).into_owned(), None),
            Some((_, p)) => (Status::Failed, String::new(), Some(serde_json::from_slice(p).unwrap_or_else(|_| FailureDetails { message: String::from_utf8_lossy(p).into_owned(), ..Default::default() }))),
            None => (Status::Running, String::new(), None),
        };
        RunResult {
            status,
            raw_output,
            failure,
            calls: s.calls.clone(),
            custom_status: s.custom_status.clone(),
            logs: s.logs.clone(),
            continued: s.continued,
            end: s.clock,
            start: self.start_time,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start_inst(&self, fake: &Rc<Fake>, rt: &mut Runtime, id: &str, name: &str, input: &[u8], parent: Option<(usize, i32)>, root: bool, buffered: Vec<(String, Vec<u8>)>) -> usize {
        let (i, h) = {
            let mut s = fake.0.borrow_mut();
            s.next_handle += 1;
            let h = s.next_handle;
            s.insts.push(Inst { id: id.into(), name: name.into(), handle: h, tasks: Vec::new(), waits: VecDeque::new(), buffered, outcome: None, continued: None, parent, root });
            let i = s.insts.len() - 1;
            s.by_handle.insert(h, i);
            (i, h)
        };
        let req = encode_frames(&[id.as_bytes(), name.as_bytes(), input]);
        let st = rt.start(h, &req);
        if st == host::status::UNKNOWN_FUNCTION {
            let mut s = fake.0.borrow_mut();
            let f = FailureDetails { message: format!("no orchestrator {}", name), error_type: "UnknownOrchestrator".into(), code: "DW2003".into(), ..Default::default() };
            s.insts[i].outcome = Some((host::COMPLETE_FAILED, serde_json::to_vec(&f).unwrap()));
        }
        self.after_step(fake, rt, i);
        i
    }

    /// Handles a finished or continued instance after a step; true when it
    /// continued as new.
    fn after_step(&self, fake: &Rc<Fake>, rt: &mut Runtime, i: usize) -> bool {
        let (cont, outcome, parent, h) = {
            let s = fake.0.borrow();
            let x = &s.insts[i];
            (x.continued.clone(), x.outcome.clone(), x.parent, x.handle)
        };
        if let Some((input, keep)) = cont {
            rt.drop_orchestration(h);
            let (id, name, root, buffered) = {
                let mut s = fake.0.borrow_mut();
                if s.insts[i].root {
                    s.continued += 1;
                }
                s.timers.retain(|t| t.1 != i);
                let x = &mut s.insts[i];
                let b = if keep { std::mem::take(&mut x.buffered) } else { Vec::new() };
                (x.id.clone(), x.name.clone(), x.root, b)
            };
            let j = self.start_inst(fake, rt, &id, &name, &input, parent, root, buffered);
            // The old generation is no longer the root.
            fake.0.borrow_mut().insts[i].root = false;
            let _ = j;
            return true;
        }
        if let Some((status, payload)) = outcome {
            rt.drop_orchestration(h);
            if let Some((p, t)) = parent {
                let mut s = fake.0.borrow_mut();
                Fake::resolve(&mut s, p, t, if status == host::COMPLETE_OK { host::RESULT_OK } else { host::RESULT_FAILED }, payload);
            }
        }
        false
    }

    fn do_work(&self, fake: &Rc<Fake>, rt: &mut Runtime, w: Work) {
        match w {
            Work::Child { parent, task, name, id, input } => {
                self.start_inst(fake, rt, &id, &name, &input, Some((parent, task)), false, Vec::new());
            }
            Work::Activity { inst, task, name, input } => {
                let (kind, payload) = if let Some(m) = self.mocks.get(&name) {
                    let v: Value = if input.is_empty() { Value::Null } else { serde_json::from_slice(&input).unwrap_or(Value::Null) };
                    match m(v) {
                        Ok(v) => (host::RESULT_OK, serde_json::to_vec(&v).unwrap()),
                        Err(e) => (host::RESULT_FAILED, e.to_json()),
                    }
                } else {
                    let h = {
                        let mut s = fake.0.borrow_mut();
                        s.next_handle += 1;
                        let h = s.next_handle;
                        s.act_results.insert(h, None);
                        h
                    };
                    let id = fake.0.borrow().insts[inst].id.clone();
                    let tid = task.to_string();
                    let req = encode_frames(&[id.as_bytes(), name.as_bytes(), &input, tid.as_bytes()]);
                    let mut st = rt.run_activity(h, &req);
                    while st == host::status::PARKED {
                        st = rt.resume_activity(h);
                    }
                    let r = fake.0.borrow_mut().act_results.remove(&h).flatten();
                    match (st, r) {
                        (host::status::UNKNOWN_FUNCTION, _) => (
                            host::RESULT_FAILED,
                            serde_json::to_vec(&FailureDetails { message: format!("no activity {}", name), error_type: "UnknownActivity".into(), ..Default::default() }).unwrap(),
                        ),
                        (_, Some((host::COMPLETE_OK, p))) => (host::RESULT_OK, p),
                        (_, Some((_, p))) => (host::RESULT_FAILED, p),
                        (_, None) => (host::RESULT_FAILED, br#"{"message":"activity returned without reporting a result"}"#.to_vec()),
                    }
                };
                let mut s = fake.0.borrow_mut();
                if s.insts[inst].outcome.is_none() && s.insts[inst].continued.is_none() {
                    Fake::resolve(&mut s, inst, task, kind, payload);
                }
            }
        }
    }
}
