//! The suppression rules: whether a queued message should still go to its
//! reader as they are now. The claim and the second look before a send that
//! waited both ask here.

use std::time::Duration;

use chrono::Utc;

use crate::domain::{DigestFrequency, Message, Subscriber, SubscriberStatus};

/// Why `message` should no longer go to `subscriber`, who may have changed
/// their mind since it was queued.
pub(super) fn suppression(message: &Message, subscriber: &Subscriber, confirmation_ttl: Duration) -> Option<String> {
    let no_longer = || format!("subscriber is {} now", subscriber.status.as_str());
    match message {
        Message::Confirmation(request) => {
            if subscriber.status != SubscriberStatus::Pending {
                return Some(no_longer());
            }
            (request.issued_at + confirmation_ttl <= Utc::now())
                .then(|| "the confirmation link expired before it could be sent".into())
        }
        Message::Welcome(_) | Message::PreferencesLink(_) => {
            (subscriber.status != SubscriberStatus::Confirmed).then(no_longer)
        }
        Message::Digest(_) => {
            if subscriber.status != SubscriberStatus::Confirmed {
                return Some(no_longer());
            }
            (subscriber.digest_frequency == DigestFrequency::Never).then(|| "the reader turned the digest off".into())
        }
        Message::Alert(alert) => {
            if subscriber.status != SubscriberStatus::Confirmed || !subscriber.alerts_enabled {
                return Some("the reader no longer takes alerts".into());
            }
            (!subscriber.watchlist.tickers().iter().any(|t| t.as_str() == alert.symbol))
                .then(|| format!("{} is no longer on the watchlist", alert.symbol))
        }
    }
}
