//! Yahoo Finance chart v8: no key, one symbol per request, unofficial.
//!
//! The trap: `chartPreviousClose` is the close before the first bar of the
//! requested range (a week old with `range=5d`), not yesterday's close. The
//! previous close is taken from the daily bars instead: the last close of a
//! session before the one `regularMarketTime` falls in, by the exchange's
//! own calendar date.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use url::Url;

use super::{ProviderResponse, Quote, QuoteError, round_to, send};
use crate::domain::Listing;

/// Yahoo answers bare clients with 429s; it expects a browser.
const BROWSER_USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

pub(super) async fn fetch(client: &reqwest::Client, base: &Url, listing: &Listing) -> Result<Quote, QuoteError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|_| QuoteError::Malformed("YAHOO_BASE_URL cannot have a path".into()))?
        .pop_if_empty()
        .extend(["v8", "finance", "chart", &listing.yahoo_symbol()]);
    let request = client
        .get(url)
        .query(&[("range", "5d"), ("interval", "1d")])
        .header(reqwest::header::USER_AGENT, BROWSER_USER_AGENT);
    parse(&send(request).await?, listing)
}

#[derive(Deserialize)]
struct Envelope {
    chart: Chart,
}

#[derive(Deserialize)]
struct Chart {
    result: Option<Vec<ChartResult>>,
    error: Option<ChartError>,
}

#[derive(Deserialize)]
struct ChartError {
    code: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct ChartResult {
    meta: Meta,
    #[serde(default)]
    timestamp: Vec<Option<i64>>,
    indicators: Option<Indicators>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    currency: Option<String>,
    regular_market_price: Option<f64>,
    regular_market_time: Option<i64>,
    exchange_timezone_name: Option<String>,
    /// Only in some captures; a fallback when the bars do not reach back a session.
    previous_close: Option<f64>,
    price_hint: Option<u32>,
}

#[derive(Deserialize)]
struct Indicators {
    #[serde(default)]
    quote: Vec<Bars>,
}

#[derive(Deserialize)]
struct Bars {
    #[serde(default)]
    close: Vec<Option<f64>>,
}

pub(super) fn parse(response: &ProviderResponse, listing: &Listing) -> Result<Quote, QuoteError> {
    if let Some(failure) = response.common_failure() {
        return Err(failure);
    }
    let envelope: Result<Envelope, _> = serde_json::from_slice(&response.body);
    match (response.status, envelope) {
        (200 | 404, Ok(Envelope { chart })) => {
            if let Some(error) = chart.error {
                return Err(match error.code.as_deref() {
                    Some("Not Found") => QuoteError::UnknownSymbol,
                    _ => QuoteError::Transient(format!(
                        "{}: {}",
                        error.code.unwrap_or_default(),
                        error.description.unwrap_or_default()
                    )),
                });
            }
            match chart.result.and_then(|results| results.into_iter().next()) {
                Some(result) => quote_from(result, listing),
                None => Err(QuoteError::UnknownSymbol),
            }
        }
        (401 | 403, _) => Err(QuoteError::NotEntitled(format!("HTTP {}: {}", response.status, response.excerpt()))),
        (200, Err(error)) => Err(QuoteError::Malformed(format!("not a chart: {error}"))),
        (status, _) => Err(QuoteError::Transient(format!("HTTP {status}: {}", response.excerpt()))),
    }
}

fn quote_from(result: ChartResult, listing: &Listing) -> Result<Quote, QuoteError> {
    let meta = result.meta;
    let price = meta.regular_market_price.ok_or_else(|| QuoteError::Malformed("no regularMarketPrice".into()))?;
    let time = meta
        .regular_market_time
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .ok_or_else(|| QuoteError::Malformed("no regularMarketTime".into()))?;
    let zone: Tz =
        meta.exchange_timezone_name.as_deref().and_then(|name| name.parse().ok()).unwrap_or(listing.time_zone());
    let session = zone.from_utc_datetime(&time.naive_utc()).date_naive();
    let closes = result.indicators.and_then(|i| i.quote.into_iter().next()).map(|bars| bars.close).unwrap_or_default();
    let previous_close = result
        .timestamp
        .iter()
        .zip(closes)
        .filter_map(|(timestamp, close)| Some((DateTime::from_timestamp((*timestamp)?, 0)?, close?)))
        .filter(|(bar_time, _)| zone.from_utc_datetime(&bar_time.naive_utc()).date_naive() < session)
        .max_by_key(|(bar_time, _)| *bar_time)
        .map(|(_, close)| close)
        .or(meta.previous_close)
        .ok_or_else(|| QuoteError::Malformed("no close of an earlier session".into()))?;
    let decimals = meta.price_hint.unwrap_or(2).max(2);
    Quote::new(listing, price, round_to(previous_close, decimals), meta.currency, time.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::quotes::fixture;

    fn answer(status: u16, body: &[u8]) -> ProviderResponse {
        ProviderResponse { status, retry_after: None, body: body.to_vec() }
    }

    #[test]
    fn the_previous_close_is_the_last_session_before_today_not_chart_previous_close() {
        let nok = Listing::parse_key("NOK").unwrap();
        let quote = parse(&answer(200, &fixture("yahoo_chart_NOK_5d.json")), &nok).unwrap();
        assert_eq!(quote.price, 5.83);
        assert_eq!(quote.previous_close, 5.78, "chartPreviousClose is 5.71: the trap");
        assert_eq!(quote.currency.as_deref(), Some("USD"));
        assert_eq!(quote.as_of.timestamp(), 1781035202);
    }

    #[test]
    fn a_404_with_a_chart_error_is_an_unknown_symbol() {
        let zzzz = Listing::parse_key("ZZZZ").unwrap();
        assert_eq!(parse(&answer(404, &fixture("yahoo_chart_notfound.json")), &zzzz), Err(QuoteError::UnknownSymbol));
        assert_eq!(
            parse(&answer(200, br#"{"chart":{"result":[],"error":null}}"#), &zzzz),
            Err(QuoteError::UnknownSymbol)
        );
    }

    #[test]
    fn a_429_in_plain_text_is_a_rate_limit() {
        let nok = Listing::parse_key("NOK").unwrap();
        let limited = ProviderResponse {
            status: 429,
            retry_after: Some(std::time::Duration::from_secs(30)),
            body: fixture("yahoo_429.txt"),
        };
        assert_eq!(
            parse(&limited, &nok),
            Err(QuoteError::RateLimited { retry_after: Some(std::time::Duration::from_secs(30)) })
        );
    }

    #[test]
    fn html_or_truncated_json_with_200_is_malformed() {
        let nok = Listing::parse_key("NOK").unwrap();
        assert!(matches!(parse(&answer(200, b"<html>consent</html>"), &nok), Err(QuoteError::Malformed(_))));
        let full = fixture("yahoo_chart_NOK_5d.json");
        assert!(matches!(parse(&answer(200, &full[..full.len() / 2]), &nok), Err(QuoteError::Malformed(_))));
        assert!(matches!(parse(&answer(502, b"bad gateway"), &nok), Err(QuoteError::Transient(_))));
    }

    #[test]
    fn null_bars_are_skipped_when_looking_for_the_previous_close() {
        let nok = Listing::parse_key("NOK").unwrap();
        let body = String::from_utf8(fixture("yahoo_chart_NOK_5d.json")).unwrap().replace("5.78000020980835", "null");
        let quote = parse(&answer(200, body.as_bytes()), &nok).unwrap();
        assert_eq!(quote.previous_close, 5.75);
    }
}
