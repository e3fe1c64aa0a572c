//! Idempotency keys of test sends: the first request with a key sends, and
//! every repeat gets its answer.

use super::{Store, StoreResult, now, on_reader, on_writer};

/// What a key says about a test send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestSendKey {
    /// First use: go ahead, then record the answer.
    New,
    /// Used before: its answer (status, JSON body), or `None` while the first is still sending.
    Seen(Option<(u16, String)>),
}

impl Store {
    pub async fn claim_test_send_key(&self, key: &str) -> StoreResult<TestSendKey> {
        let inserted = on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO test_sends (idempotency_key, created_at) VALUES ($1, $2) \
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(key)
            .bind(now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        if inserted == 1 {
            return Ok(TestSendKey::New);
        }
        let answer: Option<(Option<i64>, Option<String>)> = on_reader!(self, |pool| {
            sqlx::query_as("SELECT status, response FROM test_sends WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await
        })?;
        Ok(TestSendKey::Seen(match answer {
            Some((Some(status), Some(body))) => Some((u16::try_from(status).unwrap_or(500), body)),
            _ => None,
        }))
    }

    pub async fn record_test_send(&self, key: &str, status: u16, body: &str) -> StoreResult<()> {
        on_writer!(self, |pool| {
            sqlx::query("UPDATE test_sends SET status = $1, response = $2 WHERE idempotency_key = $3")
                .bind(i64::from(status))
                .bind(body)
                .bind(key)
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }
}
