//! Digest editions. An edition is created once per schedule slot (the slot
//! is unique, so several instances or a restart make exactly one), snapshots
//! the stories and quotes it will show, and queues one delivery per reader in
//! a single set-based statement, all in one transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::deliveries::{paused_until, still_to_send};
use super::dialect::{Dialect, List};
use super::stories::{StoryRow, story_columns};
use super::{Store, StoreError, StoreResult, in_transaction, on_reader};
use crate::domain::{
    DeliveryStatus, DigestFrequency, EditionContent, EditionState, StoredQuote, Story, SubscriberStatus,
};

/// One digest run: which readers, which slot, and how far back stories go.
#[derive(Debug, Clone)]
pub struct DigestRun {
    pub frequency: DigestFrequency,
    /// Unique per run: the schedule slot, or a one-off key for a manual run.
    pub slot: String,
    pub now: DateTime<Utc>,
    /// Stories stored up to this time are in this edition; later ones wait for
    /// the next. It lags `now` a little, so a story whose save was under way
    /// while the edition was made is never skipped.
    pub stories_until: DateTime<Utc>,
    /// Stories published before this are never sent, however long a reader
    /// has waited; quotes older than this are not shown.
    pub oldest_story: DateTime<Utc>,
    pub max_stories: u32,
    /// Send readers with no new story their watchlist's moves anyway.
    pub send_empty: bool,
    /// Keep the edition when nobody is due one: a schedule's slot is then
    /// done; a run on demand that reaches nobody leaves nothing behind.
    pub keep_empty: bool,
}

/// What asking for an edition did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditionOutcome {
    Created(EditionCreated),
    /// That slot already has its edition.
    SlotTaken,
    /// An edition of this frequency is still going out; nothing was created.
    UnderWay {
        edition_id: Uuid,
    },
    /// Nobody is due a digest (and the run keeps no empty edition); nothing was created.
    NobodyDue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditionCreated {
    pub id: Uuid,
    pub recipients: u64,
    pub stories: usize,
    pub quotes: usize,
}

/// How an edition's deliveries stand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryProgress {
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    pub suppressed: i64,
}

impl DeliveryProgress {
    pub fn is_done(&self) -> bool {
        self.queued == 0 && self.sending == 0
    }
}

/// The readers a digest run goes to ($1 frequency, $2 send_empty, $3 stories
/// until, $4 oldest story, $5 the confirmed status): confirmed, on this
/// frequency, with a story they have not had (stored after their last digest
/// sent, published after they confirmed), and no digest still on its way to
/// them (it may yet carry those stories: they wait for the next run).
macro_rules! digest_recipients {
    () => {
        concat!(
            " FROM subscribers s WHERE s.status = $5 AND s.digest_frequency = $1 \
              AND ($2 OR EXISTS (SELECT 1 FROM stories st WHERE NOT st.hidden \
                  AND st.created_at > COALESCE(s.last_digest_at, s.confirmed_at) AND st.created_at <= $3 \
                  AND st.published_at >= s.confirmed_at AND st.published_at > $4)) \
              AND NOT EXISTS (SELECT 1 FROM deliveries pending WHERE pending.subscriber_id = s.id \
                  AND pending.kind = 'digest' AND pending.status ",
            still_to_send!(),
            ")"
        )
    };
}

/// An edition of kind $1 created after $2 that still has deliveries to make
/// and was not cancelled ($3): only one per frequency goes out at a time.
const EDITION_UNDER_WAY: &str = concat!(
    "SELECT e.id FROM editions e \
     WHERE e.kind = $1 AND e.state <> $3 AND e.settled_sent IS NULL AND e.created_at > $2 \
       AND EXISTS (SELECT 1 FROM deliveries d WHERE d.edition_id = e.id AND d.status ",
    still_to_send!(),
    ") ORDER BY e.created_at DESC LIMIT 1"
);

/// How far back `EDITION_UNDER_WAY` looks: an edition still going out after
/// a week no longer holds the next one back.
const UNDER_WAY_LOOKBACK_DAYS: i64 = 7;

/// Queues a delivery for each reader of a run (`digest_recipients!`'s $1 to
/// $5; $6 the edition, $7 now, $8 the queued status). Each payload keeps what
/// its reader is due (stories stored after `since`, published after
/// `confirmed_at`) and their watchlist at this moment. On SQLite the ids of
/// one edition are consecutive after a prefix of its own ($9), so its rows are
/// appended to the primary key's B-tree instead of scattered over it. Rows go
/// in in subscriber order, so the indexes keyed by subscriber are written in
/// one pass from end to end (each page once) rather than at random, which is
/// what made a large edition slow to create.
fn queue_digest_deliveries(dialect: Dialect) -> String {
    format!(
        concat!(
            "INSERT INTO deliveries (id, kind, subscriber_id, recipient, payload, status, attempts, next_attempt_at, \
                 created_at, updated_at, edition_id) \
             SELECT {id}, 'digest', s.id, s.email, \
                 CAST({json_object}('since', COALESCE(s.last_digest_at, s.confirmed_at), 'confirmed_at', s.confirmed_at, \
                     'watchlist', s.tickers) AS TEXT), \
                 $8, 0, $7, $7, $7, $6",
            digest_recipients!(),
            " ORDER BY s.id"
        ),
        id = dialect.row_ids(9, "s.id"),
        json_object = dialect.json_object(),
    )
}

// The newest stored first: those are the ones readers have not had.
const SNAPSHOT_STORIES: &str = concat!(
    "SELECT ",
    story_columns!(),
    " FROM stories WHERE NOT hidden AND created_at <= $1 AND published_at > $2 \
     ORDER BY created_at DESC LIMIT $3"
);

const SNAPSHOT_QUOTES: &str = "SELECT symbol, price, previous_close, currency, as_of, source, suspect FROM latest_quotes WHERE as_of >= $1 AND NOT suspect ORDER BY symbol";

impl Store {
    /// Creates the edition for `run.slot` and queues its deliveries, unless
    /// that slot already has its edition or another edition of the same
    /// frequency is still going out. Creations of one frequency run one at a
    /// time (SQLite has one writer; PostgreSQL takes a lock per frequency),
    /// so simultaneous run-nows, or a run-now and the schedule, make one.
    pub async fn create_digest_edition(&self, run: &DigestRun) -> StoreResult<EditionOutcome> {
        let dialect = self.dialect();
        let queue = queue_digest_deliveries(dialect);
        let outcome = in_transaction!(self, |tx| {
            if dialect == Dialect::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(format!("tickermail:edition:{}", run.frequency.as_str()))
                    .execute(&mut *tx)
                    .await?;
            }
            let under_way: Option<Uuid> = sqlx::query_scalar(EDITION_UNDER_WAY)
                .bind(run.frequency.as_str())
                .bind(run.now - chrono::Duration::days(UNDER_WAY_LOOKBACK_DAYS))
                .bind(EditionState::Cancelled)
                .fetch_optional(&mut *tx)
                .await?;
            let id: Option<Uuid> =
                match under_way {
                    Some(_) => None,
                    None => sqlx::query_scalar(
                        "INSERT INTO editions (id, kind, slot, created_at, stories_until) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (slot) DO NOTHING RETURNING id",
                    )
                    .bind(Uuid::new_v4())
                    .bind(run.frequency.as_str())
                    .bind(&run.slot)
                    .bind(run.now)
                    .bind(run.stories_until)
                    .fetch_optional(&mut *tx)
                    .await?,
                };
            match (under_way, id) {
                (Some(edition_id), _) => EditionOutcome::UnderWay { edition_id },
                (None, None) => EditionOutcome::SlotTaken,
                (None, Some(id)) => {
                    let stories: Vec<StoryRow> = sqlx::query_as(SNAPSHOT_STORIES)
                        .bind(run.stories_until)
                        .bind(run.oldest_story)
                        .bind(i64::from(run.max_stories))
                        .fetch_all(&mut *tx)
                        .await?;
                    let quotes: Vec<StoredQuote> =
                        sqlx::query_as(SNAPSHOT_QUOTES).bind(run.oldest_story).fetch_all(&mut *tx).await?;
                    let content = EditionContent {
                        created_at: run.now,
                        stories: stories.into_iter().map(Story::from).collect(),
                        quotes,
                    };
                    let mut queue = sqlx::query(AssertSqlSafe(queue))
                        .bind(run.frequency.as_str())
                        .bind(run.send_empty)
                        .bind(run.stories_until)
                        .bind(run.oldest_story)
                        .bind(SubscriberStatus::Confirmed)
                        .bind(id)
                        .bind(run.now)
                        .bind(DeliveryStatus::Queued);
                    if dialect == Dialect::Sqlite {
                        queue = queue.bind(delivery_id_prefix(run.now));
                    }
                    let recipients = queue.execute(&mut *tx).await?.rows_affected();
                    if recipients == 0 && !run.keep_empty {
                        // Leaving without a commit rolls the edition back.
                        return Ok(EditionOutcome::NobodyDue);
                    }
                    sqlx::query("UPDATE editions SET content = $1, recipients = $2 WHERE id = $3")
                        .bind(serde_json::to_string(&content).map_err(|e| StoreError::Corrupt(e.to_string()))?)
                        .bind(i64::try_from(recipients).unwrap_or(i64::MAX))
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    EditionOutcome::Created(EditionCreated {
                        id,
                        recipients,
                        stories: content.stories.len(),
                        quotes: content.quotes.len(),
                    })
                }
            }
        });
        Ok(outcome)
    }

    /// What a run would do, without doing it: how many readers, and the stories it would snapshot.
    pub async fn preview_digest(&self, run: &DigestRun) -> StoreResult<(i64, Vec<Story>)> {
        on_reader!(self, |pool| {
            let recipients: i64 = sqlx::query_scalar(concat!("SELECT COUNT(*)", digest_recipients!()))
                .bind(run.frequency.as_str())
                .bind(run.send_empty)
                .bind(run.stories_until)
                .bind(run.oldest_story)
                .bind(SubscriberStatus::Confirmed)
                .fetch_one(pool)
                .await?;
            let stories: Vec<StoryRow> = sqlx::query_as(SNAPSHOT_STORIES)
                .bind(run.stories_until)
                .bind(run.oldest_story)
                .bind(i64::from(run.max_stories))
                .fetch_all(pool)
                .await?;
            Ok((recipients, stories.into_iter().map(Story::from).collect()))
        })
    }

    pub async fn edition_exists(&self, slot: &str) -> StoreResult<bool> {
        let found: Option<Uuid> = on_reader!(self, |pool| {
            sqlx::query_scalar("SELECT id FROM editions WHERE slot = $1").bind(slot).fetch_optional(pool).await
        })?;
        Ok(found.is_some())
    }

    /// `None` when there is no such edition.
    pub async fn edition_state(&self, id: Uuid) -> StoreResult<Option<EditionState>> {
        Ok(on_reader!(self, |pool| {
            sqlx::query_scalar("SELECT state FROM editions WHERE id = $1").bind(id).fetch_optional(pool).await
        })?)
    }

    pub async fn edition_content(&self, id: Uuid) -> StoreResult<Option<EditionContent>> {
        let content: Option<String> = on_reader!(self, |pool| {
            sqlx::query_scalar("SELECT content FROM editions WHERE id = $1").bind(id).fetch_optional(pool).await
        })?;
        content
            .map(|c| serde_json::from_str(&c).map_err(|e| StoreError::Corrupt(format!("edition {id} content: {e}"))))
            .transpose()
    }

    pub async fn edition_progress(&self, id: Uuid) -> StoreResult<DeliveryProgress> {
        let counts: Vec<(DeliveryStatus, i64)> = on_reader!(self, |pool| {
            sqlx::query_as("SELECT status, COUNT(*) FROM deliveries WHERE edition_id = $1 GROUP BY status")
                .bind(id)
                .fetch_all(pool)
                .await
        })?;
        Ok(DeliveryProgress::from_counts(counts))
    }

    /// How the deliveries `ids` stand.
    pub async fn deliveries_progress(&self, ids: &[Uuid]) -> StoreResult<DeliveryProgress> {
        let count = format!(
            "SELECT status, COUNT(*) FROM deliveries WHERE {} GROUP BY status",
            self.dialect().in_list::<Uuid>("id", 1)
        );
        let mut counts = Vec::new();
        for chunk in ids.chunks(500) {
            let chunk_counts: Vec<(DeliveryStatus, i64)> = on_reader!(self, |pool| {
                sqlx::query_as(AssertSqlSafe(count.as_str())).bind(List(chunk)).fetch_all(pool).await
            })?;
            counts.extend(chunk_counts);
        }
        Ok(DeliveryProgress::from_counts(counts))
    }
}

/// What an admin can do to an edition while it is being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditionAction {
    /// Nothing more is sent until it is resumed; sends already under way finish.
    Pause,
    Resume,
    /// What has not been sent never will be (those deliveries become `suppressed`).
    Cancel,
}

impl std::str::FromStr for EditionAction {
    type Err = String;

    fn from_str(action: &str) -> Result<Self, String> {
        match action {
            "pause" => Ok(Self::Pause),
            "resume" => Ok(Self::Resume),
            "cancel" => Ok(Self::Cancel),
            _ => Err("action must be pause, resume or cancel".into()),
        }
    }
}

/// How an edition action went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditionControl {
    /// Done; the edition's state now.
    Done(EditionState),
    NoSuchEdition,
    /// The edition's state does not allow it (a cancelled edition cannot be resumed).
    NotNow(EditionState),
}

/// The first 10 of an edition's delivery ids' 16 bytes, in hex: the time in
/// milliseconds (as UUIDv7 starts) and 32 random bits.
fn delivery_id_prefix(now: DateTime<Utc>) -> String {
    let millis = u64::try_from(now.timestamp_millis()).unwrap_or_default() & 0xffff_ffff_ffff;
    format!("{millis:012x}{:08x}", rand::random::<u32>())
}

impl Store {
    /// Pauses, resumes or cancels edition `id` for an admin.
    pub async fn control_edition(&self, id: Uuid, action: EditionAction) -> StoreResult<EditionControl> {
        self.change_edition_state(id, action, "paused by an admin").await
    }

    /// Pauses edition `id` on the worker's own account, saying why.
    pub async fn pause_edition(&self, id: Uuid, reason: &str) -> StoreResult<EditionControl> {
        self.change_edition_state(id, EditionAction::Pause, reason).await
    }

    async fn change_edition_state(
        &self,
        id: Uuid,
        action: EditionAction,
        pause_reason: &str,
    ) -> StoreResult<EditionControl> {
        let now = super::now();
        let (from, to): (&[EditionState], EditionState) = match action {
            EditionAction::Pause => (&[EditionState::Sending], EditionState::Paused),
            EditionAction::Resume => (&[EditionState::Paused], EditionState::Sending),
            EditionAction::Cancel => (&[EditionState::Sending, EditionState::Paused], EditionState::Cancelled),
        };
        in_transaction!(self, |tx| {
            let current: Option<EditionState> = sqlx::query_scalar("SELECT state FROM editions WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(current) = current else {
                return Ok(EditionControl::NoSuchEdition);
            };
            if !from.contains(&current) {
                return Ok(EditionControl::NotNow(current));
            }
            // Guarded by the state read, so a resume racing a cancel cannot undo it.
            let reason = (action == EditionAction::Pause).then_some(pause_reason);
            let changed = sqlx::query("UPDATE editions SET state = $1, state_reason = $4 WHERE id = $2 AND state = $3")
                .bind(to)
                .bind(id)
                .bind(current)
                .bind(reason)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Ok(EditionControl::NotNow(current));
            }
            match action {
                // Deliveries whose worker died (lease run out) wait too, instead of being taken over.
                EditionAction::Pause => {
                    sqlx::query(
                        "UPDATE deliveries SET status = $4, next_attempt_at = $1, updated_at = $2 \
                         WHERE edition_id = $3 AND (status = $4 OR (status = $5 AND next_attempt_at <= $2))",
                    )
                    .bind(paused_until())
                    .bind(now)
                    .bind(id)
                    .bind(DeliveryStatus::Queued)
                    .bind(DeliveryStatus::Sending)
                    .execute(&mut *tx)
                    .await?;
                }
                EditionAction::Resume => {
                    sqlx::query(
                        "UPDATE deliveries SET next_attempt_at = $1, updated_at = $1 \
                         WHERE edition_id = $2 AND status = $3",
                    )
                    .bind(now)
                    .bind(id)
                    .bind(DeliveryStatus::Queued)
                    .execute(&mut *tx)
                    .await?;
                }
                // A delivery being sent right now (its lease still running) is left to finish.
                EditionAction::Cancel => {
                    sqlx::query(
                        "UPDATE deliveries SET status = $3, last_error = 'edition cancelled by an admin', \
                             updated_at = $1 \
                         WHERE edition_id = $2 AND (status = $4 OR (status = $5 AND next_attempt_at <= $1))",
                    )
                    .bind(now)
                    .bind(id)
                    .bind(DeliveryStatus::Suppressed)
                    .bind(DeliveryStatus::Queued)
                    .bind(DeliveryStatus::Sending)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            Ok(EditionControl::Done(to))
        })
    }
}

impl DeliveryProgress {
    fn from_counts(counts: Vec<(DeliveryStatus, i64)>) -> Self {
        let mut progress = DeliveryProgress::default();
        for (status, count) in counts {
            match status {
                DeliveryStatus::Queued => progress.queued = count,
                DeliveryStatus::Sending => progress.sending = count,
                DeliveryStatus::Sent => progress.sent = count,
                DeliveryStatus::Failed => progress.failed = count,
                DeliveryStatus::Suppressed => progress.suppressed = count,
            }
        }
        progress
    }
}
