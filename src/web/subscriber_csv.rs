//! Subscribers as CSV, for the admin API and pages alike: the export is
//! streamed a page at a time, and the import reports invalid rows by line.

use actix_web::{HttpResponse, web};
use futures_util::StreamExt;

use crate::domain::{SubscriberEmail, SubscriberName, Watchlist};
use crate::store::{ImportedReader, Store, SubscriberSummary};

/// Readers read per page while the CSV export streams.
const EXPORT_PAGE: u32 = 1000;

/// Every reader as CSV, streamed a page at a time (never built in memory).
/// A cell that a spreadsheet would take for a formula is escaped.
pub fn export_response(store: Store) -> HttpResponse {
    let header = web::Bytes::from_static(b"email,name,status,tickers,created_at,confirmed_at,unsubscribed_at\r\n");
    let pages = futures_util::stream::unfold(Some(String::new()), move |after| {
        let store = store.clone();
        async move {
            let after = after?;
            match store.find_subscribers("", None, &after, EXPORT_PAGE).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let next = (page.len() == EXPORT_PAGE as usize).then(|| page[page.len() - 1].email.clone());
                    let rows: String = page.iter().map(csv_row).collect();
                    Some((Ok(web::Bytes::from(rows)), next))
                }
                Err(error) => {
                    tracing::error!(%error, "CSV export cut short");
                    Some((Err(actix_web::error::ErrorServiceUnavailable("database unavailable")), None))
                }
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"subscribers.csv\""))
        .streaming(futures_util::stream::once(async move { Ok::<_, actix_web::Error>(header) }).chain(pages))
}

fn csv_row(subscriber: &SubscriberSummary) -> String {
    let time = |at: Option<chrono::DateTime<chrono::Utc>>| at.map(|at| at.to_rfc3339()).unwrap_or_default();
    let cells = [
        subscriber.email.clone(),
        subscriber.name.clone(),
        subscriber.status.clone(),
        subscriber.tickers.clone(),
        subscriber.created_at.to_rfc3339(),
        time(subscriber.confirmed_at),
        time(subscriber.unsubscribed_at),
    ];
    let mut row = cells.iter().map(|cell| csv_cell(cell)).collect::<Vec<_>>().join(",");
    row.push_str("\r\n");
    row
}

/// Quotes a cell when it needs it, and puts a `'` before one that starts
/// like a formula (`=`, `+`, `-`, `@`, tab, CR) so a spreadsheet shows it as text.
fn csv_cell(value: &str) -> String {
    let value =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_string() };
    if value.contains([',', '"', '\n', '\r']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

/// The largest CSV an import takes.
pub const MAX_IMPORT_BYTES: usize = 5 * 1024 * 1024;

pub fn too_large() -> String {
    format!("An import may be at most {} MiB.", MAX_IMPORT_BYTES >> 20)
}

/// A row that cannot be imported: its line, and why.
pub type InvalidRow = (u64, String);

/// The valid rows, and each invalid one.
pub fn parse_import(csv: &[u8]) -> Result<(Vec<ImportedReader>, Vec<InvalidRow>), String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(csv);
    let headers = reader.headers().map_err(|e| format!("The CSV could not be read: {e}"))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let email_column = column("email").ok_or("The first row must name the columns, with an email column.")?;
    let (name_column, tickers_column) = (column("name"), column("tickers"));
    let (mut readers, mut invalid) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |position| line_of(csv, position));
                invalid.push((line, format!("not a CSV row: {error}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |position| line_of(csv, position));
        let cell = |column: Option<usize>| column.and_then(|c| record.get(c)).unwrap_or_default();
        let parsed = SubscriberEmail::parse(cell(Some(email_column))).and_then(|email| {
            Ok(ImportedReader {
                email,
                name: SubscriberName::parse(cell(name_column))?,
                watchlist: Watchlist::parse_text(cell(tickers_column))?,
            })
        });
        match parsed {
            Ok(reader) => readers.push(reader),
            Err(message) => invalid.push((line, message)),
        }
    }
    Ok((readers, invalid))
}

/// The line a record starts on, as an editor numbers it. (The csv crate's own
/// line count is one short after CRLF line ends, so it is counted here from
/// the record's byte offset, past any line end it points into.)
fn line_of(csv: &[u8], position: &csv::Position) -> u64 {
    let mut start = usize::try_from(position.byte()).unwrap_or(usize::MAX).min(csv.len());
    while start < csv.len() && matches!(csv[start], b'\r' | b'\n') {
        start += 1;
    }
    1 + csv[..start].iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn import_errors_name_the_line_an_editor_shows_whatever_the_line_ends() {
        for csv in ["email\na@x.example\nbad\n", "email\r\na@x.example\r\nbad\r\n", "email\r\n\"a@x.example\"\r\nbad"] {
            let (readers, invalid) = super::parse_import(csv.as_bytes()).unwrap();
            assert_eq!((readers.len(), invalid[0].0), (1, 3), "{csv:?}");
        }
    }

    #[test]
    fn csv_cells_that_look_like_formulas_or_hold_separators_are_escaped() {
        assert_eq!(csv_cell("Ann"), "Ann");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell("@SUM"), "'@SUM");
        assert_eq!(csv_cell("NOK,AAPL"), "\"NOK,AAPL\"");
    }
}
