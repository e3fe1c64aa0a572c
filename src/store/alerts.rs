//! Price alerts: who watches what, which alerts went out today, and
//! queueing new ones together with the state that stops them repeating.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::deliveries::queue_message;
use super::{Store, StoreResult, in_transaction, now, on_reader};
use crate::domain::{Message, PriceAlert, StoredQuote, SubscriberStatus};

/// A confirmed reader with alerts on and a watchlist.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertWatcher {
    pub id: Uuid,
    pub email: String,
    /// The stored watchlist: canonical keys joined by commas.
    pub tickers: String,
    pub alert_threshold_pct: f64,
}

/// One alert to queue: the state key, the tier reached, and what the email says.
#[derive(Debug, Clone)]
pub struct DueAlert {
    pub subscriber_id: Uuid,
    pub recipient: String,
    pub symbol: String,
    pub trading_day: String,
    pub direction: &'static str,
    pub tier: i64,
    pub alert: PriceAlert,
}

/// Records a tier for a reader, symbol, trading day and direction unless a
/// higher or equal one is there; one row changed means the tier is new.
const RAISE_TIER: &str = "INSERT INTO alert_state (subscriber_id, symbol, trading_day, direction, tier, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (subscriber_id, symbol, trading_day, direction) \
     DO UPDATE SET tier = excluded.tier, updated_at = excluded.updated_at \
     WHERE alert_state.tier < excluded.tier";

/// (subscriber, symbol, trading day, direction) → the highest tier alerted.
pub type AlertTiers = std::collections::HashMap<(Uuid, String, String, String), i64>;

impl Store {
    /// Latest quotes as of `since` or later: older prices (a closed market's)
    /// never alert, and neither do suspect ones.
    pub async fn fresh_quotes(&self, since: DateTime<Utc>) -> StoreResult<Vec<StoredQuote>> {
        let quotes = on_reader!(self, |pool| {
            sqlx::query_as(
                "SELECT symbol, price, previous_close, currency, as_of, source, suspect FROM latest_quotes \
                 WHERE as_of >= $1 AND NOT suspect ORDER BY symbol",
            )
            .bind(since)
            .fetch_all(pool)
            .await
        })?;
        Ok(quotes)
    }

    /// A page of readers to check, in id order after `after`.
    pub async fn alert_watchers(&self, after: Option<Uuid>, limit: u32) -> StoreResult<Vec<AlertWatcher>> {
        let watchers = on_reader!(self, |pool| {
            sqlx::query_as(
                "SELECT id, email, tickers, alert_threshold_pct FROM subscribers \
                 WHERE status = $3 AND alerts_enabled AND tickers <> '' AND ($1 IS NULL OR id > $1) \
                 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .bind(SubscriberStatus::Confirmed)
            .fetch_all(pool)
            .await
        })?;
        Ok(watchers)
    }

    /// The tiers already alerted on `trading_days`.
    pub async fn alert_tiers(&self, trading_days: &[String]) -> StoreResult<AlertTiers> {
        let mut tiers = AlertTiers::new();
        for day in trading_days {
            let rows: Vec<(Uuid, String, String, String, i64)> = on_reader!(self, |pool| {
                sqlx::query_as(
                    "SELECT subscriber_id, symbol, trading_day, direction, tier FROM alert_state WHERE trading_day = $1",
                )
                .bind(day)
                .fetch_all(pool)
                .await
            })?;
            tiers.extend(
                rows.into_iter().map(|(id, symbol, day, direction, tier)| ((id, symbol, day, direction), tier)),
            );
        }
        Ok(tiers)
    }

    /// Records tiers as alerted without sending anything: for a move that had
    /// already happened when the reader started following the ticker.
    pub async fn mark_alerts_seen(&self, alerts: &[DueAlert]) -> StoreResult<()> {
        self.raise_alert_tiers(alerts, false).await.map(drop)
    }

    /// Queues each alert whose tier is higher than any sent for its key, in
    /// one transaction with the state that records it. Returns the deliveries
    /// queued (another instance may have queued some first).
    pub async fn queue_alerts(&self, alerts: &[DueAlert]) -> StoreResult<Vec<Uuid>> {
        self.raise_alert_tiers(alerts, true).await
    }

    /// Raises each alert's tier where it is new, queueing its delivery when `send`.
    async fn raise_alert_tiers(&self, alerts: &[DueAlert], send: bool) -> StoreResult<Vec<Uuid>> {
        let now = now();
        let queued = in_transaction!(self, |tx| {
            let mut queued = Vec::new();
            for alert in alerts {
                let raised = sqlx::query(RAISE_TIER)
                    .bind(alert.subscriber_id)
                    .bind(&alert.symbol)
                    .bind(&alert.trading_day)
                    .bind(alert.direction)
                    .bind(alert.tier)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if raised == 1 && send {
                    let message = Message::Alert(alert.alert.clone());
                    let id = queue_message!(&mut *tx, alert.subscriber_id, &alert.recipient, &message, now);
                    queued.push(id);
                }
            }
            queued
        });
        Ok(queued)
    }
}
