//! All SQL lives here. The rest of the application calls `Store` methods and
//! does not know which backend it runs on.
//!
//! One SQL string usually serves both backends (`$N` placeholders,
//! `ON CONFLICT`, `RETURNING`); where they differ, `dialect` gives the part
//! that differs, and only statements of different shapes have two arms.

mod alerts;
mod dashboard;
mod deliveries;
mod dialect;
mod editions;
mod idempotency;
mod quotes;
mod schema;
mod secrets;
mod seed;
mod signup_writer;
mod stories;
mod subscriber_admin;
mod subscriber_row;
mod subscribers;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use alerts::{AlertTiers, AlertWatcher, DueAlert};
pub use dashboard::{DayCounts, DeliveryFailure, EditionSummary};
pub use deliveries::{ClaimedDelivery, ClaimedReader, DeliveryCount, FinalStatus};
pub use editions::{DeliveryProgress, DigestRun, EditionAction, EditionControl, EditionCreated, EditionOutcome};
pub use idempotency::{IdempotencyKey, IdempotencyScope};
pub use schema::{ColumnType, Schema, SchemaColumn, SchemaIndex, UniqueConstraint};
pub use signup_writer::SignupWriter;
pub use stories::{FeedState, StoryUpsert};
pub use subscriber_admin::{DeliveryRecord, ErasedReader, ImportedReader, SubscriberRecord, SubscriberSummary};
pub use subscribers::{ConfirmOutcome, ConsentRecord, PreferencesUpdate, SignupOutcome, SignupRecord};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A connection pool for one of the two backends.
///
/// SQLite allows one writer at a time, so writes go through a pool of one
/// connection (waiters queue in order, no busy-retry storms) and reads use
/// their own pool, which WAL mode lets run beside the writer.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite { reader: SqlitePool, writer: SqlitePool },
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the pool for reads.
macro_rules! on_reader {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite { reader: $pool, .. } => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$pool` bound to the pool for single-statement writes.
macro_rules! on_writer {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite { writer: $pool, .. } => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` inside a transaction bound to `$tx` and commits it; an early
/// return with `?` rolls it back. SQLite takes the write lock up front
/// (`BEGIN IMMEDIATE`) so a transaction never fails half-way on a lock upgrade.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite { writer, .. } => {
                let mut $tx = writer.begin_with("BEGIN IMMEDIATE").await?;
                let result = $body;
                $tx.commit().await?;
                result
            }
            $crate::store::Store::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let result = $body;
                $tx.commit().await?;
                result
            }
        }
    };
}

pub(crate) use {in_transaction, on_reader, on_writer};

impl Store {
    /// Connects to `postgres://…`/`postgresql://…`, or to a SQLite file
    /// (created if missing) for anything else.
    pub async fn connect(url: &str) -> StoreResult<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool =
                PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
            return Ok(Store::Postgres(pool));
        }
        // A checkpoint that empties the WAL cuts its file back to this size;
        // otherwise it stays as large as the largest burst of writes made it.
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("journal_size_limit", "67108864");
        // A checkpoint copies the WAL into the database file and syncs it; run
        // inside a commit, it would stall every sign-up queued behind it. The
        // writer leaves checkpoints to a background task on its own connection.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        let checkpointer = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        tokio::spawn(checkpoint_wal(checkpointer));
        Ok(Store::Sqlite { reader, writer })
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Store::Sqlite { writer, .. } => SQLITE_MIGRATOR.run(writer).await?,
            Store::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Sqlite { .. } => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// When this database was set up: when its first migration ran.
    pub async fn created_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let first = "SELECT MIN(installed_on) FROM _sqlx_migrations";
        Ok(match self {
            // SQLite keeps the time as `YYYY-MM-DD HH:MM:SS`, in UTC.
            Store::Sqlite { reader, .. } => sqlx::query_scalar::<_, Option<chrono::NaiveDateTime>>(first)
                .fetch_one(reader)
                .await?
                .map(|at| at.and_utc()),
            Store::Postgres(pool) => sqlx::query_scalar(first).fetch_one(pool).await?,
        })
    }

    /// Succeeds when the database answers a query.
    pub async fn ping(&self) -> StoreResult<()> {
        on_reader!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite { reader, writer } => {
                reader.close().await;
                writer.close().await;
            }
            Store::Postgres(pool) => pool.close().await,
        }
    }
}

/// Moves the SQLite WAL into the database file every second, without
/// blocking the writer (a passive checkpoint). Ends when the pool closes.
async fn checkpoint_wal(pool: SqlitePool) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            if matches!(error, sqlx::Error::PoolClosed) {
                return;
            }
            tracing::warn!(%error, "WAL checkpoint failed");
        }
    }
}

/// The current time at the precision both backends store (microseconds), so a
/// value written and read back compares equal.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
