//! Idempotency keys of admin requests that act (a test send, a run-now):
//! the first request with a key acts, and every repeat gets its answer.

use super::{Store, StoreResult, now, on_reader, on_writer};

/// What the request a key names is: keys of one scope are their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdempotencyScope {
    TestSend,
    Edition,
}

impl IdempotencyScope {
    fn as_str(self) -> &'static str {
        match self {
            Self::TestSend => "test-send",
            Self::Edition => "edition",
        }
    }
}

/// What a key says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyKey {
    /// First use: go ahead, then record the answer.
    New,
    /// Used before: its answer (status, JSON body), or `None` while the first is still under way.
    Seen(Option<(u16, String)>),
}

impl Store {
    pub async fn claim_idempotency_key(&self, scope: IdempotencyScope, key: &str) -> StoreResult<IdempotencyKey> {
        let inserted = on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO idempotency_keys (scope, idempotency_key, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (scope, idempotency_key) DO NOTHING",
            )
            .bind(scope.as_str())
            .bind(key)
            .bind(now())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        if inserted == 1 {
            return Ok(IdempotencyKey::New);
        }
        let answer: Option<(Option<i64>, Option<String>)> = on_reader!(self, |pool| {
            sqlx::query_as("SELECT status, response FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2")
                .bind(scope.as_str())
                .bind(key)
                .fetch_optional(pool)
                .await
        })?;
        Ok(IdempotencyKey::Seen(match answer {
            Some((Some(status), Some(body))) => Some((u16::try_from(status).unwrap_or(500), body)),
            _ => None,
        }))
    }

    pub async fn record_idempotent_answer(
        &self,
        scope: IdempotencyScope,
        key: &str,
        status: u16,
        body: &str,
    ) -> StoreResult<()> {
        on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE idempotency_keys SET status = $1, response = $2 WHERE scope = $3 AND idempotency_key = $4",
            )
            .bind(i64::from(status))
            .bind(body)
            .bind(scope.as_str())
            .bind(key)
            .execute(pool)
            .await
            .map(drop)
        })?;
        Ok(())
    }

    /// Forgets a key whose request got no answer to keep, so a repeat acts.
    pub async fn release_idempotency_key(&self, scope: IdempotencyScope, key: &str) -> StoreResult<()> {
        on_writer!(self, |pool| {
            sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2 AND status IS NULL")
                .bind(scope.as_str())
                .bind(key)
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }
}
