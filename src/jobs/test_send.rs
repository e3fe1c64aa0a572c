//! Test sends and previews: a digest, an alert, a confirmation or a welcome
//! email, rendered from the current stories and quotes, for a chosen reader
//! or a sample one. A test send goes at once to any address with `[TEST]`
//! before the subject, and is answered with what the SMTP server said.
//! Nothing is queued, counted, or recorded against any reader, and the links
//! in these emails belong to no reader (they open, and change nothing).

use std::str::FromStr;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::alerts::move_tier;
use super::digest::{DigestRules, manual_run};
use super::render::{EditionParts, Reader, RenderError, Renderer};
use crate::domain::EditionContent;
use crate::domain::{
    ConfirmationRequest, DigestDue, Message, PriceAlert, Subscriber, SubscriberEmail, Watchlist, Welcome,
};
use crate::mailer::{AlwaysOpen, EmailContent, EmailLinks, Mailer};
use crate::store::{Store, StoreError};
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
    Render(#[from] RenderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct TestSender {
    store: Store,
    mailer: Mailer,
    links: EmailLinks,
    tokens: TokenKey,
    digest_rules: DigestRules,
    confirmation_ttl: Duration,
}

impl TestSender {
    pub fn new(
        store: Store,
        mailer: Mailer,
        links: EmailLinks,
        tokens: TokenKey,
        digest_rules: DigestRules,
        confirmation_ttl: Duration,
    ) -> Self {
        Self { store, mailer, links, tokens, digest_rules, confirmation_ttl }
    }

    /// Renders and sends one test message; returns its subject once the
    /// server (or the outbox folder) accepted it.
    pub async fn send(&self, to: &SubscriberEmail, kind: TestKind) -> Result<String, TestSendError> {
        let mut content = self.preview(kind, None).await?;
        content.subject = format!("[TEST] {}", content.subject);
        let subject = content.subject.clone();
        let message = content
            .into_message(&self.links, to.as_ref(), self.links.message_id(Uuid::new_v4()))
            .map_err(RenderError::from)?;
        let sent = self.mailer.send(message, crate::mailer::MessageOrigin::TEST_SEND, Arc::new(AlwaysOpen)).await;
        sent.map_err(|e| TestSendError::Refused(e.to_string()))?;
        Ok(subject)
    }

    /// `kind` as it would be sent now to `reader`, or to a sample reader who
    /// follows the tickers of the newest stories: for a reader, the digest has
    /// the stories they have not had yet and the alert the biggest move on
    /// their watchlist.
    pub async fn preview(&self, kind: TestKind, reader: Option<&Subscriber>) -> Result<EmailContent, TestSendError> {
        let now = Utc::now();
        let sample_watchlist = Watchlist::parse_text("NOK, AAPL").unwrap_or_default();
        let mut edition = None;
        let message = match kind {
            TestKind::Confirmation => Message::Confirmation(ConfirmationRequest { issued_at: now }),
            TestKind::Welcome => Message::Welcome(Welcome {}),
            TestKind::Digest => {
                let (content, due) = self.digest_for(reader, now).await?;
                edition = Some(EditionParts::new(&self.links, content));
                Message::Digest(due)
            }
            TestKind::Alert => Message::Alert(self.biggest_move(reader, now).await?),
        };
        let for_a_reader = reader.is_some();
        let reader = Reader {
            id: Uuid::nil(),
            name: reader.map_or("", |r| r.name.as_str()),
            token_nonce: "test",
            watchlist: reader.map_or(&sample_watchlist, |r| &r.watchlist),
        };
        let renderer = Renderer { links: &self.links, tokens: &self.tokens, confirmation_ttl: self.confirmation_ttl };
        match renderer.preview(&message, reader, edition.as_ref()) {
            Ok(content) => Ok(content),
            Err(RenderError::NothingToSay(_)) => Err(TestSendError::NothingToSend(if for_a_reader {
                "this reader has no new stories or watchlist moves for a digest now".into()
            } else {
                "there are no stories or quotes yet: push a story or run `tickermail ingest`".into()
            })),
            Err(error) => Err(error.into()),
        }
    }

    /// What the next daily edition would hold, and what `reader` is due from it.
    async fn digest_for(
        &self,
        reader: Option<&Subscriber>,
        now: DateTime<Utc>,
    ) -> Result<(EditionContent, DigestDue), StoreError> {
        let Some(reader) = reader else {
            let since = now - chrono::Duration::days(RECENT_DAYS);
            let content = EditionContent {
                created_at: now,
                stories: self.store.recent_stories(20).await?,
                quotes: self.store.fresh_quotes(since).await?,
            };
            let watchlist = content.stories.iter().flat_map(|s| s.tickers.iter()).take(5);
            let due = DigestDue {
                since: DateTime::UNIX_EPOCH,
                confirmed_at: DateTime::UNIX_EPOCH,
                watchlist: Watchlist::parse_items(watchlist.map(String::as_str)).unwrap_or_default(),
            };
            return Ok((content, due));
        };
        let frequency = match reader.digest_frequency {
            crate::domain::DigestFrequency::Weekly => crate::domain::DigestFrequency::Weekly,
            _ => crate::domain::DigestFrequency::Daily,
        };
        let mut run = manual_run(frequency, now, self.digest_rules);
        // The next run is later: a story stored just now will be in it.
        run.stories_until = now;
        let (_, stories) = self.store.preview_digest(&run).await?;
        let content =
            EditionContent { created_at: now, stories, quotes: self.store.fresh_quotes(run.oldest_story).await? };
        let confirmed_at = reader.confirmed_at.unwrap_or(reader.created_at);
        let since = self.store.last_digest_at(reader.id).await?.unwrap_or(confirmed_at);
        Ok((content, DigestDue { since, confirmed_at, watchlist: reader.watchlist.clone() }))
    }

    /// The largest recent move (on `reader`'s watchlist when it has one there),
    /// as an alert with the reader's threshold or a new reader's.
    async fn biggest_move(&self, reader: Option<&Subscriber>, now: DateTime<Utc>) -> Result<PriceAlert, TestSendError> {
        let quotes = self.store.fresh_quotes(now - chrono::Duration::days(RECENT_DAYS)).await?;
        let biggest = |on_watchlist: bool| {
            quotes
                .iter()
                .filter(|q| {
                    !on_watchlist
                        || reader.is_some_and(|r| r.watchlist.tickers().iter().any(|t| t.as_str() == q.symbol))
                })
                .max_by(|a, b| a.change_percent().abs().total_cmp(&b.change_percent().abs()))
        };
        let quote = biggest(true)
            .or_else(|| biggest(false))
            .ok_or_else(|| TestSendError::NothingToSend("there are no quotes yet: run `tickermail ingest`".into()))?;
        let threshold = reader.map_or(SAMPLE_THRESHOLD_PERCENT, |r| r.alert_threshold.percent());
        let change_percent = quote.change_percent();
        let tier = move_tier(change_percent, threshold);
        Ok(PriceAlert {
            symbol: quote.symbol.clone(),
            price: quote.price,
            previous_close: quote.previous_close,
            change_percent,
            direction: if change_percent >= 0.0 { "up" } else { "down" }.into(),
            tier: tier.map_or(1, |t| t.tier),
            threshold_percent: threshold,
            as_of: quote.as_of,
        })
    }
}
