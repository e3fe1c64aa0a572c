//! A subscriber as a row: the columns queries read, and the row turned into
//! a `Subscriber`. Shared by the queries about subscribers and the claim of
//! deliveries, which reads each delivery's reader with it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::domain::{AlertThreshold, Subscriber, Watchlist};

#[derive(sqlx::FromRow)]
pub(super) struct SubscriberRow {
    id: Uuid,
    email: String,
    name: String,
    status: String,
    tickers: String,
    alert_threshold_pct: f64,
    digest_frequency: String,
    alerts_enabled: bool,
    token_nonce: String,
    created_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
}

/// The columns `SubscriberRow` reads, for `concat!` into queries.
macro_rules! subscriber_columns {
    () => {
        "id, email, name, status, tickers, alert_threshold_pct, digest_frequency, alerts_enabled, \
         token_nonce, created_at, confirmed_at"
    };
}
pub(super) use subscriber_columns;

impl TryFrom<SubscriberRow> for Subscriber {
    type Error = StoreError;

    fn try_from(row: SubscriberRow) -> Result<Self, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt(format!("subscriber {}: {what}", row.id));
        Ok(Subscriber {
            id: row.id,
            status: row.status.parse().map_err(corrupt)?,
            watchlist: Watchlist::from_stored(&row.tickers),
            alert_threshold: AlertThreshold::new(row.alert_threshold_pct).unwrap_or_default(),
            digest_frequency: row.digest_frequency.parse().map_err(corrupt)?,
            alerts_enabled: row.alerts_enabled,
            email: row.email,
            name: row.name,
            token_nonce: row.token_nonce,
            created_at: row.created_at,
            confirmed_at: row.confirmed_at,
        })
    }
}

impl SubscriberRow {
    pub(super) fn id(&self) -> Uuid {
        self.id
    }
}
