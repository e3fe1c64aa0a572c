//! A news story: as a feed or the CMS gives it, and as stored.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A story as a feed or the CMS gives it, already cleaned: plain-text
/// title and summary, canonical ticker keys.
#[derive(Debug, Clone)]
pub struct NewStory {
    /// Unique across sources: the feed's guid, else the link.
    pub guid: String,
    /// Where it came from: a feed URL, or `api`.
    pub source: String,
    pub title: String,
    pub url: String,
    pub author: Option<String>,
    pub summary: String,
    pub tickers: Vec<String>,
    pub published_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Story {
    pub id: Uuid,
    pub guid: String,
    pub source: String,
    pub title: String,
    pub url: String,
    pub author: Option<String>,
    pub summary: String,
    pub tickers: Vec<String>,
    pub published_at: DateTime<Utc>,
    pub hidden: bool,
    /// When we first stored it: digests go by this, so a story that arrives
    /// late with an old publication time is still sent once.
    pub created_at: DateTime<Utc>,
}
