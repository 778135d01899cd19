//! E4_SmsPhoneVerification: an external event raced against a timer.

use crate::hash32;
use durablewasm::{select2, ActivityContext, Either, Error, OrchestrationContext, Result};
use std::time::Duration;

/// How long the verification waits for correct answers in total.
pub const CHALLENGE_TIMEOUT: Duration = Duration::from_secs(90);
/// How many answers it accepts.
pub const MAX_ATTEMPTS: u32 = 3;

/// The code E4_SendSmsChallenge sends to `phone` (deterministic here).
pub fn challenge_code(phone: &str) -> i64 {
    1000 + (hash32(phone) % 9000) as i64
}

/// E4_SmsPhoneVerification: sends a challenge code, then waits for
/// SmsChallengeResponse events, each raced against one timer set
/// CHALLENGE_TIMEOUT after the start. True when a correct code arrived
/// within MAX_ATTEMPTS answers before the timer.
pub async fn sms_phone_verification(ctx: OrchestrationContext, phone: Option<String>) -> Result<bool> {
    let phone = phone.unwrap_or_default();
    if phone.is_empty() {
        return Err(Error::msg("a phone number is required as input"));
    }
    let code: i64 = ctx.call_activity("E4_SendSmsChallenge", &phone).await?;
    let mut timeout = ctx.sleep(CHALLENGE_TIMEOUT);
    for attempt in 1..=MAX_ATTEMPTS {
        let response = ctx.wait_for_event::<i64>("SmsChallengeResponse");
        let wait_id = response.id();
        match select2(response, &mut timeout).await {
            Either::Left(answer) => {
                if answer? == code {
                    return Ok(true);
                }
                ctx.log_info(&format!("wrong answer, attempt {}", attempt));
            }
            Either::Right(r) => {
                r?;
                ctx.cancel(wait_id);
                ctx.log_info(&format!("challenge timed out, attempt {}", attempt));
                return Ok(false);
            }
        }
    }
    Ok(false)
}

/// Activity E4_SendSmsChallenge: "texts" the code (it only logs it).
pub async fn send_sms_challenge(ctx: ActivityContext, phone: String) -> Result<i64> {
    let code = challenge_code(&phone);
    ctx.log_info(&format!("sending verification code {} to {}", code, phone));
    Ok(code)
}
