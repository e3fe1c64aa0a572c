//! Bringing stories and quotes in: the work behind the scheduled polls and
//! `tickermail ingest`.

use chrono::{DateTime, Datelike, NaiveTime, Utc, Weekday};
use chrono_tz::America::New_York;

use crate::config::Settings;
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
            feeds: FeedPoller::new(settings.fetch_timeout, settings.feed_max_bytes),
            quotes: QuoteFetcher::new(&settings.quote_providers, settings.fetch_timeout),
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

    /// Quotes the symbols readers follow and recent stories mention.
    #[tracing::instrument(name = "job.poll_quotes", skip_all)]
    pub async fn poll_quotes(&self) -> Result<QuoteReport, StoreError> {
        let since = Utc::now() - chrono::Duration::days(RECENT_STORY_DAYS);
        let symbols = self.store.symbols_to_quote(since).await?;
        let report = self.quotes.fetch_and_store(&self.store, &symbols).await;
        tracing::info!(stored = report.stored.len(), failed = report.failed.len(), "quotes polled");
        Ok(report)
    }
}

/// Whether US regular trading is on at `now` (09:30–16:00 New York time on
/// a weekday), plus a quarter of an hour after the bell to catch the close.
/// Exchange holidays are not known here: a poll on one finds yesterday's
/// close again, which changes nothing.
pub fn us_market_is_open(now: DateTime<Utc>) -> bool {
    let local = now.with_timezone(&New_York);
    let open = NaiveTime::from_hms_opt(9, 30, 0).expect("valid time");
    let closed = NaiveTime::from_hms_opt(16, 15, 0).expect("valid time");
    !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) && (open..closed).contains(&local.time())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_market_is_open_on_weekdays_in_new_york_hours_across_dst() {
        assert!(us_market_is_open(at("2026-06-09T13:30:00Z")), "09:30 EDT on a Tuesday");
        assert!(!us_market_is_open(at("2026-06-09T13:29:00Z")));
        assert!(us_market_is_open(at("2026-06-09T20:14:00Z")), "just after the close");
        assert!(!us_market_is_open(at("2026-06-09T20:16:00Z")));
        assert!(us_market_is_open(at("2026-11-24T14:30:00Z")), "09:30 EST");
        assert!(!us_market_is_open(at("2026-11-24T13:30:00Z")), "08:30 EST");
        assert!(!us_market_is_open(at("2026-06-13T15:00:00Z")), "Saturday");
    }
}
