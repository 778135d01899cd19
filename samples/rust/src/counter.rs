//! Counter: an eternal orchestration (continue-as-new, keeping events).

use durablewasm::{OrchestrationContext, Result};

/// Counter holds a count (its input, 0 when absent), publishes it as custom
/// status, waits for one "operation" event ("incr", "decr", "reset", "end")
/// and continues as new with the new count, keeping events that arrived
/// meanwhile. On "end" it completes with the count.
pub async fn counter(ctx: OrchestrationContext, count: Option<i64>) -> Result<Option<i64>> {
    let mut count = count.unwrap_or(0);
    ctx.set_custom_status(&count)?;
    let op: String = ctx.wait_for_event("operation").await?;
    match op.as_str() {
        "incr" => count += 1,
        "decr" => count -= 1,
        "reset" => count = 0,
        "end" => return Ok(Some(count)),
        _ => ctx.log_warn(&format!("unknown operation {:?} ignored", op)),
    }
    ctx.set_custom_status(&count)?;
    ctx.continue_as_new(&count, true)?;
    Ok(None)
}
