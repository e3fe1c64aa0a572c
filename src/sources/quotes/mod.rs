//! Quote providers behind one interface, tried in the configured order.
//!
//! Each provider classifies the body of every answer, not only its status
//! code (several report errors with HTTP 200), into a typed [`QuoteError`].
//! Each has its own rate limit, and one that says it is rate limited is left
//! alone until its `Retry-After` passes. The daily move is ours to compute:
//! providers give the price and the previous close, and we keep both.

mod alpha_vantage;
mod finnhub;
mod stooq;
mod yahoo;

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use secrecy::ExposeSecret;

use super::http::{self, BodyError};
use crate::config::{QuoteProvider, QuoteProviderSettings};
use crate::domain::{Listing, StoredQuote, in_major_unit, major_unit, plausible_price, plausible_range, round_to};
use crate::store::Store;

/// A provider's answer is a small JSON or CSV document; anything bigger is not one.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Waiting longer than this for a provider's own rate limit moves on to the next provider.
const MAX_PERMIT_WAIT: Duration = Duration::from_secs(15);
/// How long a provider that said "rate limited" without saying how long is left alone.
const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(60);
/// A provider that refused our credentials is left alone this long (a key does not fix itself).
const AUTH_COOL_DOWN: Duration = Duration::from_secs(3600);
/// A quote time this far ahead of our clock is not believed.
const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// A price with the previous session's close, as one provider reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    pub listing: Listing,
    pub price: f64,
    pub previous_close: f64,
    pub currency: Option<String>,
    pub as_of: DateTime<Utc>,
}

impl Quote {
    /// Checks what a provider sent: prices a share can have, in the major
    /// unit of their currency (pence become pounds), and a time that is not
    /// in the future.
    fn new(
        listing: &Listing,
        price: f64,
        previous_close: f64,
        currency: Option<String>,
        as_of: DateTime<Utc>,
    ) -> Result<Quote, QuoteError> {
        let (currency, divisor) = match currency.as_deref().and_then(major_unit) {
            Some((code, divisor)) => (Some(code), divisor),
            None => (None, 1.0),
        };
        let (price, previous_close) = (in_major_unit(price, divisor), in_major_unit(previous_close, divisor));
        for (field, value) in [("price", price), ("previous close", previous_close)] {
            if plausible_price(value).is_none() {
                return Err(QuoteError::Malformed(format!(
                    "{field} {value} is not a plausible price ({})",
                    plausible_range()
                )));
            }
        }
        if as_of > Utc::now() + MAX_CLOCK_SKEW {
            return Err(QuoteError::Malformed(format!("quote time {as_of} is in the future")));
        }
        Ok(Quote { listing: listing.clone(), price, previous_close, currency, as_of })
    }

    /// The quote as stored, suspect when it moved more than `max_move_percent`.
    pub fn to_stored(&self, source: &str, max_move_percent: f64) -> StoredQuote {
        StoredQuote {
            symbol: self.listing.key(),
            price: self.price,
            previous_close: self.previous_close,
            currency: self.currency.clone(),
            as_of: self.as_of,
            source: source.to_string(),
            suspect: StoredQuote::is_suspect_move(self.price, self.previous_close, max_move_percent),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuoteError {
    #[error("unknown symbol")]
    UnknownSymbol,
    #[error("this provider does not cover that exchange")]
    NotCovered,
    #[error("rate limited{}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("not entitled: {0}")]
    NotEntitled(String),
    #[error("credentials refused: {0}")]
    Auth(String),
    #[error("temporary failure: {0}")]
    Transient(String),
    #[error("malformed response: {0}")]
    Malformed(String),
}

impl From<BodyError> for QuoteError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge(_) => QuoteError::Malformed(error.to_string()),
            BodyError::Read(_) => QuoteError::Transient(error.to_string()),
        }
    }
}

/// An HTTP answer as the classifiers see it.
pub(crate) struct ProviderResponse {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

impl ProviderResponse {
    /// The start of the body, printable, for error messages and logs.
    fn excerpt(&self) -> String {
        excerpt(&String::from_utf8_lossy(&self.body))
    }

    /// The errors every provider answers the same way: 429 and 5xx.
    fn common_failure(&self) -> Option<QuoteError> {
        match self.status {
            429 => Some(QuoteError::RateLimited { retry_after: self.retry_after }),
            500..=599 => Some(QuoteError::Transient(format!("HTTP {}: {}", self.status, self.excerpt()))),
            _ => None,
        }
    }
}

fn excerpt(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(160).collect::<String>().trim().to_string()
}

/// The provider's published free limit, kept to on our side.
fn quota(provider: QuoteProvider) -> Quota {
    let n = |n: u32| NonZeroU32::new(n).expect("quota is positive");
    match provider {
        QuoteProvider::Yahoo => Quota::per_second(n(2)),
        QuoteProvider::Finnhub => Quota::per_second(n(1)),
        QuoteProvider::AlphaVantage => Quota::per_minute(n(5)),
        QuoteProvider::Stooq => Quota::per_second(n(1)),
    }
}

struct Provider {
    settings: QuoteProviderSettings,
    limiter: DefaultDirectRateLimiter,
    resting_until: Mutex<Option<Instant>>,
}

impl Provider {
    fn name(&self) -> &'static str {
        self.settings.kind.name()
    }

    /// How long the provider is still being left alone after a refusal.
    fn resting_for(&self) -> Option<Duration> {
        let until = (*self.resting_until.lock().expect("not poisoned"))?;
        until.checked_duration_since(Instant::now())
    }

    fn rest(&self, duration: Duration) {
        *self.resting_until.lock().expect("not poisoned") = Some(Instant::now() + duration);
    }

    /// Waits for the provider's own rate limit, unless that takes too long.
    async fn permit(&self) -> bool {
        loop {
            match self.limiter.check() {
                Ok(()) => return true,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(DefaultClock::default().now());
                    if wait > MAX_PERMIT_WAIT {
                        return false;
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn fetch(&self, client: &reqwest::Client, listing: &Listing) -> Result<Quote, QuoteError> {
        let base = &self.settings.base_url;
        let key = self.settings.api_key.as_ref().map(|k| k.expose_secret());
        match self.settings.kind {
            QuoteProvider::Yahoo => yahoo::fetch(client, base, listing).await,
            QuoteProvider::Finnhub => finnhub::fetch(client, base, key.unwrap_or_default(), listing).await,
            QuoteProvider::AlphaVantage => alpha_vantage::fetch(client, base, key.unwrap_or_default(), listing).await,
            QuoteProvider::Stooq => stooq::fetch(client, base, key, listing).await,
        }
    }

    fn covers(&self, listing: &Listing) -> bool {
        match self.settings.kind {
            QuoteProvider::Yahoo | QuoteProvider::Finnhub => true,
            QuoteProvider::AlphaVantage => listing.alpha_vantage_symbol().is_some(),
            QuoteProvider::Stooq => listing.stooq_symbol().is_some(),
        }
    }
}

/// Sends one request and reads the answer; a failure to get any answer is transient.
async fn send(request: reqwest::RequestBuilder) -> Result<ProviderResponse, QuoteError> {
    let response = request.send().await.map_err(|e| QuoteError::Transient(describe_request_error(e)))?;
    let status = response.status().as_u16();
    let retry_after = http::retry_after(&response);
    let body = http::read_capped(response, MAX_RESPONSE_BYTES).await?;
    Ok(ProviderResponse { status, retry_after, body })
}

/// A request error without its URL, which may carry an API key.
fn describe_request_error(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    format!("{kind}: {}", error.without_url())
}

/// Every configured provider, tried in order for each symbol.
pub struct QuoteFetcher {
    client: reqwest::Client,
    providers: Vec<Provider>,
    max_move_percent: f64,
}

/// What one round of quote fetching did.
#[derive(Debug, Default)]
pub struct QuoteReport {
    /// Symbol and the provider that answered.
    pub stored: Vec<(String, &'static str)>,
    /// Symbol and why no provider could quote it.
    pub failed: Vec<(String, String)>,
}

impl QuoteFetcher {
    pub fn new(providers: &[QuoteProviderSettings], timeout: Duration, max_move_percent: f64) -> Self {
        let providers = providers
            .iter()
            .map(|settings| Provider {
                settings: settings.clone(),
                limiter: RateLimiter::direct(quota(settings.kind)),
                resting_until: Mutex::new(None),
            })
            .collect();
        Self { client: http::client(timeout), providers, max_move_percent }
    }

    pub fn provider_names(&self) -> Vec<&'static str> {
        self.providers.iter().map(Provider::name).collect()
    }

    /// The first provider's quote for `listing`, or every provider's reason for not giving one.
    pub async fn fetch(&self, listing: &Listing) -> Result<(Quote, &'static str), Vec<(&'static str, QuoteError)>> {
        let mut errors = Vec::new();
        for provider in &self.providers {
            if !provider.covers(listing) {
                errors.push((provider.name(), QuoteError::NotCovered));
                continue;
            }
            if let Some(rest) = provider.resting_for() {
                errors.push((provider.name(), QuoteError::RateLimited { retry_after: Some(rest) }));
                continue;
            }
            if !provider.permit().await {
                errors.push((provider.name(), QuoteError::RateLimited { retry_after: None }));
                continue;
            }
            match provider.fetch(&self.client, listing).await {
                Ok(quote) => return Ok((quote, provider.name())),
                Err(error) => {
                    match &error {
                        QuoteError::RateLimited { retry_after } => {
                            provider.rest(retry_after.unwrap_or(DEFAULT_COOL_DOWN))
                        }
                        QuoteError::Auth(_) => provider.rest(AUTH_COOL_DOWN),
                        _ => {}
                    }
                    errors.push((provider.name(), error));
                }
            }
        }
        Err(errors)
    }

    /// Fetches and stores a quote for each symbol key; nothing stops the
    /// round but the end of the list.
    pub async fn fetch_and_store(&self, store: &Store, symbols: &[String]) -> QuoteReport {
        let mut report = QuoteReport::default();
        for symbol in symbols {
            let Some(listing) = Listing::parse_key(symbol) else {
                report.failed.push((symbol.clone(), "not a symbol any provider knows".into()));
                continue;
            };
            match self.fetch(&listing).await {
                Ok((quote, source)) => match store.save_quote(&quote.to_stored(source, self.max_move_percent)).await {
                    Ok(_) => report.stored.push((symbol.clone(), source)),
                    Err(error) => {
                        tracing::error!(%symbol, %error, "could not store a quote");
                        report.failed.push((symbol.clone(), error.to_string()));
                    }
                },
                Err(errors) => {
                    let reasons =
                        errors.iter().map(|(name, error)| format!("{name}: {error}")).collect::<Vec<_>>().join("; ");
                    tracing::warn!(%symbol, %reasons, "no provider could quote a symbol");
                    report.failed.push((symbol.clone(), reasons));
                }
            }
        }
        report
    }
}

/// A number that a provider may send as a JSON number or a string.
fn number(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().trim_end_matches('%').parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name))
        .expect("fixture exists")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const FIXTURES: [&str; 10] = [
        "yahoo_chart_NOK_5d.json",
        "yahoo_chart_notfound.json",
        "finnhub_quote_NOK.json",
        "finnhub_unknown_symbol.json",
        "av_global_quote_NOK.json",
        "av_rate_limit_daily.json",
        "stooq_quote.csv",
        "stooq_history_nok.us.csv",
        "twelvedata_quote_NOK.json",
        "wp_feed.xml",
    ];

    fn parse_with_every_provider(response: &ProviderResponse) {
        let nok = Listing::parse_key("NOK").unwrap();
        let _ = yahoo::parse(response, &nok);
        let _ = finnhub::parse(response, &nok);
        let _ = alpha_vantage::parse(response, &nok);
        let _ = stooq::parse_quote(response, "nok.us");
        let _ = stooq::parse_previous_close(response, chrono::NaiveDate::from_ymd_opt(2026, 6, 9).unwrap());
    }

    proptest! {
        #[test]
        fn no_provider_parser_panics_on_arbitrary_bytes(status in 100u16..600, body in prop::collection::vec(any::<u8>(), 0..1024)) {
            parse_with_every_provider(&ProviderResponse { status, retry_after: None, body });
        }

        #[test]
        fn no_provider_parser_panics_on_a_damaged_real_answer(
            which in 0..FIXTURES.len(), at in 0usize..4096, cut in 0usize..64, junk in ".{0,16}",
        ) {
            let mut body = fixture(FIXTURES[which]);
            let at = at.min(body.len());
            let end = (at + cut).min(body.len());
            body.splice(at..end, junk.into_bytes());
            parse_with_every_provider(&ProviderResponse { status: 200, retry_after: None, body });
        }
    }

    #[test]
    fn provider_names_parse_case_insensitively_and_unknown_ones_are_listed() {
        assert_eq!("Finnhub".parse::<QuoteProvider>(), Ok(QuoteProvider::Finnhub));
        let error = "bloomberg".parse::<QuoteProvider>().unwrap_err();
        assert!(error.contains("yahoo, finnhub, alphavantage, stooq"), "{error}");
    }

    #[test]
    fn a_quote_with_a_zero_or_missing_price_is_malformed() {
        let listing = Listing::parse_key("NOK").unwrap();
        assert!(matches!(Quote::new(&listing, 0.0, 5.0, None, Utc::now()), Err(QuoteError::Malformed(_))));
        assert!(matches!(Quote::new(&listing, f64::NAN, 5.0, None, Utc::now()), Err(QuoteError::Malformed(_))));
        let future = Utc::now() + chrono::Duration::hours(1);
        assert!(matches!(Quote::new(&listing, 5.0, 5.0, None, future), Err(QuoteError::Malformed(_))));
    }
}
