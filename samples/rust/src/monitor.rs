//! E3_Monitor: a monitor with durable timers and continue-as-new.

use durablewasm::time::{from_nanos, parse_rfc3339};
use durablewasm::{ActivityContext, Error, OrchestrationContext, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The input of E3_Monitor (the JSON of Go's flows.MonitorRequest).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MonitorRequest {
    /// The city whose weather is watched.
    #[serde(default)]
    pub location: String,
    /// Receives the alert.
    #[serde(default)]
    pub phone: String,
    /// RFC 3339: the monitor ends when no alert was sent by then.
    #[serde(rename = "expiryTime", default)]
    pub expiry_time: String,
    /// Nanoseconds between checks; default 30 minutes.
    #[serde(rename = "pollingInterval", default, skip_serializing_if = "is_zero")]
    pub polling_interval: i64,
    /// Checks done so far (carried across continue-as-new).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub checks: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The output of E3_Monitor.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct MonitorResult {
    /// The weather cleared and the alert was sent.
    pub alerted: bool,
    /// Weather checks made.
    pub checks: i64,
}

/// E3_Monitor: checks the weather with E3_GetIsClear; when clear, sends an
/// alert and completes; otherwise waits on a durable timer and continues as
/// new, until the expiry time.
pub async fn monitor(ctx: OrchestrationContext, mut req: MonitorRequest) -> Result<Option<MonitorResult>> {
    let expiry = parse_rfc3339(&req.expiry_time);
    let expiry = match expiry {
        Some(e) if !req.location.is_empty() => e,
        _ => return Err(Error::msg("location and expiryTime are required")),
    };
    let interval = if req.polling_interval > 0 { req.polling_interval } else { 30 * 60 * 1_000_000_000 };
    let now = ctx.now_nanos();
    if now >= expiry {
        ctx.log_info(&format!("monitor expiring for {}", req.location));
        return Ok(Some(MonitorResult { alerted: false, checks: req.checks }));
    }
    let clear: bool = ctx.call_activity("E3_GetIsClear", &req.location).await?;
    req.checks += 1;
    if clear {
        ctx.call_activity::<_, ()>("E3_SendGoodWeatherAlert", &req.phone).await?;
        return Ok(Some(MonitorResult { alerted: true, checks: req.checks }));
    }
    let next = (now + interval).min(expiry);
    ctx.create_timer(from_nanos(next)).await?;
    ctx.continue_as_new(&req, false)?;
    Ok(None)
}

/// Activity E3_GetIsClear: "Phoenix" and "Las Vegas" are always clear.
pub async fn get_is_clear(_: ActivityContext, location: String) -> Result<bool> {
    Ok(location == "Phoenix" || location == "Las Vegas")
}

/// Activity E3_SendGoodWeatherAlert: only logs.
pub async fn send_good_weather_alert(ctx: ActivityContext, phone: String) -> Result<()> {
    ctx.log_info(&format!("the weather's clear outside! go take a walk! ({})", phone));
    Ok(())
}

/// The default polling interval.
pub const DEFAULT_POLLING_INTERVAL: Duration = Duration::from_secs(30 * 60);
