//! Retry policies: failed activities and sub-orchestrations are scheduled
//! again after durable timers, so every attempt is in history.

use crate::error::{Error, ErrorKind, Result};
use crate::orchestration::{OrchestrationContext, Task};
use serde::de::DeserializeOwned;
use std::rc::Rc;
use std::time::Duration;

/// How a failed task is retried. Zero fields take the documented defaults.
#[derive(Clone, Default)]
pub struct RetryPolicy {
    /// Total number of attempts, the first included (below 1 means 1).
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub first_retry_interval: Duration,
    /// Multiplies the wait after each further failure (below 1 means 1).
    pub backoff_coefficient: f64,
    /// Caps each wait (zero: no cap).
    pub max_retry_interval: Duration,
    /// Bounds the whole sequence from the first attempt (zero: no bound):
    /// no retry is scheduled whose timer would fire after it.
    pub retry_timeout: Duration,
    /// Called with each failure; returning false stops retrying.
    pub handle: Option<Rc<dyn Fn(&Error) -> bool>>,
}

impl RetryPolicy {
    /// A policy of `max_attempts` attempts, `first_retry_interval` apart.
    pub fn new(max_attempts: u32, first_retry_interval: Duration) -> RetryPolicy {
        RetryPolicy { max_attempts, first_retry_interval, ..Default::default() }
    }

    /// Sets the backoff coefficient.
    pub fn backoff(mut self, coefficient: f64) -> RetryPolicy {
        self.backoff_coefficient = coefficient;
        self
    }

    /// Sets the retry handler.
    pub fn handle_with(mut self, f: impl Fn(&Error) -> bool + 'static) -> RetryPolicy {
        self.handle = Some(Rc::new(f));
        self
    }

    /// The wait before attempt number `next` (2 for the first retry).
    pub fn delay(&self, next: u32) -> Duration {
        let coef = if self.backoff_coefficient < 1.0 { 1.0 } else { self.backoff_coefficient };
        let d = self.first_retry_interval.as_secs_f64() * coef.powi(next as i32 - 2);
        let d = Duration::from_secs_f64(d.min(1e12));
        if !self.max_retry_interval.is_zero() && d > self.max_retry_interval {
            self.max_retry_interval
        } else {
            d
        }
    }

    pub(crate) async fn run<O: DeserializeOwned>(&self, ctx: &OrchestrationContext, mut schedule: impl FnMut() -> Task<O>) -> Result<O> {
        let start = ctx.current_time();
        let max = self.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let err = match schedule().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if err.kind() != &ErrorKind::TaskFailed || err.is_non_retryable() || attempt >= max {
                return Err(err);
            }
            if let Some(h) = &self.handle {
                if !h(&err) {
                    return Err(err);
                }
            }
            let fire_at = ctx.current_time() + self.delay(attempt + 1);
            if !self.retry_timeout.is_zero() && fire_at > start + self.retry_timeout {
                return Err(err);
            }
            ctx.create_timer(fire_at).await?;
            attempt += 1;
        }
    }
}
