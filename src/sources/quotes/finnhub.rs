//! Finnhub `/quote`: a key, 60 calls a minute, US listings only on the free plan.
//! An unknown symbol is HTTP 200 with zeros everywhere and null changes.

use chrono::DateTime;
use serde::Deserialize;
use url::Url;

use super::{ProviderResponse, Quote, QuoteError, send};
use crate::domain::Listing;

pub(super) async fn fetch(
    client: &reqwest::Client,
    base: &Url,
    api_key: &str,
    listing: &Listing,
) -> Result<Quote, QuoteError> {
    let url = format!("{}/quote", base.as_str().trim_end_matches('/'));
    // The key goes in a header, so it stays out of URLs and logs.
    let request = client.get(url).query(&[("symbol", listing.finnhub_symbol())]).header("X-Finnhub-Token", api_key);
    parse(&send(request).await?, listing)
}

#[derive(Deserialize)]
struct FinnhubQuote {
    c: Option<f64>,
    pc: Option<f64>,
    t: Option<i64>,
}

#[derive(Deserialize)]
struct FinnhubError {
    error: String,
}

pub(super) fn parse(response: &ProviderResponse, listing: &Listing) -> Result<Quote, QuoteError> {
    if let Some(failure) = response.common_failure() {
        return Err(failure);
    }
    if let Ok(FinnhubError { error }) = serde_json::from_slice(&response.body) {
        return Err(classify_error(response.status, &error));
    }
    match response.status {
        200 => {}
        401 | 403 => return Err(QuoteError::Auth(format!("HTTP {}: {}", response.status, response.excerpt()))),
        status => return Err(QuoteError::Transient(format!("HTTP {status}: {}", response.excerpt()))),
    }
    let quote: FinnhubQuote =
        serde_json::from_slice(&response.body).map_err(|e| QuoteError::Malformed(format!("not a quote: {e}")))?;
    match (quote.c, quote.pc, quote.t) {
        (Some(price), _, Some(0)) | (Some(price), _, None) if price == 0.0 => Err(QuoteError::UnknownSymbol),
        (Some(price), Some(previous_close), Some(time)) => {
            let as_of = DateTime::from_timestamp(time, 0)
                .ok_or_else(|| QuoteError::Malformed(format!("time {time} is out of range")))?;
            Quote::new(listing, price, previous_close, None, as_of)
        }
        _ => Err(QuoteError::Malformed("a quote without c, pc or t".into())),
    }
}

fn classify_error(status: u16, message: &str) -> QuoteError {
    let lower = message.to_ascii_lowercase();
    let message = super::excerpt(message);
    if status == 429 || lower.contains("limit") {
        QuoteError::RateLimited { retry_after: None }
    } else if lower.contains("access") {
        QuoteError::NotEntitled(message)
    } else if lower.contains("api key") || lower.contains("token") || status == 401 {
        QuoteError::Auth(message)
    } else if lower.contains("symbol") {
        QuoteError::UnknownSymbol
    } else {
        QuoteError::Transient(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::quotes::fixture;

    fn answer(status: u16, name: &str) -> ProviderResponse {
        ProviderResponse { status, retry_after: None, body: fixture(name) }
    }

    #[test]
    fn a_quote_gives_price_previous_close_and_time() {
        let quote = parse(&answer(200, "finnhub_quote_NOK.json"), &Listing::parse_key("NOK").unwrap()).unwrap();
        assert_eq!((quote.price, quote.previous_close, quote.as_of.timestamp()), (5.83, 5.78, 1781035200));
    }

    #[test]
    fn every_error_shape_is_classified() {
        let nok = Listing::parse_key("NOK").unwrap();
        assert_eq!(parse(&answer(200, "finnhub_unknown_symbol.json"), &nok), Err(QuoteError::UnknownSymbol));
        assert_eq!(parse(&answer(429, "finnhub_429.json"), &nok), Err(QuoteError::RateLimited { retry_after: None }));
        assert!(matches!(parse(&answer(403, "finnhub_no_access.json"), &nok), Err(QuoteError::NotEntitled(_))));
        let unsupported =
            ProviderResponse { status: 200, retry_after: None, body: br#"{"error":"Symbol not supported."}"#.to_vec() };
        assert_eq!(parse(&unsupported, &nok), Err(QuoteError::UnknownSymbol));
        let bad_key =
            ProviderResponse { status: 401, retry_after: None, body: br#"{"error":"Invalid API key."}"#.to_vec() };
        assert!(matches!(parse(&bad_key, &nok), Err(QuoteError::Auth(_))));
        let garbage = ProviderResponse { status: 200, retry_after: None, body: b"\xff\xfe<html>".to_vec() };
        assert!(matches!(parse(&garbage, &nok), Err(QuoteError::Malformed(_))));
    }
}
