//! Alpha Vantage `GLOBAL_QUOTE`: a key, 25 requests a day on the free plan,
//! and every error arrives as HTTP 200, told apart only by the body's keys.

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use url::Url;

use super::{ProviderResponse, Quote, QuoteError, number, send};
use crate::domain::Listing;

/// A limit "per day" is not worth retrying within the hour.
const DAILY_LIMIT_REST: std::time::Duration = std::time::Duration::from_secs(3600);

pub(super) async fn fetch(
    client: &reqwest::Client,
    base: &Url,
    api_key: &str,
    listing: &Listing,
) -> Result<Quote, QuoteError> {
    let symbol = listing.alpha_vantage_symbol().ok_or(QuoteError::NotCovered)?;
    let url = format!("{}/query", base.as_str().trim_end_matches('/'));
    let request = client.get(url).query(&[("function", "GLOBAL_QUOTE"), ("symbol", &symbol), ("apikey", api_key)]);
    parse(&send(request).await?, listing)
}

pub(super) fn parse(response: &ProviderResponse, listing: &Listing) -> Result<Quote, QuoteError> {
    if let Some(failure) = response.common_failure() {
        return Err(failure);
    }
    if response.status != 200 {
        return Err(QuoteError::Transient(format!("HTTP {}: {}", response.status, response.excerpt())));
    }
    let body: serde_json::Value =
        serde_json::from_slice(&response.body).map_err(|e| QuoteError::Malformed(format!("not JSON: {e}")))?;
    if let Some(message) = body.get("Error Message").and_then(|m| m.as_str()) {
        // The call is fixed but for the symbol, so an "invalid call" is about the symbol.
        return Err(if message.contains("apikey") {
            QuoteError::Auth(super::excerpt(message))
        } else {
            QuoteError::UnknownSymbol
        });
    }
    if let Some(message) = ["Information", "Note"].iter().find_map(|key| body.get(*key).and_then(|m| m.as_str())) {
        return Err(classify_notice(message));
    }
    let fields = body
        .get("Global Quote")
        .and_then(|q| q.as_object())
        .ok_or_else(|| QuoteError::Malformed(format!("no Global Quote in {}", response.excerpt())))?;
    if fields.is_empty() {
        return Err(QuoteError::UnknownSymbol);
    }
    let field = |name: &str| fields.get(name).ok_or_else(|| QuoteError::Malformed(format!("no '{name}'")));
    let price = number(field("05. price")?).ok_or_else(|| QuoteError::Malformed("price is not a number".into()))?;
    let previous_close = number(field("08. previous close")?)
        .ok_or_else(|| QuoteError::Malformed("previous close is not a number".into()))?;
    let day = field("07. latest trading day")?
        .as_str()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| QuoteError::Malformed("latest trading day is not a date".into()))?;
    // Only the day is given: the quote is taken as of that day's close (16:00
    // at the exchange), or now if that is still to come.
    let close = listing
        .time_zone()
        .from_local_datetime(&day.and_time(NaiveTime::from_hms_opt(16, 0, 0).expect("valid time")))
        .earliest()
        .ok_or_else(|| QuoteError::Malformed(format!("{day} 16:00 does not exist at the exchange")))?
        .with_timezone(&Utc);
    Quote::new(listing, price, previous_close, None, close.min(Utc::now()))
}

fn classify_notice(message: &str) -> QuoteError {
    let lower = message.to_ascii_lowercase();
    if lower.contains("apikey is invalid") || lower.contains("demo") {
        QuoteError::Auth(super::excerpt(message))
    } else if lower.contains("per day") {
        QuoteError::RateLimited { retry_after: Some(DAILY_LIMIT_REST) }
    } else if ["rate limit", "call frequency", "premium"].iter().any(|hint| lower.contains(hint)) {
        QuoteError::RateLimited { retry_after: None }
    } else {
        QuoteError::Transient(super::excerpt(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::quotes::fixture;

    fn answer(name: &str) -> ProviderResponse {
        ProviderResponse { status: 200, retry_after: None, body: fixture(name) }
    }

    #[test]
    fn a_global_quote_is_read_from_its_strings() {
        let quote = parse(&answer("av_global_quote_NOK.json"), &Listing::parse_key("NOK").unwrap()).unwrap();
        assert_eq!((quote.price, quote.previous_close), (5.83, 5.78));
        assert_eq!(quote.as_of.to_rfc3339(), "2026-06-09T20:00:00+00:00");
    }

    #[test]
    fn every_soft_error_with_http_200_is_classified() {
        let nok = Listing::parse_key("NOK").unwrap();
        assert_eq!(
            parse(&answer("av_rate_limit_daily.json"), &nok),
            Err(QuoteError::RateLimited { retry_after: Some(DAILY_LIMIT_REST) })
        );
        assert_eq!(
            parse(&answer("av_rate_limit_legacy_note.json"), &nok),
            Err(QuoteError::RateLimited { retry_after: Some(DAILY_LIMIT_REST) })
        );
        assert_eq!(parse(&answer("av_unknown_symbol.json"), &nok), Err(QuoteError::UnknownSymbol));
        assert_eq!(parse(&answer("av_invalid_call.json"), &nok), Err(QuoteError::UnknownSymbol));
        assert!(matches!(parse(&answer("av_invalid_key.json"), &nok), Err(QuoteError::Auth(_))));
    }
}
