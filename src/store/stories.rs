//! Stories: stored once per guid, hidden by an admin, and each feed's
//! polling state.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreResult, now, on_reader, on_writer};
use crate::domain::{NewStory, Story, SubscriberStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoryUpsert {
    Inserted,
    Updated,
    Unchanged,
}

#[derive(sqlx::FromRow)]
pub(super) struct StoryRow {
    id: Uuid,
    guid: String,
    source: String,
    title: String,
    url: String,
    author: Option<String>,
    summary: String,
    tickers: String,
    published_at: DateTime<Utc>,
    hidden: bool,
    created_at: DateTime<Utc>,
}

macro_rules! story_columns {
    () => {
        "id, guid, source, title, url, author, summary, tickers, published_at, hidden, created_at"
    };
}
pub(super) use story_columns;

impl From<StoryRow> for Story {
    fn from(row: StoryRow) -> Self {
        Story {
            id: row.id,
            guid: row.guid,
            source: row.source,
            title: row.title,
            url: row.url,
            author: row.author,
            summary: row.summary,
            tickers: split_tickers(&row.tickers),
            published_at: row.published_at,
            hidden: row.hidden,
            created_at: row.created_at,
        }
    }
}

fn split_tickers(stored: &str) -> Vec<String> {
    stored.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect()
}

impl Store {
    /// Inserts a story, or updates it in place when its guid is known and
    /// something changed; an identical story is left alone.
    pub async fn upsert_story(&self, story: &NewStory) -> StoreResult<(StoryUpsert, Story)> {
        let now = now();
        let row: Option<(Uuid, bool)> = on_writer!(self, |pool| {
            sqlx::query_as(
                "INSERT INTO stories (id, guid, source, title, url, author, summary, tickers, published_at, \
                     created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                 ON CONFLICT (guid) DO UPDATE SET \
                     title = excluded.title, url = excluded.url, author = excluded.author, \
                     summary = excluded.summary, tickers = excluded.tickers, \
                     published_at = excluded.published_at, updated_at = excluded.updated_at \
                 WHERE stories.title <> excluded.title OR stories.url <> excluded.url \
                     OR stories.author IS DISTINCT FROM excluded.author OR stories.summary <> excluded.summary \
                     OR stories.tickers <> excluded.tickers OR stories.published_at <> excluded.published_at \
                 RETURNING id, created_at = $10",
            )
            .bind(Uuid::new_v4())
            .bind(&story.guid)
            .bind(&story.source)
            .bind(&story.title)
            .bind(&story.url)
            .bind(story.author.as_deref())
            .bind(&story.summary)
            .bind(story.tickers.join(","))
            .bind(story.published_at)
            .bind(now)
            .fetch_optional(pool)
            .await
        })?;
        let outcome = match row {
            None => StoryUpsert::Unchanged,
            Some((_, true)) => StoryUpsert::Inserted,
            Some((_, false)) => StoryUpsert::Updated,
        };
        let stored: StoryRow = on_writer!(self, |pool| {
            sqlx::query_as(concat!("SELECT ", story_columns!(), " FROM stories WHERE guid = $1"))
                .bind(&story.guid)
                .fetch_one(pool)
                .await
        })?;
        Ok((outcome, stored.into()))
    }

    /// The newest visible stories, newest first.
    pub async fn recent_stories(&self, limit: u32) -> StoreResult<Vec<Story>> {
        self.newest_stories(limit, false).await
    }

    /// The newest stories, hidden ones too, for the admin list.
    pub async fn all_recent_stories(&self, limit: u32) -> StoreResult<Vec<Story>> {
        self.newest_stories(limit, true).await
    }

    async fn newest_stories(&self, limit: u32, with_hidden: bool) -> StoreResult<Vec<Story>> {
        let rows: Vec<StoryRow> = on_reader!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                story_columns!(),
                " FROM stories WHERE (NOT hidden OR $2) ORDER BY published_at DESC, created_at DESC LIMIT $1"
            ))
            .bind(i64::from(limit))
            .bind(with_hidden)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(Story::from).collect())
    }

    /// Hides a story from digests and the public API (or shows it again).
    /// Returns whether there is such a story.
    pub async fn set_story_hidden(&self, id: Uuid, hidden: bool) -> StoreResult<bool> {
        let changed = on_writer!(self, |pool| {
            sqlx::query("UPDATE stories SET hidden = $1, updated_at = $2 WHERE id = $3")
                .bind(hidden)
                .bind(now())
                .bind(id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(changed == 1)
    }

    /// The symbols worth quoting: confirmed readers' watchlists and the
    /// tickers of stories published since `since`. Sorted, distinct.
    pub async fn symbols_to_quote(&self, since: DateTime<Utc>) -> StoreResult<Vec<String>> {
        let lists: Vec<String> = on_reader!(self, |pool| {
            sqlx::query_scalar(
                "SELECT DISTINCT tickers FROM subscribers WHERE status = $2 AND tickers <> '' \
                 UNION SELECT DISTINCT tickers FROM stories WHERE published_at >= $1 AND tickers <> ''",
            )
            .bind(since)
            .bind(SubscriberStatus::Confirmed)
            .fetch_all(pool)
            .await
        })?;
        let mut symbols: Vec<String> = lists.iter().flat_map(|list| split_tickers(list)).collect();
        symbols.sort();
        symbols.dedup();
        Ok(symbols)
    }

    pub async fn feed_state(&self, url: &str) -> StoreResult<Option<FeedState>> {
        let state = on_reader!(self, |pool| {
            sqlx::query_as("SELECT etag, last_modified FROM feed_state WHERE url = $1")
                .bind(url)
                .fetch_optional(pool)
                .await
        })?;
        Ok(state)
    }

    /// Records a poll of a feed: its validators for the next conditional GET,
    /// and the error if it failed (validators are kept then).
    pub async fn save_feed_state(&self, url: &str, state: &FeedState, error: Option<&str>) -> StoreResult<()> {
        on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO feed_state (url, etag, last_modified, last_polled_at, last_error) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (url) DO UPDATE SET \
                     etag = CASE WHEN excluded.last_error IS NULL THEN excluded.etag ELSE feed_state.etag END, \
                     last_modified = CASE WHEN excluded.last_error IS NULL \
                         THEN excluded.last_modified ELSE feed_state.last_modified END, \
                     last_polled_at = excluded.last_polled_at, last_error = excluded.last_error",
            )
            .bind(url)
            .bind(state.etag.as_deref())
            .bind(state.last_modified.as_deref())
            .bind(now())
            .bind(error)
            .execute(pool)
            .await
            .map(drop)
        })?;
        Ok(())
    }
}

/// A feed's validators for conditional GET.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct FeedState {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}
