//! Orchestrator "Ordered" for the nondeterminism test: calls Step with "A",
//! waits for event "go", then calls Step with "B". Built with the feature
//! `ordered-v2`, it makes the two calls in the other order.

use durablewasm::{ActivityContext, OrchestrationContext, Registry, Result};

#[cfg(not(feature = "ordered-v2"))]
const ORDER: [&str; 2] = ["A", "B"];
#[cfg(feature = "ordered-v2")]
const ORDER: [&str; 2] = ["B", "A"];

/// Ordered: Step(ORDER[0]), event "go", Step(ORDER[1]); returns "AB" (the
/// results in the order A, B).
pub async fn ordered(ctx: OrchestrationContext, _: ()) -> Result<String> {
    let first: String = ctx.call_activity("Step", ORDER[0]).await?;
    ctx.wait_for_event::<serde_json::Value>("go").await?;
    let second: String = ctx.call_activity("Step", ORDER[1]).await?;
    let mut v = vec![first, second];
    v.sort();
    Ok(v.concat())
}

/// Activity Step: returns its input.
pub async fn step(_: ActivityContext, s: String) -> Result<String> {
    Ok(s)
}

/// Registers Ordered and Step.
pub fn register(r: &mut Registry) {
    r.orchestrator("Ordered", ordered).activity("Step", step);
}
