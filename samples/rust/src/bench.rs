//! The bench's orchestrators: Hello5, FanOut, Hello5IO, Hello5CPU and their
//! activities.

use durablewasm::http::HttpRequest;
use durablewasm::{try_join_all, ActivityContext, Error, OrchestrationContext, Registry, Result, Task};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Registers the bench functions.
pub fn register(r: &mut Registry) {
    r.orchestrator("Hello5", hello5)
        .orchestrator("FanOut", fan_out)
        .orchestrator("Hello5IO", hello5_io)
        .orchestrator("Hello5CPU", hello5_cpu)
        .activity("Bench_Echo", echo)
        .activity("Bench_HTTPGet", http_get)
        .activity("Bench_Compute", compute_activity);
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

/// Hello5CPU (input: iterations): five Bench_Compute in sequence with its
/// input; returns the last result.
pub async fn hello5_cpu(ctx: OrchestrationContext, n: i64) -> Result<u64> {
    let mut out = 0;
    for _ in 0..5 {
        out = ctx.call_activity("Bench_Compute", &n).await?;
    }
    Ok(out)
}

/// Activity Bench_Compute (input: iterations): `compute(iterations)`.
pub async fn compute_activity(_: ActivityContext, n: i64) -> Result<u64> {
    Ok(compute(n))
}

/// A port of the Go samples' `benchwork.Compute` (samples/flows/benchwork),
/// the work of the bench's cpu workload, with the same result: `iterations`
/// rounds of generating 512 pseudo-random 32-bit values (xorshift32, seeded
/// by the round), sorting them and folding the sorted values, byte by byte
/// from the lowest, into an FNV-1a 64-bit hash.
pub fn compute(iterations: i64) -> u64 {
    const OFFSET: u64 = 14695981039346656037;
    const PRIME: u64 = 1099511628211;
    const BLOCK_LEN: usize = 512;
    let mut h = OFFSET;
    let mut block = vec![0u32; BLOCK_LEN];
    for r in 0..iterations.max(0) {
        let mut x = (r as u32).wrapping_mul(2654435761).wrapping_add(1);
        for v in block.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *v = x;
        }
        block.sort_unstable();
        for &v in &block {
            for k in 0..4 {
                h ^= ((v >> (8 * k)) & 0xff) as u64;
                h = h.wrapping_mul(PRIME);
            }
        }
    }
    h
}
