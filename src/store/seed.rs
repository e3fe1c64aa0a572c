//! Confirmed readers made in bulk, for the benchmarks and the crash tests
//! (one set-based statement: 100,000 rows in a moment). Not reachable from
//! the web or the CLI.

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use super::dialect::Dialect;
use super::{Store, StoreResult, in_transaction};
use crate::domain::SubscriberStatus;

/// $1 readers `{$2}{i}@{$3}` in status $6, following $4, confirmed at $5.
fn seed_readers(dialect: Dialect) -> String {
    format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO subscribers (id, email, name, status, tickers, token_nonce, created_at, updated_at, confirmed_at) \
         SELECT {id}, $2 || i || '@' || $3, 'Reader ' || i, $6, $4, {nonce}, $5, $5, $5 FROM n",
        id = dialect.random_id(),
        nonce = dialect.id_hex(dialect.random_id()),
    )
}

// Every other way in records a consent, so the readers without one are those
// just seeded.
fn seed_consents(dialect: Dialect) -> String {
    format!(
        "INSERT INTO consents (id, subscriber_id, at, source) \
         SELECT {id}, id, $1, 'seed' FROM subscribers s \
         WHERE NOT EXISTS (SELECT 1 FROM consents c WHERE c.subscriber_id = s.id)",
        id = dialect.random_id(),
    )
}

impl Store {
    /// Adds `count` confirmed readers `{prefix}{i}@{domain}` (i from 1) who
    /// follow `tickers` (stored form) and confirmed at `confirmed_at`.
    pub async fn seed_confirmed_subscribers(
        &self,
        count: u32,
        prefix: &str,
        domain: &str,
        tickers: &str,
        confirmed_at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let (readers, consents) = (seed_readers(self.dialect()), seed_consents(self.dialect()));
        let added = in_transaction!(self, |tx| {
            let added = sqlx::query(AssertSqlSafe(readers))
                .bind(i64::from(count))
                .bind(prefix)
                .bind(domain)
                .bind(tickers)
                .bind(confirmed_at)
                .bind(SubscriberStatus::Confirmed)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(AssertSqlSafe(consents)).bind(confirmed_at).execute(&mut *tx).await?;
            added
        });
        Ok(added)
    }
}
