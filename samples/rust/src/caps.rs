//! Capabilities and retries: activity configuration, activity HTTP (which
//! parks the activity, ABI 11.1), durable HTTP (ABI 11.2) and a retry policy.

use durablewasm::http::HttpRequest;
use durablewasm::{ActivityContext, Error, OrchestrationContext, Registry, Result, RetryPolicy};
use std::time::Duration;

/// Registers RustCaps, RetryDemo and their activities.
pub fn register(r: &mut Registry) {
    r.orchestrator("RustCaps", rust_caps)
        .activity("Rust_Greet", greet)
        .orchestrator("RetryDemo", retry_demo)
        .activity("Rust_AlwaysFails", always_fails);
}

/// RustCaps (input: a URL): "<greeting config> | <body of the activity's GET>
/// | <status of a durable HTTP GET>".
pub async fn rust_caps(ctx: OrchestrationContext, url: String) -> Result<String> {
    let greeted: String = ctx.call_activity("Rust_Greet", &url).await?;
    let resp = ctx.call_http(&HttpRequest::get(&url)).await?;
    Ok(format!("{} | {}", greeted, resp.status))
}

/// Activity Rust_Greet: the config value "greeting" and the body of a GET of
/// its input URL.
pub async fn greet(ctx: ActivityContext, url: String) -> Result<String> {
    let greeting = ctx.config("greeting")?.unwrap_or_else(|| "hello".into());
    let resp = ctx.http(&HttpRequest::get(&url)).await?;
    Ok(format!("{} | {}", greeting, resp.text()))
}

/// RetryDemo: Rust_AlwaysFails with three attempts 100 ms apart, then fails
/// with its error.
pub async fn retry_demo(ctx: OrchestrationContext, _: ()) -> Result<()> {
    let policy = RetryPolicy::new(3, Duration::from_millis(100)).backoff(2.0);
    ctx.call_activity_with_retry::<_, ()>("Rust_AlwaysFails", &(), &policy).await
}

/// Activity Rust_AlwaysFails: fails with type "Flaky".
pub async fn always_fails(_: ActivityContext, _: ()) -> Result<()> {
    Err(Error::with_type("Flaky", "it always fails"))
}
