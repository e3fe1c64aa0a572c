//! The outbox: messages queued, leased to a worker, and marked with how
//! their sending ended.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::dialect::List;
use super::subscriber_row::{SubscriberRow, subscriber_columns};
use super::{Store, StoreResult, in_transaction, now, on_reader, on_writer};
use crate::domain::{DeliveryStatus, EditionState, Message, Subscriber, SubscriberStatus};

/// The condition on a status column that holds for deliveries still to be
/// sent (queued or sending): `concat!("d.status ", still_to_send!())`. It is
/// spelled as the partial indexes of due and pending deliveries spell it,
/// because both planners use such an index only for a query that repeats
/// its condition (a bound value does not match it). Everywhere else a
/// status is bound as a `DeliveryStatus`.
macro_rules! still_to_send {
    () => {
        "IN ('queued', 'sending')"
    };
}
pub(super) use still_to_send;

/// Queues one message inside a transaction and evaluates to its delivery's
/// id: `queue_message!(executor, subscriber_id, recipient, &message, now)`.
/// Every message but a digest edition's (queued set-based, see
/// `editions.rs`) goes into the outbox through here.
macro_rules! queue_message {
    ($executor:expr, $subscriber_id:expr, $recipient:expr, $message:expr, $now:expr) => {{
        let id = uuid::Uuid::new_v4();
        let message: &$crate::domain::Message = $message;
        sqlx::query(
            "INSERT INTO deliveries (id, kind, subscriber_id, recipient, payload, status, attempts, \
                 next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $7, 0, $6, $6, $6)",
        )
        .bind(id)
        .bind(message.kind().as_str())
        .bind($subscriber_id)
        .bind($recipient)
        .bind(message.payload_json())
        .bind($now)
        .bind($crate::domain::DeliveryStatus::Queued)
        .execute($executor)
        .await?;
        id
    }};
}
pub(super) use queue_message;

/// The reader a claimed delivery is for, as read with the claim.
#[derive(Debug, Clone)]
pub enum ClaimedReader {
    Found(Arc<Subscriber>),
    /// Erased (GDPR) since the message was queued.
    Erased,
    /// Their row could not be read: that message fails, not its batch.
    Unreadable(String),
}

/// A delivery this worker has leased: nobody else sends it until the lease
/// ends, and only this claim may mark it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: Uuid,
    pub claim_id: Uuid,
    /// The kind as stored, for logs (also one this version does not know).
    pub kind_name: String,
    /// What to send; an error when the stored message cannot be read.
    pub message: Result<Message, String>,
    pub recipient: String,
    /// Including this one.
    pub attempts: u32,
    /// Several deliveries of one claim may share a reader.
    pub reader: ClaimedReader,
    /// The digest edition it belongs to.
    pub edition_id: Option<Uuid>,
    /// When the lease ends, by this process's clock.
    pub lease_until: Instant,
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
    pub status: DeliveryStatus,
    pub count: i64,
}

/// Deliveries whose lease ran out with every attempt used: each attempt
/// ended without an outcome (its worker died, or the message crashed it),
/// so it is not tried again. (The `IN` lets SQLite use the partial index of
/// due deliveries instead of reading the whole table.)
const GIVE_UP_EXHAUSTED: &str = concat!(
    "UPDATE deliveries SET status = $3, updated_at = $1, \
         last_error = 'gave up after ' || attempts || ' attempts: ' || COALESCE(last_error, 'none of them ended with an outcome') \
     WHERE status ",
    still_to_send!(),
    " AND status = $4 AND next_attempt_at <= $1 AND attempts >= $2"
);

impl Store {
    /// Leases up to `limit` due deliveries for `lease`: queued ones whose time
    /// has come, and ones whose earlier lease ran out (their worker died),
    /// unless those have used all `max_attempts`, which fail instead.
    pub async fn claim_due_deliveries(
        &self,
        limit: u32,
        lease: Duration,
        max_attempts: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let started = Instant::now();
        let now = now();
        let claim_id = Uuid::new_v4();
        let claim = format!(
            "UPDATE deliveries \
             SET status = $5, claim_id = $1, attempts = attempts + 1, next_attempt_at = $2, updated_at = $3 \
             WHERE id IN (SELECT id FROM deliveries \
                 WHERE status {still_to_send} AND next_attempt_at <= $3 \
                 ORDER BY next_attempt_at LIMIT $4{skip_locked}) \
             RETURNING id, kind, subscriber_id, recipient, payload, attempts, edition_id",
            still_to_send = still_to_send!(),
            skip_locked = self.dialect().skip_locked(),
        );
        let rows: Vec<ClaimedRow> = on_writer!(self, |pool| {
            sqlx::query(GIVE_UP_EXHAUSTED)
                .bind(now)
                .bind(i64::from(max_attempts))
                .bind(DeliveryStatus::Failed)
                .bind(DeliveryStatus::Sending)
                .execute(pool)
                .await?;
            sqlx::query_as(AssertSqlSafe(claim))
                .bind(claim_id)
                .bind(now + lease)
                .bind(now)
                .bind(i64::from(limit))
                .bind(DeliveryStatus::Sending)
                .fetch_all(pool)
                .await
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
        let readers: HashMap<Uuid, ClaimedReader> = subscribers
            .into_iter()
            .map(|row| {
                let id = row.id();
                let reader = match Subscriber::try_from(row) {
                    Ok(subscriber) => ClaimedReader::Found(Arc::new(subscriber)),
                    Err(error) => ClaimedReader::Unreadable(error.to_string()),
                };
                (id, reader)
            })
            .collect();
        Ok(rows
            .into_iter()
            .map(|row| ClaimedDelivery {
                id: row.id,
                claim_id,
                message: Message::from_stored(&row.kind, &row.payload),
                kind_name: row.kind,
                recipient: row.recipient,
                attempts: u32::try_from(row.attempts).unwrap_or(0),
                reader: row.subscriber_id.and_then(|id| readers.get(&id).cloned()).unwrap_or(ClaimedReader::Erased),
                edition_id: row.edition_id,
                lease_until: started + lease,
            })
            .collect())
    }

    /// Extends a claimed delivery's lease by `lease` from now, right before
    /// it is sent. False when the claim was lost: its lease ran out and
    /// another worker took it over, or a pause or cancel took it back.
    pub async fn renew_delivery_lease(&self, delivery_id: Uuid, claim_id: Uuid, lease: Duration) -> StoreResult<bool> {
        let now = now();
        let renewed = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE deliveries SET next_attempt_at = $3, updated_at = $4 \
                 WHERE id = $1 AND claim_id = $2 AND status = $5",
            )
            .bind(delivery_id)
            .bind(claim_id)
            .bind(now + lease)
            .bind(now)
            .bind(DeliveryStatus::Sending)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(renewed == 1)
    }

    /// Extends the leases of deliveries this worker holds and has not yet
    /// recorded (`(delivery, claim)` pairs) by `lease` from now, so one that
    /// waits long for a session is not taken over while its worker lives.
    pub async fn extend_leases(&self, held: &[(Uuid, Uuid)], lease: Duration) -> StoreResult<u64> {
        let until = now() + lease;
        let dialect = self.dialect();
        let extend = format!(
            "UPDATE deliveries SET next_attempt_at = $1 WHERE status = $4 AND {} AND {}",
            dialect.in_list::<Uuid>("id", 2),
            dialect.in_list::<Uuid>("claim_id", 3),
        );
        let (ids, claims): (Vec<Uuid>, Vec<Uuid>) = held.iter().copied().unzip();
        let extended = on_writer!(self, |pool| {
            sqlx::query(AssertSqlSafe(extend))
                .bind(until)
                .bind(List(&ids))
                .bind(List(&claims))
                .bind(DeliveryStatus::Sending)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(extended)
    }

    /// Marks deliveries of one claim sent, with the Message-ID the worker gave
    /// them (`<delivery id@domain>`), and moves each digest reader's "last
    /// digest" to their edition's stories: a reader's stories count as had
    /// only once their digest went out. Rows whose claim was lost (another
    /// worker took them over) are left alone. Returns how many were marked.
    pub async fn mark_deliveries_sent(&self, claim_id: Uuid, ids: &[Uuid], message_domain: &str) -> StoreResult<u64> {
        let now = now();
        let dialect = self.dialect();
        let mark = format!(
            "UPDATE deliveries SET status = $5, sent_at = $2, updated_at = $2, last_error = NULL, \
                 message_id = '<' || {hex} || '@' || $3 || '>' \
             WHERE claim_id = $1 AND status = $6 AND {ids}",
            hex = dialect.id_hex("id"),
            ids = dialect.in_list::<Uuid>("id", 4),
        );
        let advance_last_digest = format!(
            "UPDATE subscribers SET last_digest_at = e.stories_until \
             FROM deliveries d JOIN editions e ON e.id = d.edition_id \
             WHERE d.subscriber_id = subscribers.id AND d.claim_id = $1 AND d.status = $3 AND d.kind = 'digest' \
               AND (subscribers.last_digest_at IS NULL OR subscribers.last_digest_at < e.stories_until) AND {ids}",
            ids = dialect.in_list::<Uuid>("d.id", 2),
        );
        let marked = in_transaction!(self, |tx| {
            let marked = sqlx::query(AssertSqlSafe(mark))
                .bind(claim_id)
                .bind(now)
                .bind(message_domain)
                .bind(List(ids))
                .bind(DeliveryStatus::Sent)
                .bind(DeliveryStatus::Sending)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(AssertSqlSafe(advance_last_digest))
                .bind(claim_id)
                .bind(List(ids))
                .bind(DeliveryStatus::Sent)
                .execute(&mut *tx)
                .await?;
            marked
        });
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
        let requeue = format!(
            "UPDATE deliveries SET \
                 status = CASE WHEN edition_state = $9 THEN $10 ELSE $11 END, \
                 next_attempt_at = CASE WHEN edition_state = $12 THEN $6 ELSE $4 END, \
                 attempts = attempts - $7, updated_at = $5, \
                 last_error = CASE WHEN edition_state = $9 THEN 'edition cancelled by an admin' \
                     ELSE COALESCE($3, last_error) END \
             FROM (SELECT (SELECT state FROM editions WHERE id = $8{for_share}) AS edition_state) AS edition \
             WHERE id = $1 AND claim_id = $2 AND status = $13",
            for_share = self.dialect().for_share(),
        );
        let result = on_writer!(self, |pool| {
            sqlx::query(AssertSqlSafe(requeue))
                .bind(delivery.id)
                .bind(delivery.claim_id)
                .bind(error)
                .bind(retry_at)
                .bind(now())
                .bind(paused_until())
                .bind(i64::from(attempt == Attempt::NotMade))
                .bind(delivery.edition_id)
                .bind(EditionState::Cancelled)
                .bind(DeliveryStatus::Suppressed)
                .bind(DeliveryStatus::Queued)
                .bind(EditionState::Paused)
                .bind(DeliveryStatus::Sending)
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
                 WHERE id = $1 AND claim_id = $2 AND status = $6",
            )
            .bind(delivery.id)
            .bind(delivery.claim_id)
            .bind(DeliveryStatus::from(status))
            .bind(error)
            .bind(now)
            .bind(DeliveryStatus::Sending)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if changed
                && bounce_subscriber
                && let ClaimedReader::Found(subscriber) = &delivery.reader
            {
                sqlx::query("UPDATE subscribers SET status = $3, updated_at = $2 WHERE id = $1 AND status IN ($4, $5)")
                    .bind(subscriber.id)
                    .bind(now)
                    .bind(SubscriberStatus::Bounced)
                    .bind(SubscriberStatus::Pending)
                    .bind(SubscriberStatus::Confirmed)
                    .execute(&mut *tx)
                    .await?;
            }
            changed
        });
        Ok(changed)
    }

    /// How many deliveries there are of each kind in each status.
    pub async fn delivery_counts(&self) -> StoreResult<Vec<DeliveryCount>> {
        let rows: Vec<(String, DeliveryStatus, i64)> = on_reader!(self, |pool| {
            sqlx::query_as("SELECT kind, status, COUNT(*) FROM deliveries GROUP BY kind, status ORDER BY kind, status")
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(|(kind, status, count)| DeliveryCount { kind, status, count }).collect())
    }
}

/// Paused deliveries wait until this time, so the claim query passes them by
/// without a check of its own; resuming makes them due now.
pub(super) fn paused_until() -> DateTime<Utc> {
    DateTime::from_timestamp(253_370_764_800, 0).expect("9999-01-01 is a valid time")
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

impl From<FinalStatus> for DeliveryStatus {
    fn from(status: FinalStatus) -> Self {
        match status {
            FinalStatus::Failed => Self::Failed,
            FinalStatus::Suppressed => Self::Suppressed,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::DeliveryStatus;

    #[test]
    fn the_statuses_still_to_send_are_spelled_as_the_enum_spells_them() {
        let spelled = format!("IN ('{}', '{}')", DeliveryStatus::Queued, DeliveryStatus::Sending);
        assert_eq!(still_to_send!(), spelled);
    }
}
