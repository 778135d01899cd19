//! E1_HelloSequence, HelloWorld and E5_SubOrchestration.

use durablewasm::{ActivityContext, OrchestrationContext, Result};
use serde::{Deserialize, Serialize};

/// E1_HelloSequence: calls E1_SayHello for three cities in sequence and
/// returns the greetings.
pub async fn hello_sequence(ctx: OrchestrationContext, _: ()) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for city in ["Tokyo", "Seattle", "London"] {
        out.push(ctx.call_activity("E1_SayHello", city).await?);
    }
    Ok(out)
}

/// Activities E1_SayHello and SayHello: "Hello <name>!".
pub async fn say_hello(ctx: ActivityContext, name: String) -> Result<String> {
    ctx.log_info(&format!("saying hello to {}", name));
    Ok(format!("Hello {}!", name))
}

/// HelloWorld: greets its input ("World" when absent) with SayHello.
pub async fn hello_world(ctx: OrchestrationContext, name: Option<String>) -> Result<String> {
    let name = name.unwrap_or_else(|| "World".into());
    ctx.call_activity("SayHello", &name).await
}

/// The output of E5_SubOrchestration.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct SubOrchestrationResult {
    /// E1_HelloSequence's output.
    pub sequence: Vec<String>,
    /// HelloWorld's output.
    pub hello: String,
}

/// E5_SubOrchestration: runs E1_HelloSequence and HelloWorld as
/// sub-orchestrations in parallel and returns both outputs.
pub async fn sub_orchestration(ctx: OrchestrationContext, name: Option<String>) -> Result<SubOrchestrationResult> {
    let name = name.unwrap_or_else(|| "World".into());
    let seq = ctx.call_sub_orchestrator("E1_HelloSequence", &());
    let hello = ctx.call_sub_orchestrator_with_id("HelloWorld", &format!("{}:hello", ctx.instance_id()), &name);
    Ok(SubOrchestrationResult { sequence: seq.await?, hello: hello.await? })
}
