//! The send rate limits: `SEND_RATE` over all recipients, and
//! `SEND_RATE_PER_DOMAIN` to each recipient domain.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

pub(super) struct SendRate {
    overall: Option<DefaultDirectRateLimiter>,
    per_domain: Option<DefaultKeyedRateLimiter<String>>,
}

impl SendRate {
    /// Messages per second overall and to one domain; 0 for no limit.
    pub(super) fn new(overall: u32, per_domain: u32) -> Self {
        Self {
            overall: NonZeroU32::new(overall).map(|n| RateLimiter::direct(Quota::per_second(n))),
            per_domain: NonZeroU32::new(per_domain).map(|n| RateLimiter::keyed(Quota::per_second(n))),
        }
    }

    /// Waits until a message to `recipient` may go.
    pub(super) async fn wait_for(&self, recipient: &str) {
        if let Some(limiter) = &self.per_domain {
            let domain = recipient.rsplit_once('@').map_or(recipient, |(_, domain)| domain).to_ascii_lowercase();
            limiter.until_key_ready(&domain).await;
        }
        if let Some(limiter) = &self.overall {
            limiter.until_ready().await;
        }
    }

    /// Drops the domains no message went to lately, so the keyed limiter does not grow forever.
    pub(super) fn forget_idle_domains(&self) {
        if let Some(limiter) = &self.per_domain {
            limiter.retain_recent();
        }
    }
}
