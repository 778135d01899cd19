//! Unit tests of the Rust samples with the SDK's native harness
//! (durablewasm::testing): a fake host with a fake clock, no Wasm.

use durablewasm::testing::{CallKind, Env, Status};
use durablewasm::Error;
use durablewasm_samples::{backup, hello::SubOrchestrationResult, monitor, register, sms};
use serde_json::json;
use std::time::Duration;

#[test]
fn hello_sequence_with_a_mocked_activity() {
    let mut env = Env::new(register);
    env.on_activity("E1_SayHello", |v| Ok(json!(format!("Hi {}", v.as_str().unwrap()))));
    let r = env.run("E1_HelloSequence", &());
    assert_eq!(r.output::<Vec<String>>().unwrap(), vec!["Hi Tokyo", "Hi Seattle", "Hi London"]);
    let calls = r.calls_of(CallKind::Activity);
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[1].input, "\"Seattle\"");
}

#[test]
fn fan_out_runs_the_real_activities() {
    let env = Env::new(register);
    let r = env.run("E2_BackupSiteContent", "/site");
    let want: i64 = backup::file_list("/site").iter().map(|f| backup::file_size(f)).sum();
    assert_eq!(r.output::<i64>().unwrap(), want);
    assert_eq!(r.calls_of(CallKind::Activity).len(), 1 + backup::file_list("/site").len());
}

#[test]
fn sub_orchestrations() {
    let env = Env::new(register);
    let r = env.run("E5_SubOrchestration", "Bob");
    let out: SubOrchestrationResult = r.output().unwrap();
    assert_eq!(out.hello, "Hello Bob!");
    assert_eq!(out.sequence.len(), 3);
}

#[test]
fn sms_times_out_on_the_fake_clock() {
    let env = Env::new(register);
    let r = env.run("E4_SmsPhoneVerification", "+1555");
    assert_eq!(r.output::<bool>().unwrap(), false);
    // The 90-second timer fired on the fake clock, at once in real time.
    assert_eq!(r.elapsed(), sms::CHALLENGE_TIMEOUT);
}

#[test]
fn sms_accepts_the_right_code_after_a_wrong_one() {
    let mut env = Env::new(register);
    env.raise_event_after(Duration::from_secs(10), "SmsChallengeResponse", &1)
        .raise_event_after(Duration::from_secs(20), "SmsChallengeResponse", &sms::challenge_code("+1555"));
    let r = env.run("E4_SmsPhoneVerification", "+1555");
    assert_eq!(r.output::<bool>().unwrap(), true);
    assert_eq!(r.elapsed(), Duration::from_secs(20));
    assert!(r.logs.iter().any(|l| l.contains("wrong answer")));
}

#[test]
fn monitor_polls_on_timers_until_it_expires() {
    let env = Env::new(register);
    let expiry = durablewasm::time::format_rfc3339(env.start_time + 3_600_000_000_000);
    let req = monitor::MonitorRequest {
        location: "Redmond".into(),
        phone: "555".into(),
        expiry_time: expiry,
        polling_interval: 600_000_000_000, // 10 minutes
        checks: 0,
    };
    let r = env.run("E3_Monitor", &req);
    let out: monitor::MonitorResult = r.output().unwrap();
    assert_eq!(out, monitor::MonitorResult { alerted: false, checks: 6 });
    assert_eq!(r.continued, 6);
    assert_eq!(r.elapsed(), Duration::from_secs(3600));
}

#[test]
fn counter_continues_as_new_keeping_events() {
    let mut env = Env::new(register);
    for op in ["incr", "incr", "decr", "incr", "end"] {
        env.raise_event("operation", op);
    }
    let r = env.run("Counter", &5);
    assert_eq!(r.output::<i64>().unwrap(), 7);
    assert_eq!(r.custom_status, "7");
    assert_eq!(r.continued, 4);
}

#[test]
fn counter_without_events_keeps_running() {
    let env = Env::new(register);
    let r = env.run("Counter", &());
    assert_eq!(r.status, Status::Running);
    assert_eq!(r.custom_status, "0");
}

#[test]
fn retry_policy_waits_between_attempts() {
    let env = Env::new(register);
    let r = env.run("RetryDemo", &());
    assert_eq!(r.status, Status::Failed);
    assert!(r.failure.as_ref().unwrap().message.contains("it always fails"));
    assert_eq!(r.calls_of(CallKind::Activity).len(), 3);
    let timers = r.calls_of(CallKind::Timer);
    // 100 ms, then 200 ms (backoff 2).
    assert_eq!(timers[0].fire_at - timers[0].at, 100_000_000);
    assert_eq!(timers[1].fire_at - timers[1].at, 200_000_000);
}

#[test]
fn a_mocked_failure_fails_the_orchestration() {
    let mut env = Env::new(register);
    env.on_activity("SayHello", |_| Err(Error::with_type("Nope", "no greeting today")));
    let r = env.run("HelloWorld", &());
    assert_eq!(r.status, Status::Failed);
    let f = r.failure.unwrap();
    assert!(f.message.contains("no greeting today"), "{}", f.message);
    assert_eq!(f.inner.unwrap().error_type, "Nope");
}

#[test]
fn compute_matches_the_go_benchwork() {
    // benchwork.Compute(3) and Compute(190) (benchwork.Iterations) in Go.
    assert_eq!(durablewasm_samples::bench::compute(3), 9127396028738218854);
    assert_eq!(durablewasm_samples::bench::compute(190), 8961566367552182683);
    let env = Env::new(register);
    let r = env.run("Hello5CPU", &3);
    assert_eq!(r.output::<u64>().unwrap(), 9127396028738218854);
    assert_eq!(r.calls_of(CallKind::Activity).len(), 5);
}
