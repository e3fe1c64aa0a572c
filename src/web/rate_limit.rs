use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Sign-ups per client IP per hour, with the whole hour's allowance usable at once.
#[derive(Clone)]
pub struct SignupLimiter(Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>);

impl SignupLimiter {
    /// `per_hour == 0` turns the limit off.
    pub fn new(per_hour: u32) -> Self {
        Self(NonZeroU32::new(per_hour).map(|n| Arc::new(RateLimiter::keyed(Quota::per_hour(n)))))
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
