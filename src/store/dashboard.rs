//! What the admin dashboard shows: sign-ups and unsubscribes by day, the
//! latest editions with their progress, failures, and the newest quotes.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{DeliveryProgress, Store, StoreResult, on_reader, on_writer};
use crate::domain::{DeliveryStatus, EditionState, StoredQuote};

/// Sign-ups and unsubscribes of one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCounts {
    pub day: NaiveDate,
    pub signups: i64,
    pub unsubscribes: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EditionSummary {
    pub id: Uuid,
    /// `daily` or `weekly`.
    pub kind: String,
    pub slot: String,
    pub created_at: DateTime<Utc>,
    pub recipients: i64,
    pub state: EditionState,
    /// Why it is paused: by an admin, or by itself when too much of it failed.
    pub state_reason: Option<String>,
    pub progress: DeliveryProgress,
}

impl EditionSummary {
    /// Made by the schedule (its slot is a time), not by hand.
    pub fn scheduled(&self) -> bool {
        !self.slot.contains(":manual:")
    }

    /// What an admin should read: `paused`, `cancelled`, `sending`, or `done`.
    pub fn status(&self) -> &'static str {
        match self.state {
            EditionState::Sending if self.progress.is_done() => "done",
            state => state.as_str(),
        }
    }
}

/// A delivery that failed for good, or is waiting to be retried after an error.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeliveryFailure {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// A day (`YYYY-MM-DD`) and a count.
type DayCount = (String, i64);

#[derive(sqlx::FromRow)]
struct EditionRow {
    id: Uuid,
    kind: String,
    slot: String,
    created_at: DateTime<Utc>,
    recipients: i64,
    state: EditionState,
    state_reason: Option<String>,
    settled_sent: Option<i64>,
    settled_failed: Option<i64>,
    settled_suppressed: Option<i64>,
}

macro_rules! select_editions {
    ($rest:literal) => {
        concat!(
            "SELECT id, kind, slot, created_at, recipients, state, state_reason, settled_sent, settled_failed, \
                 settled_suppressed \
             FROM editions ",
            $rest
        )
    };
}

impl Store {
    /// One row per day from `since` to today, days without any included.
    pub async fn daily_signups(&self, since: DateTime<Utc>, today: NaiveDate) -> StoreResult<Vec<DayCounts>> {
        let count_by_day = |column: &str| {
            format!(
                "SELECT {day} AS day, COUNT(*) FROM subscribers WHERE {column} >= $1 GROUP BY {day}",
                day = self.dialect().day_of(column)
            )
        };
        let (signups, unsubscribes): (Vec<DayCount>, Vec<DayCount>) = on_reader!(self, |pool| {
            let signups =
                sqlx::query_as(sqlx::AssertSqlSafe(count_by_day("created_at"))).bind(since).fetch_all(pool).await?;
            let unsubscribes = sqlx::query_as(sqlx::AssertSqlSafe(count_by_day("unsubscribed_at")))
                .bind(since)
                .fetch_all(pool)
                .await?;
            (signups, unsubscribes)
        });
        let count_on = |counts: &[DayCount], day: NaiveDate| {
            let day = day.format("%Y-%m-%d").to_string();
            counts.iter().find(|(d, _)| *d == day).map_or(0, |(_, n)| *n)
        };
        Ok(since
            .date_naive()
            .iter_days()
            .take_while(|day| *day <= today)
            .map(|day| DayCounts { day, signups: count_on(&signups, day), unsubscribes: count_on(&unsubscribes, day) })
            .collect())
    }

    /// The newest editions, with how their deliveries stand.
    pub async fn recent_editions(&self, limit: u32) -> StoreResult<Vec<EditionSummary>> {
        let rows: Vec<EditionRow> = on_reader!(self, |pool| {
            sqlx::query_as(select_editions!("ORDER BY created_at DESC LIMIT $1"))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        })?;
        let mut editions = Vec::with_capacity(rows.len());
        for row in rows {
            editions.push(self.summarise(row).await?);
        }
        Ok(editions)
    }

    pub async fn edition_summary(&self, id: Uuid) -> StoreResult<Option<EditionSummary>> {
        let row: Option<EditionRow> = on_reader!(self, |pool| {
            sqlx::query_as(select_editions!("WHERE id = $1")).bind(id).fetch_optional(pool).await
        })?;
        match row {
            Some(row) => Ok(Some(self.summarise(row).await?)),
            None => Ok(None),
        }
    }

    /// An edition's summary. Its deliveries are counted until they have all
    /// ended; then the counts are kept on the edition, as they no longer change.
    async fn summarise(&self, row: EditionRow) -> StoreResult<EditionSummary> {
        let progress = match (row.settled_sent, row.settled_failed, row.settled_suppressed) {
            (Some(sent), Some(failed), Some(suppressed)) => {
                DeliveryProgress { sent, failed, suppressed, ..Default::default() }
            }
            _ => {
                let progress = self.edition_progress(row.id).await?;
                // Keeping the counts saves work later; failing to is no reason to fail the page.
                if progress.is_done()
                    && let Err(error) = self.settle_edition(row.id, &progress).await
                {
                    tracing::warn!(%error, edition = %row.id, "cannot keep a finished edition's counts");
                }
                progress
            }
        };
        Ok(EditionSummary {
            progress,
            id: row.id,
            kind: row.kind,
            slot: row.slot,
            created_at: row.created_at,
            recipients: row.recipients,
            state: row.state,
            state_reason: row.state_reason,
        })
    }

    async fn settle_edition(&self, id: Uuid, progress: &DeliveryProgress) -> StoreResult<()> {
        on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE editions SET settled_sent = $2, settled_failed = $3, settled_suppressed = $4 \
                 WHERE id = $1 AND settled_sent IS NULL",
            )
            .bind(id)
            .bind(progress.sent)
            .bind(progress.failed)
            .bind(progress.suppressed)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// The latest deliveries that failed or wait for a retry, with their error.
    pub async fn recent_failures(&self, limit: u32) -> StoreResult<Vec<DeliveryFailure>> {
        on_reader!(self, |pool| {
            sqlx::query_as(
                "SELECT id, kind, recipient, status, attempts, last_error, updated_at FROM deliveries \
                 WHERE last_error IS NOT NULL AND status IN ($2, $3, $4) \
                 ORDER BY updated_at DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .bind(DeliveryStatus::Failed)
            .bind(DeliveryStatus::Queued)
            .bind(DeliveryStatus::Sending)
            .fetch_all(pool)
            .await
        })
        .map_err(Into::into)
    }

    /// The most recently updated quotes.
    pub async fn newest_quotes(&self, limit: u32) -> StoreResult<Vec<StoredQuote>> {
        on_reader!(self, |pool| {
            sqlx::query_as(
                "SELECT symbol, price, previous_close, currency, as_of, source, suspect FROM latest_quotes \
                 ORDER BY as_of DESC, symbol LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(Into::into)
    }
}
