use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Requests per client IP (sign-ups per hour, admin logins per minute), with
/// the whole period's allowance usable at once.
#[derive(Clone)]
pub struct IpLimiter(Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>);

impl IpLimiter {
    /// `per_hour == 0` turns the limit off.
    pub fn per_hour(per_hour: u32) -> Self {
        Self(NonZeroU32::new(per_hour).map(|n| Arc::new(RateLimiter::keyed(Quota::per_hour(n)))))
    }

    /// `per_minute == 0` turns the limit off.
    pub fn per_minute(per_minute: u32) -> Self {
        Self(NonZeroU32::new(per_minute).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n)))))
    }

    /// `Err(retry_after)` when this IP has used its allowance.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        match &self.0 {
            None => Ok(()),
            Some(limiter) => {
                limiter.check_key(&ip).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
            }
        }
    }

    /// Forgets IPs whose allowance is full again, so memory does not grow
    /// with every address ever seen.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}
