//! Confirmed readers made in bulk, for the benchmarks and the crash tests
//! (one set-based statement: 100,000 rows in a moment). Not reachable from
//! the web or the CLI.

use chrono::{DateTime, Utc};

use super::{Store, StoreResult, in_transaction};

const SEED_SQLITE: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
     INSERT INTO subscribers (id, email, name, status, tickers, token_nonce, created_at, updated_at, confirmed_at) \
     SELECT randomblob(16), $2 || i || '@' || $3, 'Reader ' || i, 'confirmed', $4, lower(hex(randomblob(16))), \
         $5, $5, $5 FROM n";

const SEED_POSTGRES: &str = "INSERT INTO subscribers (id, email, name, status, tickers, token_nonce, \
         created_at, updated_at, confirmed_at) \
     SELECT gen_random_uuid(), $2 || i || '@' || $3, 'Reader ' || i, 'confirmed', $4, md5(random()::text), \
         $5, $5, $5 FROM generate_series(1, $1) AS i";

// Every other way in records a consent, so the readers without one are those
// just seeded.
const SEED_CONSENTS_SQLITE: &str = "INSERT INTO consents (id, subscriber_id, at, source) \
     SELECT randomblob(16), id, $1, 'seed' FROM subscribers s \
     WHERE NOT EXISTS (SELECT 1 FROM consents c WHERE c.subscriber_id = s.id)";

const SEED_CONSENTS_POSTGRES: &str = "INSERT INTO consents (id, subscriber_id, at, source) \
     SELECT gen_random_uuid(), id, $1, 'seed' FROM subscribers s \
     WHERE NOT EXISTS (SELECT 1 FROM consents c WHERE c.subscriber_id = s.id)";

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
        let (readers, consents) = match self {
            Store::Sqlite { .. } => (SEED_SQLITE, SEED_CONSENTS_SQLITE),
            Store::Postgres(_) => (SEED_POSTGRES, SEED_CONSENTS_POSTGRES),
        };
        let added = in_transaction!(self, |tx| {
            let added = sqlx::query(readers)
                .bind(i64::from(count))
                .bind(prefix)
                .bind(domain)
                .bind(tickers)
                .bind(confirmed_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(consents).bind(confirmed_at).execute(&mut *tx).await?;
            added
        });
        Ok(added)
    }
}
