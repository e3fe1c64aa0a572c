//! The retry policy: what a failed send comes to, and how long a delivery
//! waits before its next attempt.

use std::time::Duration;

use super::delivery_outcome::Disposition;
use crate::mailer::SendError;
use crate::store::FinalStatus;

/// The longest wait between two attempts, however many have failed.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug, Clone, Copy)]
pub(super) struct RetryPolicy {
    pub(super) max_attempts: u32,
    /// The wait after the first failed attempt.
    pub(super) base: Duration,
}

impl RetryPolicy {
    /// What becomes of a delivery whose `attempts`-th send failed with `error`:
    /// a permanent refusal fails it, anything else is retried until the
    /// attempts run out.
    pub(super) fn after_send_error(&self, attempts: u32, error: SendError) -> Disposition {
        let refused = matches!(error, SendError::Unauthorized(_));
        match error {
            SendError::Rejected { reply, rejection } => {
                tracing::warn!(%reply, ?rejection, "delivery rejected permanently");
                Disposition::Final { status: FinalStatus::Failed, error: reply, rejection: Some(rejection) }
            }
            SendError::Transient(reply) | SendError::Unauthorized(reply) if attempts >= self.max_attempts => {
                let reason = format!("gave up after {attempts} attempts: {reply}");
                tracing::warn!(%reason, "delivery failed");
                Disposition::Final { status: FinalStatus::Failed, error: reason, rejection: None }
            }
            SendError::Transient(reply) | SendError::Unauthorized(reply) => {
                let delay = retry_delay(self.base, attempts);
                tracing::warn!(%reply, retry_in_secs = delay.as_secs_f64(), "delivery will be retried");
                Disposition::Retry { error: reply, retry_at: crate::store::now() + delay, refused }
            }
            SendError::NotStarted => Disposition::PutBack,
        }
    }
}

/// Exponential backoff from `base` (doubling per failed attempt, capped),
/// with ±20% jitter so retries after an outage do not arrive all at once.
fn retry_delay(base: Duration, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    let delay = base.saturating_mul(1 << exponent).min(MAX_RETRY_DELAY);
    delay.mul_f64(rand::random_range(0.8..1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_with_jitter_and_are_capped() {
        let base = Duration::from_secs(30);
        for (attempts, expected) in [(1, 30.0), (2, 60.0), (3, 120.0), (5, 480.0)] {
            let delay = retry_delay(base, attempts).as_secs_f64();
            assert!((expected * 0.8..=expected * 1.2).contains(&delay), "attempt {attempts}: {delay}");
        }
        assert!(retry_delay(base, 40) <= MAX_RETRY_DELAY.mul_f64(1.2));
    }
}
