//! Bringing stories and quotes in: the work behind the scheduled polls and
//! `tickermail ingest`.

use chrono::{DateTime, Utc};

use crate::config::Settings;
use crate::domain::Listing;
use crate::sources::{FeedPoller, FeedReport, QuoteFetcher, QuoteReport};
use crate::store::{Store, StoreError};

/// Stories this recent keep their tickers on the list of symbols to quote.
const RECENT_STORY_DAYS: i64 = 7;

pub struct Ingest {
    store: Store,
    feed_urls: Vec<url::Url>,
    feeds: FeedPoller,
    quotes: QuoteFetcher,
}

impl Ingest {
    pub fn new(store: Store, settings: &Settings) -> Self {
        Self {
            store,
            feed_urls: settings.feed_urls.clone(),
            feeds: FeedPoller::new(
                settings.fetch_timeout,
                settings.feed_max_bytes,
                settings.feed_max_items,
                settings.feed_allow_private,
            ),
            quotes: QuoteFetcher::new(
                &settings.quote_providers,
                settings.fetch_timeout,
                settings.quote_max_move_percent,
            ),
        }
    }

    pub fn feed_count(&self) -> usize {
        self.feed_urls.len()
    }

    pub fn quote_providers(&self) -> Vec<&'static str> {
        self.quotes.provider_names()
    }

    #[tracing::instrument(name = "job.poll_feeds", skip_all)]
    pub async fn poll_feeds(&self) -> Vec<FeedReport> {
        self.feeds.poll_all(&self.store, &self.feed_urls).await
    }

    /// Quotes the symbols readers follow and recent stories mention; with
    /// `trading_at`, only those whose exchange trades then (a closed market's
    /// price does not move).
    #[tracing::instrument(name = "job.poll_quotes", skip_all)]
    pub async fn poll_quotes(&self, trading_at: Option<DateTime<Utc>>) -> Result<QuoteReport, StoreError> {
        let since = Utc::now() - chrono::Duration::days(RECENT_STORY_DAYS);
        let mut symbols = self.store.symbols_to_quote(since).await?;
        if let Some(now) = trading_at {
            // A key that no longer parses is kept: the provider says what is wrong with it.
            symbols.retain(|key| Listing::parse_key(key).is_none_or(|listing| listing.is_trading(now)));
        }
        if symbols.is_empty() {
            return Ok(QuoteReport::default());
        }
        let report = self.quotes.fetch_and_store(&self.store, &symbols).await;
        tracing::info!(stored = report.stored.len(), failed = report.failed.len(), "quotes polled");
        Ok(report)
    }
}
