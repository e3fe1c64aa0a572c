//! Test sends: a digest, an alert, a confirmation or a welcome email,
//! rendered from the current stories and quotes, sent at once to any address
//! with `[TEST]` before the subject, and answered with what the SMTP server
//! said. Nothing is queued, counted, or recorded against any reader.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::alerts::{AlertPayload, move_tier};
use super::digest::{ReaderDue, compose};
use crate::domain::{SubscriberEmail, Watchlist};
use crate::mailer::{EmailLinks, Mailer, alert_email, confirmation_email, digest_email, welcome_email};
use crate::store::{EditionContent, Store, StoreError};
use crate::tokens::TokenKey;

/// Stories and quotes this recent make the test digest and alert.
const RECENT_DAYS: i64 = 7;
/// The sample reader's threshold, as a new reader's.
const SAMPLE_THRESHOLD_PERCENT: f64 = 5.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKind {
    Digest,
    Alert,
    Confirmation,
    Welcome,
}

impl FromStr for TestKind {
    type Err = String;

    fn from_str(kind: &str) -> Result<Self, Self::Err> {
        match kind.trim() {
            "digest" => Ok(Self::Digest),
            "alert" => Ok(Self::Alert),
            "confirmation" => Ok(Self::Confirmation),
            "welcome" => Ok(Self::Welcome),
            _ => Err("kind must be digest, alert, confirmation or welcome".into()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TestSendError {
    #[error("{0}")]
    NothingToSend(String),
    #[error("the SMTP server did not accept the message: {0}")]
    Refused(String),
    #[error("the message could not be rendered: {0}")]
    Render(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct TestSender {
    store: Store,
    mailer: Mailer,
    links: EmailLinks,
    tokens: TokenKey,
}

impl TestSender {
    pub fn new(store: Store, mailer: Mailer, mut links: EmailLinks, tokens: TokenKey) -> Self {
        links.subject_prefix = "[TEST] ";
        Self { store, mailer, links, tokens }
    }

    /// Renders and sends one test message; returns its subject once the
    /// server (or the outbox folder) accepted it.
    pub async fn send(&self, to: &SubscriberEmail, kind: TestKind) -> Result<String, TestSendError> {
        let now = Utc::now();
        let message_id = self.links.message_id(Uuid::new_v4());
        // Links in a test carry tokens of no reader: they open, and change nothing.
        let manage_token = self.tokens.manage_token(Uuid::nil(), "test");
        let to = to.as_ref();
        let message = match kind {
            TestKind::Confirmation => {
                let token = self.tokens.confirmation_token(Uuid::nil(), now);
                confirmation_email(&self.links, to, message_id, "", &token, now + chrono::Duration::days(7))
            }
            TestKind::Welcome => welcome_email(&self.links, to, message_id, "", &manage_token, "NOK, AAPL"),
            TestKind::Digest => {
                let content = self.current_content(now).await?;
                let watchlist =
                    content.stories.iter().flat_map(|s| s.tickers.iter()).take(5).cloned().collect::<Vec<_>>();
                let due = ReaderDue {
                    since: DateTime::UNIX_EPOCH,
                    confirmed_at: DateTime::UNIX_EPOCH,
                    watchlist: Watchlist::parse_items(watchlist.iter().map(String::as_str)).unwrap_or_default(),
                };
                let digest = compose(&content, &due);
                if digest.is_empty() {
                    return Err(TestSendError::NothingToSend(
                        "there are no stories or quotes yet: push a story or run `tickermail ingest`".into(),
                    ));
                }
                digest_email(&self.links, to, message_id, "", &manage_token, &digest, now)
            }
            TestKind::Alert => {
                let alert = self.biggest_move(now).await?;
                alert_email(&self.links, to, message_id, "", &manage_token, &alert)
            }
        }
        .map_err(TestSendError::Render)?;
        let subject = message.headers().get_raw("Subject").unwrap_or_default().to_string();
        let file_stem = format!("{}-test-{}", now.format("%Y%m%dT%H%M%S%.6f"), Uuid::new_v4().simple());
        self.mailer.send(message, &file_stem).await.map_err(|e| TestSendError::Refused(e.to_string()))?;
        Ok(subject)
    }

    async fn current_content(&self, now: DateTime<Utc>) -> Result<EditionContent, StoreError> {
        let since = now - chrono::Duration::days(RECENT_DAYS);
        Ok(EditionContent {
            created_at: now,
            stories: self.store.recent_stories(20).await?,
            quotes: self.store.fresh_quotes(since).await?,
        })
    }

    /// The largest move among recent quotes, as an alert to a reader with the default threshold.
    async fn biggest_move(&self, now: DateTime<Utc>) -> Result<AlertPayload, TestSendError> {
        let quotes = self.store.fresh_quotes(now - chrono::Duration::days(RECENT_DAYS)).await?;
        let quote = quotes
            .iter()
            .max_by(|a, b| a.change_percent().abs().total_cmp(&b.change_percent().abs()))
            .ok_or_else(|| TestSendError::NothingToSend("there are no quotes yet: run `tickermail ingest`".into()))?;
        let change_percent = quote.change_percent();
        let tier = move_tier(change_percent, SAMPLE_THRESHOLD_PERCENT);
        Ok(AlertPayload {
            symbol: quote.symbol.clone(),
            price: quote.price,
            previous_close: quote.previous_close,
            change_percent,
            direction: if change_percent >= 0.0 { "up" } else { "down" }.into(),
            tier: tier.map_or(1, |t| t.tier),
            threshold_percent: SAMPLE_THRESHOLD_PERCENT,
            as_of: quote.as_of,
        })
    }
}
