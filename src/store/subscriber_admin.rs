//! Looking after the list: finding readers, their history, and erasing one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::dialect::List;
use super::{ConsentRecord, Store, StoreResult, in_transaction, now, on_reader};
use crate::domain::{DeliveryStatus, Subscriber, SubscriberEmail, SubscriberName, SubscriberStatus, Watchlist};
use crate::tokens::new_nonce;

/// A reader to import, already checked.
#[derive(Debug, Clone)]
pub struct ImportedReader {
    pub email: SubscriberEmail,
    pub name: SubscriberName,
    pub watchlist: Watchlist,
}

/// A reader as the admin list shows them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct SubscriberSummary {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub status: SubscriberStatus,
    pub tickers: String,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

/// One message sent (or tried) to a reader.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct DeliveryRecord {
    pub id: Uuid,
    pub kind: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// An erased reader: what files of theirs an outbox folder may hold.
#[derive(Debug, Clone)]
pub struct ErasedReader {
    pub email: String,
    pub deliveries: Vec<Uuid>,
}

/// `text` with every mention of `address` (in any letter case) struck out,
/// or `None` when it has none.
fn strike(text: &str, address: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains(address) {
        return None;
    }
    let mut struck = String::with_capacity(text.len());
    let mut rest = 0;
    for (at, _) in lower.match_indices(address) {
        struck.push_str(&text[rest..at]);
        struck.push_str("[erased]");
        rest = at + address.len();
    }
    struck.push_str(&text[rest..]);
    Some(struck)
}

/// One reader, every consent they gave (newest first), and their latest deliveries.
#[derive(Debug, Clone)]
pub struct SubscriberRecord {
    pub subscriber: Subscriber,
    pub consents: Vec<ConsentRecord>,
    pub deliveries: Vec<DeliveryRecord>,
}

/// The most deliveries a reader's history lists.
const HISTORY_LIMIT: i64 = 100;

impl Store {
    /// Readers whose address contains `email_contains` (any case), in
    /// `status` if given, in address order after `after_email`.
    pub async fn find_subscribers(
        &self,
        email_contains: &str,
        status: Option<SubscriberStatus>,
        after_email: &str,
        limit: u32,
    ) -> StoreResult<Vec<SubscriberSummary>> {
        let escaped = email_contains.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let found = on_reader!(self, |pool| {
            sqlx::query_as(
                "SELECT id, email, name, status, tickers, created_at, confirmed_at, unsubscribed_at FROM subscribers \
                 WHERE lower(email) LIKE lower($1) ESCAPE '\\' AND ($2 IS NULL OR status = $2) AND email > $3 \
                 ORDER BY email LIMIT $4",
            )
            .bind(format!("%{escaped}%"))
            .bind(status)
            .bind(after_email)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?;
        Ok(found)
    }

    /// One reader as an admin sees them: preferences, consent records and
    /// latest deliveries; `None` when there is no such reader.
    pub async fn subscriber_record(&self, id: Uuid) -> StoreResult<Option<SubscriberRecord>> {
        let Some(subscriber) = self.subscriber(id).await? else {
            return Ok(None);
        };
        let consents = self.consents(id).await?;
        let deliveries = self.subscriber_history(id).await?;
        Ok(Some(SubscriberRecord { subscriber, consents, deliveries }))
    }

    /// A reader's deliveries, newest first.
    pub async fn subscriber_history(&self, id: Uuid) -> StoreResult<Vec<DeliveryRecord>> {
        let history = on_reader!(self, |pool| {
            sqlx::query_as(
                "SELECT id, kind, status, attempts, last_error, created_at, sent_at FROM deliveries \
                 WHERE subscriber_id = $1 ORDER BY created_at DESC LIMIT $2",
            )
            .bind(id)
            .bind(HISTORY_LIMIT)
            .fetch_all(pool)
            .await
        })?;
        Ok(history)
    }

    /// Adds readers an admin says consented, as confirmed, in one transaction,
    /// each with an import consent. An address already known, in any status,
    /// is left as it is: an import never re-subscribes anyone who left or
    /// bounced. Returns how many were added.
    pub async fn import_subscribers(&self, readers: &[ImportedReader]) -> StoreResult<u64> {
        let now = now();
        match self {
            // One statement for the whole batch: row by row, each round trip
            // to the server would cost more than the row.
            Store::Postgres(pool) => {
                let column = |value: fn(&ImportedReader) -> String| readers.iter().map(value).collect::<Vec<_>>();
                let added: i64 = sqlx::query_scalar(
                    "WITH rows AS (SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) \
                                   AS r(email, name, tickers, nonce)), \
                          added AS (INSERT INTO subscribers (id, email, name, status, tickers, token_nonce, \
                                        created_at, updated_at, confirmed_at) \
                                    SELECT gen_random_uuid(), email, name, $6, tickers, nonce, $5, $5, $5 \
                                    FROM rows ON CONFLICT (email) DO NOTHING RETURNING id), \
                          consented AS (INSERT INTO consents (id, subscriber_id, at, ip, user_agent, source) \
                                    SELECT gen_random_uuid(), id, $5, NULL, NULL, 'import' FROM added RETURNING 1) \
                     SELECT COUNT(*) FROM consented",
                )
                .bind(column(|r| r.email.as_str().to_string()))
                .bind(column(|r| r.name.as_str().to_string()))
                .bind(column(|r| r.watchlist.to_stored()))
                .bind(column(|_| new_nonce()))
                .bind(now)
                .bind(SubscriberStatus::Confirmed)
                .fetch_one(pool)
                .await?;
                Ok(u64::try_from(added).unwrap_or_default())
            }
            // The same in two statements: row by row, the writer thread's
            // hand-offs cost more than the rows.
            Store::Sqlite { writer, .. } => {
                let rows: Vec<serde_json::Value> = readers
                    .iter()
                    .map(|reader| {
                        serde_json::json!({
                            "id": Uuid::new_v4().simple().to_string(),
                            "email": reader.email.as_str(),
                            "name": reader.name.as_str(),
                            "tickers": reader.watchlist.to_stored(),
                            "nonce": new_nonce(),
                        })
                    })
                    .collect();
                let rows = serde_json::Value::Array(rows).to_string();
                let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
                // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
                let added: Vec<Uuid> = sqlx::query_scalar(
                    "INSERT INTO subscribers (id, email, name, status, tickers, token_nonce, \
                         created_at, updated_at, confirmed_at) \
                     SELECT unhex(value ->> 'id'), value ->> 'email', value ->> 'name', $3, \
                         value ->> 'tickers', value ->> 'nonce', $2, $2, $2 \
                     FROM json_each($1) WHERE true \
                     ON CONFLICT (email) DO NOTHING RETURNING id",
                )
                .bind(&rows)
                .bind(now)
                .bind(SubscriberStatus::Confirmed)
                .fetch_all(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO consents (id, subscriber_id, at, ip, user_agent, source) \
                     SELECT randomblob(16), unhex(value), $2, NULL, NULL, 'import' FROM json_each($1)",
                )
                .bind(List(&added))
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(added.len() as u64)
            }
        }
    }

    /// Erases a reader and all their personal data (GDPR): their row, consent
    /// records and alert state go (the last two by cascade); their deliveries
    /// stay, for the statistics, without an address or content, and the
    /// address is struck from every reply kept (delivery errors, test-send
    /// answers). Returns what the outbox folder may still hold of them, or
    /// `None` when there is no such reader.
    pub async fn erase_subscriber(&self, id: Uuid) -> StoreResult<Option<ErasedReader>> {
        let erased = in_transaction!(self, |tx| {
            let email: Option<String> = sqlx::query_scalar("SELECT email FROM subscribers WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            match email {
                None => None,
                Some(email) => {
                    let deliveries: Vec<(Uuid, Option<String>)> =
                        sqlx::query_as("SELECT id, last_error FROM deliveries WHERE subscriber_id = $1")
                            .bind(id)
                            .fetch_all(&mut *tx)
                            .await?;
                    sqlx::query("UPDATE deliveries SET recipient = 'erased', payload = '{}' WHERE subscriber_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    for (delivery, error) in &deliveries {
                        if let Some(redacted) = error.as_deref().and_then(|error| strike(error, &email)) {
                            sqlx::query("UPDATE deliveries SET last_error = $1 WHERE id = $2")
                                .bind(redacted)
                                .bind(delivery)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                    let answers: Vec<(String, String, String)> = sqlx::query_as(
                        "SELECT scope, idempotency_key, response FROM idempotency_keys \
                         WHERE lower(response) LIKE '%' || $1 || '%'",
                    )
                    .bind(&email)
                    .fetch_all(&mut *tx)
                    .await?;
                    for (scope, key, response) in &answers {
                        if let Some(redacted) = strike(response, &email) {
                            sqlx::query(
                                "UPDATE idempotency_keys SET response = $1 WHERE scope = $2 AND idempotency_key = $3",
                            )
                            .bind(redacted)
                            .bind(scope)
                            .bind(key)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                    sqlx::query("DELETE FROM subscribers WHERE id = $1").bind(id).execute(&mut *tx).await?;
                    Some(ErasedReader { email, deliveries: deliveries.into_iter().map(|(id, _)| id).collect() })
                }
            }
        });
        Ok(erased)
    }

    /// When `id` was last queued a digest; `None` before their first.
    pub async fn last_digest_at(&self, id: Uuid) -> StoreResult<Option<DateTime<Utc>>> {
        let at: Option<Option<DateTime<Utc>>> = on_reader!(self, |pool| {
            sqlx::query_scalar("SELECT last_digest_at FROM subscribers WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(at.flatten())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_address_is_struck_from_a_reply_in_any_letter_case() {
        let reply = "RCPT TO: 550 5.1.1 <Ann@X.example>: no such user (ann@x.example)";
        assert_eq!(
            super::strike(reply, "ann@x.example").unwrap(),
            "RCPT TO: 550 5.1.1 <[erased]>: no such user ([erased])"
        );
        assert_eq!(super::strike("250 ok", "ann@x.example"), None);
    }
}
