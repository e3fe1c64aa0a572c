//! Stooq CSV: the latest quote (`/q/l/`) for the price, and the daily
//! history (`/q/d/l/`, which now wants an `apikey`) for the previous close.
//! Errors come as HTTP 200 in plain text, or as an HTML page asking for a key
//! or a browser check, so only a body that starts with the expected header
//! is read as data. Its times are Stooq's own (Warsaw) time.

use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use url::Url;

use super::{ProviderResponse, Quote, QuoteError, send};
use crate::domain::Listing;

const QUOTE_HEADER: &str = "Symbol,Date,Time,Open,High,Low,Close,Volume";
const HISTORY_HEADER: &str = "Date,Open,High,Low,Close,Volume";
/// A daily limit is not worth retrying within the hour.
const DAILY_LIMIT_REST: std::time::Duration = std::time::Duration::from_secs(3600);

pub(super) async fn fetch(
    client: &reqwest::Client,
    base: &Url,
    api_key: Option<&str>,
    listing: &Listing,
) -> Result<Quote, QuoteError> {
    let symbol = listing.stooq_symbol().ok_or(QuoteError::NotCovered)?;
    let base = base.as_str().trim_end_matches('/');
    let request = client.get(format!("{base}/q/l/")).query(&[
        ("s", symbol.as_str()),
        ("f", "sd2t2ohlcv"),
        ("h", ""),
        ("e", "csv"),
    ]);
    let (price, as_of) = parse_quote(&send(request).await?, &symbol)?;
    let mut query = vec![("s", symbol.as_str()), ("i", "d")];
    if let Some(key) = api_key {
        query.push(("apikey", key));
    }
    let history = send(client.get(format!("{base}/q/d/l/")).query(&query)).await?;
    let previous_close = parse_previous_close(&history, as_of.date())?;
    Quote::new(listing, price, previous_close, None, as_of.and_utc())
}

/// The price and its time (UTC) from the quote CSV.
pub(super) fn parse_quote(response: &ProviderResponse, symbol: &str) -> Result<(f64, NaiveDateTime), QuoteError> {
    let text = csv_body(response, QUOTE_HEADER)?;
    let row = text
        .lines()
        .skip(1)
        .map(|line| line.trim().split(',').collect::<Vec<_>>())
        .find(|cells| cells.first().is_some_and(|s| s.eq_ignore_ascii_case(symbol)))
        .ok_or(QuoteError::UnknownSymbol)?;
    if row.len() != 8 || row[1..].iter().all(|cell| *cell == "N/D") {
        return Err(QuoteError::UnknownSymbol);
    }
    let local = NaiveDateTime::parse_from_str(&format!("{} {}", row[1], row[2]), "%Y-%m-%d %H:%M:%S")
        .map_err(|_| QuoteError::Malformed(format!("'{} {}' is not a date and time", row[1], row[2])))?;
    let as_of = chrono_tz::Europe::Warsaw
        .from_local_datetime(&local)
        .earliest()
        .ok_or_else(|| QuoteError::Malformed(format!("{local} does not exist in Warsaw time")))?
        .with_timezone(&Utc)
        .naive_utc();
    let price = row[6].parse().map_err(|_| QuoteError::Malformed(format!("close '{}' is not a number", row[6])))?;
    Ok((price, as_of))
}

/// The last close of a day before `day` in the history CSV.
pub(super) fn parse_previous_close(response: &ProviderResponse, day: NaiveDate) -> Result<f64, QuoteError> {
    let text = csv_body(response, HISTORY_HEADER)?;
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().split(',').collect();
            let date = NaiveDate::parse_from_str(cells.first()?, "%Y-%m-%d").ok()?;
            Some((date, cells.get(4)?.parse::<f64>().ok()?))
        })
        .filter(|(date, _)| *date < day)
        .max_by_key(|(date, _)| *date)
        .map(|(_, close)| close)
        .ok_or_else(|| QuoteError::Malformed(format!("the history has no close before {day}")))
}

/// The body when it is the CSV we asked for; otherwise what the text says it is.
fn csv_body<'a>(response: &'a ProviderResponse, header: &str) -> Result<&'a str, QuoteError> {
    if let Some(failure) = response.common_failure() {
        return Err(failure);
    }
    let text = std::str::from_utf8(&response.body).map_err(|_| QuoteError::Malformed("not UTF-8 text".into()))?;
    let first_line = text.lines().next().unwrap_or_default().trim();
    if response.status == 200 && first_line == header {
        return Ok(text);
    }
    let lower = text.trim_start().to_ascii_lowercase();
    Err(if lower.contains("exceeded the daily hits limit") {
        QuoteError::RateLimited { retry_after: Some(DAILY_LIMIT_REST) }
    } else if lower.starts_with("no data") {
        QuoteError::UnknownSymbol
    } else if lower.starts_with('<') {
        QuoteError::NotEntitled(
            "Stooq answered with an HTML page (an API key or a browser check); set STOOQ_API_KEY".into(),
        )
    } else if response.status != 200 {
        QuoteError::Transient(format!("HTTP {}: {}", response.status, response.excerpt()))
    } else {
        QuoteError::Malformed(format!("expected a CSV header, got '{}'", response.excerpt()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::quotes::fixture;

    fn answer(body: &[u8]) -> ProviderResponse {
        ProviderResponse { status: 200, retry_after: None, body: body.to_vec() }
    }

    #[test]
    fn the_quote_time_is_read_in_warsaw_time() {
        let (price, as_of) = parse_quote(&answer(&fixture("stooq_quote.csv")), "nok.us").unwrap();
        assert_eq!(price, 5.83);
        assert_eq!(as_of.to_string(), "2026-06-09 20:00:12");
    }

    #[test]
    fn a_row_of_nd_is_an_unknown_symbol() {
        assert_eq!(parse_quote(&answer(&fixture("stooq_quote.csv")), "zzzz.us"), Err(QuoteError::UnknownSymbol));
        assert_eq!(parse_quote(&answer(&fixture("stooq_quote.csv")), "abcd.us"), Err(QuoteError::UnknownSymbol));
    }

    #[test]
    fn the_previous_close_is_the_last_day_before_the_quote() {
        let day = NaiveDate::from_ymd_opt(2026, 6, 9).unwrap();
        assert_eq!(parse_previous_close(&answer(&fixture("stooq_history_nok.us.csv")), day), Ok(5.78));
    }

    #[test]
    fn plain_text_and_html_answers_with_200_are_classified() {
        let day = NaiveDate::from_ymd_opt(2026, 6, 9).unwrap();
        assert_eq!(
            parse_previous_close(&answer(&fixture("stooq_history_no_data.txt")), day),
            Err(QuoteError::UnknownSymbol)
        );
        assert_eq!(
            parse_quote(&answer(&fixture("stooq_quota.txt")), "nok.us"),
            Err(QuoteError::RateLimited { retry_after: Some(DAILY_LIMIT_REST) })
        );
        assert!(matches!(
            parse_quote(&answer(b"<!DOCTYPE html><html>verify</html>"), "nok.us"),
            Err(QuoteError::NotEntitled(_))
        ));
        assert!(matches!(parse_quote(&answer(b"Symbol;Data;Czas"), "nok.us"), Err(QuoteError::Malformed(_))));
    }
}
