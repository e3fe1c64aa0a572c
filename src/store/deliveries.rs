use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::subscribers::{SubscriberRow, into_subscribers, subscriber_columns};
use super::{Store, StoreError, StoreResult, in_transaction, now, on_reader, on_writer};
use crate::domain::Subscriber;

/// What kind of message a delivery becomes; the worker renders each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryKind {
    Confirmation,
    Welcome,
    /// A confirmed reader's preferences link, asked for by confirming again.
    PreferencesLink,
    Digest,
    Alert,
}

impl DeliveryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmation => "confirmation",
            Self::Welcome => "welcome",
            Self::PreferencesLink => "preferences_link",
            Self::Digest => "digest",
            Self::Alert => "alert",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "confirmation" => Some(Self::Confirmation),
            "welcome" => Some(Self::Welcome),
            "preferences_link" => Some(Self::PreferencesLink),
            "digest" => Some(Self::Digest),
            "alert" => Some(Self::Alert),
            _ => None,
        }
    }
}

/// Queues one delivery inside a transaction: `insert_delivery!(executor,
/// kind, subscriber_id, recipient, payload, now)`.
macro_rules! insert_delivery {
    ($executor:expr, $kind:expr, $subscriber_id:expr, $recipient:expr, $payload:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO deliveries (id, kind, subscriber_id, recipient, payload, status, attempts, \
                 next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6, $6)",
        )
        .bind(uuid::Uuid::new_v4())
        .bind($kind.as_str())
        .bind($subscriber_id)
        .bind($recipient)
        .bind($payload.to_string())
        .bind($now)
        .execute($executor)
        .await?
    };
}
pub(super) use insert_delivery;

/// A delivery this worker has leased: nobody else sends it until the lease
/// ends, and only this claim may mark it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: Uuid,
    pub claim_id: Uuid,
    /// `None` for a kind this version does not know (written by a newer one).
    pub kind: Option<DeliveryKind>,
    pub kind_name: String,
    pub recipient: String,
    pub payload: serde_json::Value,
    /// Including this one.
    pub attempts: u32,
    /// `None` when the subscriber has been erased.
    pub subscriber: Option<Subscriber>,
    /// The digest edition it belongs to.
    pub edition_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: Uuid,
    kind: String,
    subscriber_id: Option<Uuid>,
    recipient: String,
    payload: String,
    attempts: i32,
    edition_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryCount {
    pub kind: String,
    pub status: String,
    pub count: i64,
}

const CLAIM_SQLITE: &str = "UPDATE deliveries \
     SET status = 'sending', claim_id = $1, attempts = attempts + 1, next_attempt_at = $2, updated_at = $3 \
     WHERE id IN (SELECT id FROM deliveries \
         WHERE status IN ('queued', 'sending') AND next_attempt_at <= $3 \
         ORDER BY next_attempt_at LIMIT $4) \
     RETURNING id, kind, subscriber_id, recipient, payload, attempts, edition_id";

// SKIP LOCKED lets several instances claim side by side without waiting on
// each other's rows.
const CLAIM_POSTGRES: &str = "UPDATE deliveries \
     SET status = 'sending', claim_id = $1, attempts = attempts + 1, next_attempt_at = $2, updated_at = $3 \
     WHERE id IN (SELECT id FROM deliveries \
         WHERE status IN ('queued', 'sending') AND next_attempt_at <= $3 \
         ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
     RETURNING id, kind, subscriber_id, recipient, payload, attempts, edition_id";

impl Store {
    /// Leases up to `limit` due deliveries for `lease`: queued ones whose time
    /// has come, and ones whose earlier lease ran out (their worker died).
    pub async fn claim_due_deliveries(&self, limit: u32, lease: Duration) -> StoreResult<Vec<ClaimedDelivery>> {
        let now = now();
        let claim_id = Uuid::new_v4();
        let lease_end = now + lease;
        let claim = match self {
            Store::Sqlite { .. } => CLAIM_SQLITE,
            Store::Postgres(_) => CLAIM_POSTGRES,
        };
        let rows: Vec<ClaimedRow> = on_writer!(self, |pool| {
            sqlx::query_as(claim).bind(claim_id).bind(lease_end).bind(now).bind(i64::from(limit)).fetch_all(pool).await
        })?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let subscribers: Vec<SubscriberRow> = on_reader!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                subscriber_columns!(),
                " FROM subscribers WHERE id IN (SELECT subscriber_id FROM deliveries WHERE claim_id = $1)"
            ))
            .bind(claim_id)
            .fetch_all(pool)
            .await
        })?;
        let mut subscribers: HashMap<Uuid, Subscriber> =
            into_subscribers(subscribers)?.into_iter().map(|s| (s.id, s)).collect();
        rows.into_iter()
            .map(|row| {
                Ok(ClaimedDelivery {
                    id: row.id,
                    claim_id,
                    kind: DeliveryKind::parse(&row.kind),
                    kind_name: row.kind,
                    recipient: row.recipient,
                    payload: serde_json::from_str(&row.payload)
                        .map_err(|e| StoreError::Corrupt(format!("delivery {} payload: {e}", row.id)))?,
                    attempts: u32::try_from(row.attempts).unwrap_or(0),
                    subscriber: row.subscriber_id.and_then(|id| subscribers.remove(&id)),
                    edition_id: row.edition_id,
                })
            })
            .collect()
    }

    /// Marks deliveries of one claim sent, with the Message-ID the worker gave
    /// them (`<delivery id@domain>`). Rows whose claim was lost (their lease
    /// ran out and another worker took them over) are left alone. Returns how
    /// many were marked.
    pub async fn mark_deliveries_sent(&self, claim_id: Uuid, ids: &[Uuid], message_domain: &str) -> StoreResult<u64> {
        let now = now();
        let marked = match self {
            Store::Sqlite { writer, .. } => {
                let ids: Vec<String> = ids.iter().map(|id| id.simple().to_string()).collect();
                sqlx::query(
                    "UPDATE deliveries SET status = 'sent', sent_at = $2, updated_at = $2, last_error = NULL, \
                         message_id = '<' || lower(hex(id)) || '@' || $3 || '>' \
                     WHERE claim_id = $1 AND status = 'sending' \
                       AND id IN (SELECT unhex(value) FROM json_each($4))",
                )
                .bind(claim_id)
                .bind(now)
                .bind(message_domain)
                .bind(serde_json::to_string(&ids).unwrap_or_default())
                .execute(writer)
                .await?
                .rows_affected()
            }
            Store::Postgres(pool) => sqlx::query(
                "UPDATE deliveries SET status = 'sent', sent_at = $2, updated_at = $2, last_error = NULL, \
                     message_id = '<' || replace(id::text, '-', '') || '@' || $3 || '>' \
                 WHERE claim_id = $1 AND status = 'sending' AND id = ANY($4)",
            )
            .bind(claim_id)
            .bind(now)
            .bind(message_domain)
            .bind(ids)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(marked)
    }

    /// Puts a claimed delivery back in the queue to try again at `retry_at`;
    /// one whose edition was paused meanwhile waits for the resume, and one
    /// whose edition was cancelled is suppressed.
    pub async fn mark_delivery_retry(
        &self,
        delivery: &ClaimedDelivery,
        error: &str,
        retry_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.requeue(delivery, Some(error), retry_at, Attempt::Counted).await
    }

    /// Puts back a claimed delivery that was not tried because its edition
    /// was paused or cancelled: the claim does not count as an attempt.
    pub async fn defer_delivery(&self, delivery: &ClaimedDelivery) -> StoreResult<bool> {
        self.requeue(delivery, None, now(), Attempt::NotMade).await
    }

    async fn requeue(
        &self,
        delivery: &ClaimedDelivery,
        error: Option<&str>,
        retry_at: DateTime<Utc>,
        attempt: Attempt,
    ) -> StoreResult<bool> {
        // The edition's state decides where the delivery goes. On PostgreSQL
        // its row is locked (FOR SHARE), so that a pause, resume or cancel
        // committing meanwhile is seen: otherwise a resume could miss a
        // delivery parked on the state it had just changed, leaving it
        // parked for good. Retries take the lock too, as they can race a
        // resume the same way. SQLite runs one write at a time.
        macro_rules! requeue {
            ($lock:literal) => {
                concat!(
                    "UPDATE deliveries SET \
                         status = CASE WHEN edition_state = 'cancelled' THEN 'suppressed' ELSE 'queued' END, \
                         next_attempt_at = CASE WHEN edition_state = 'paused' THEN $6 ELSE $4 END, \
                         attempts = attempts - $7, updated_at = $5, \
                         last_error = CASE WHEN edition_state = 'cancelled' THEN 'edition cancelled by an admin' \
                             ELSE COALESCE($3, last_error) END \
                     FROM (SELECT (SELECT state FROM editions WHERE id = $8",
                    $lock,
                    ") AS edition_state) AS edition \
                     WHERE id = $1 AND claim_id = $2 AND status = 'sending'"
                )
            };
        }
        let statement = match self {
            Store::Sqlite { .. } => requeue!(""),
            Store::Postgres(_) => requeue!(" FOR SHARE"),
        };
        let result = on_writer!(self, |pool| {
            sqlx::query(statement)
                .bind(delivery.id)
                .bind(delivery.claim_id)
                .bind(error)
                .bind(retry_at)
                .bind(now())
                .bind(super::editions::paused_until())
                .bind(i64::from(attempt == Attempt::NotMade))
                .bind(delivery.edition_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(result == 1)
    }

    /// Ends a claimed delivery without sending it: `failed` after a permanent
    /// error, `suppressed` when it should no longer go out. When
    /// `bounce_subscriber` is set, the address is marked bounced too.
    pub async fn mark_delivery_final(
        &self,
        delivery: &ClaimedDelivery,
        status: FinalStatus,
        error: &str,
        bounce_subscriber: bool,
    ) -> StoreResult<bool> {
        let now = now();
        let changed = in_transaction!(self, |tx| {
            let changed = sqlx::query(
                "UPDATE deliveries SET status = $3, last_error = $4, updated_at = $5 \
                 WHERE id = $1 AND claim_id = $2 AND status = 'sending'",
            )
            .bind(delivery.id)
            .bind(delivery.claim_id)
            .bind(status.as_str())
            .bind(error)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if changed
                && bounce_subscriber
                && let Some(subscriber) = &delivery.subscriber
            {
                sqlx::query(
                    "UPDATE subscribers SET status = 'bounced', updated_at = $2 \
                     WHERE id = $1 AND status IN ('pending', 'confirmed')",
                )
                .bind(subscriber.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            changed
        });
        Ok(changed)
    }

    /// How many deliveries there are of each kind in each status.
    pub async fn delivery_counts(&self) -> StoreResult<Vec<DeliveryCount>> {
        let rows: Vec<(String, String, i64)> = on_reader!(self, |pool| {
            sqlx::query_as("SELECT kind, status, COUNT(*) FROM deliveries GROUP BY kind, status ORDER BY kind, status")
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(|(kind, status, count)| DeliveryCount { kind, status, count }).collect())
    }
}

/// Whether putting a delivery back counts the claim as an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Counted,
    NotMade,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalStatus {
    Failed,
    Suppressed,
}

impl FinalStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Suppressed => "suppressed",
        }
    }
}
