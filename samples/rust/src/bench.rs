//! The bench's orchestrators: Hello5, FanOut, Hello5IO and their activities.

use durablewasm::http::HttpRequest;
use durablewasm::{try_join_all, ActivityContext, Error, OrchestrationContext, Registry, Result, Task};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Registers the bench functions.
pub fn register(r: &mut Registry) {
    r.orchestrator("Hello5", hello5)
        .orchestrator("FanOut", fan_out)
        .orchestrator("Hello5IO", hello5_io)
        .activity("Bench_Echo", echo)
        .activity("Bench_HTTPGet", http_get);
}

/// Hello5: calls Bench_Echo five times in sequence, each time with the
/// previous result; returns its input.
pub async fn hello5(ctx: OrchestrationContext, mut v: Value) -> Result<Value> {
    for _ in 0..5 {
        v = ctx.call_activity("Bench_Echo", &v).await?;
    }
    Ok(v)
}

/// FanOut (input n): n parallel Bench_Echo calls of 0..n-1; returns the sum.
pub async fn fan_out(ctx: OrchestrationContext, n: i64) -> Result<i64> {
    let tasks: Vec<Task<i64>> = (0..n).map(|i| ctx.call_activity("Bench_Echo", &i)).collect();
    Ok(try_join_all(tasks).await?.iter().sum())
}

/// Activity Bench_Echo: returns its input.
pub async fn echo(_: ActivityContext, v: Value) -> Result<Value> {
    Ok(v)
}

/// What Bench_HTTPGet returns.
#[derive(Debug, Serialize, Deserialize)]
pub struct HttpResult {
    /// The response status.
    pub status: u16,
    /// The body length.
    pub length: usize,
}

/// Hello5IO (input: a URL): five Bench_HTTPGet in sequence; returns the
/// total body length; fails on a status other than 200.
pub async fn hello5_io(ctx: OrchestrationContext, url: String) -> Result<usize> {
    let mut total = 0;
    for _ in 0..5 {
        let r: HttpResult = ctx.call_activity("Bench_HTTPGet", &url).await?;
        if r.status != 200 {
            return Err(Error::msg(format!("GET {}: status {}", url, r.status)));
        }
        total += r.length;
    }
    Ok(total)
}

/// Activity Bench_HTTPGet: a GET through the host (the activity parks while
/// it runs); returns status and body length.
pub async fn http_get(ctx: ActivityContext, url: String) -> Result<HttpResult> {
    let resp = ctx.http(&HttpRequest::get(&url)).await?;
    Ok(HttpResult { status: resp.status, length: resp.body_bytes().len() })
}
