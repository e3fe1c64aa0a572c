//! Looking after the list over the admin API: find readers, see one with
//! their consent record and delivery history, unsubscribe one, erase one.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::domain::{SubscriberEmail, SubscriberName, SubscriberStatus, Watchlist};
use futures_util::StreamExt;

use crate::store::{ImportedReader, StoreError, SubscriberSummary};
use crate::web::AppState;
use crate::web::admin_auth::AdminApi;

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

fn unavailable(error: StoreError) -> HttpResponse {
    tracing::error!(%error, "admin API request failed");
    HttpResponse::ServiceUnavailable().json(json!({ "error": "The database is unavailable; try again shortly." }))
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({ "error": "No such subscriber." }))
}

fn bad_request(message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": message }))
}

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    /// Part of the address, any case.
    email: Option<String>,
    status: Option<String>,
    /// The last address of the previous page.
    after: Option<String>,
    limit: Option<u32>,
}

/// `?email=ann&status=confirmed&after=…&limit=50`: readers in address order.
#[get("/admin/api/subscribers")]
pub(super) async fn search(_: AdminApi, query: web::Query<SearchQuery>, state: web::Data<AppState>) -> HttpResponse {
    let status = match query.status.as_deref().filter(|s| !s.is_empty()).map(str::parse::<SubscriberStatus>) {
        None => None,
        Some(Ok(status)) => Some(status),
        Some(Err(_)) => return bad_request("status must be pending, confirmed, unsubscribed or bounced."),
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return bad_request(&format!("limit must be from 1 to {MAX_PAGE}."));
    }
    let email = query.email.as_deref().unwrap_or_default().trim();
    let after = query.after.as_deref().unwrap_or_default();
    match state.store.find_subscribers(email, status, after, limit).await {
        Ok(found) => {
            let next = (found.len() == limit as usize).then(|| found.last().map(|s| s.email.clone())).flatten();
            HttpResponse::Ok().json(json!({ "subscribers": found, "next_after": next }))
        }
        Err(error) => unavailable(error),
    }
}

/// Readers read per page while the CSV export streams.
const EXPORT_PAGE: u32 = 1000;

/// Every reader as CSV, streamed a page at a time (never built in memory).
/// A cell that a spreadsheet would take for a formula is escaped.
#[get("/admin/api/subscribers.csv")]
pub(super) async fn export_csv(_: AdminApi, state: web::Data<AppState>) -> HttpResponse {
    let header = web::Bytes::from_static(b"email,name,status,tickers,created_at,confirmed_at,unsubscribed_at\r\n");
    let store = state.store.clone();
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
const MAX_IMPORT_BYTES: usize = 5 * 1024 * 1024;

#[derive(Deserialize)]
pub(super) struct ImportQuery {
    /// `yes`: the admin confirms these people consented to the emails.
    consent: Option<String>,
}

/// Imports readers from CSV (a header row naming `email`, and optionally
/// `name` and `tickers`) as confirmed, after the admin confirms they
/// consented (`?consent=yes`). Valid rows are added, known addresses are
/// left alone, and invalid rows are reported with their line numbers.
#[post("/admin/api/subscribers/import")]
pub(super) async fn import_csv(
    _: AdminApi,
    query: web::Query<ImportQuery>,
    mut body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if query.consent.as_deref() != Some("yes") {
        return HttpResponse::UnprocessableEntity().json(json!({
            "error": "Confirm that these people consented to get our emails: add ?consent=yes.",
            "field": "consent",
        }));
    }
    let mut csv = Vec::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { return bad_request("The body could not be read.") };
        if csv.len() + chunk.len() > MAX_IMPORT_BYTES {
            return HttpResponse::PayloadTooLarge()
                .json(json!({ "error": format!("An import may be at most {} MiB.", MAX_IMPORT_BYTES >> 20) }));
        }
        csv.extend_from_slice(&chunk);
    }
    let (readers, invalid) = match parse_import(&csv) {
        Ok(parsed) => parsed,
        Err(message) => return bad_request(&message),
    };
    match state.store.import_subscribers(&readers).await {
        Ok(added) => HttpResponse::Ok().json(json!({
            "imported": added,
            "already_known": readers.len() as u64 - added,
            "invalid": invalid.iter().map(|(line, error)| json!({"line": line, "error": error})).collect::<Vec<_>>(),
        })),
        Err(error) => unavailable(error),
    }
}

/// A row that cannot be imported: its line, and why.
type InvalidRow = (u64, String);

/// The valid rows, and each invalid one.
fn parse_import(csv: &[u8]) -> Result<(Vec<ImportedReader>, Vec<InvalidRow>), String> {
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

/// One reader: their preferences, consent record and deliveries.
#[get("/admin/api/subscribers/{id}")]
pub(super) async fn show(_: AdminApi, id: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let Ok(id) = Uuid::parse_str(&id) else { return not_found() };
    let subscriber = match state.store.subscriber(id).await {
        Ok(Some(subscriber)) => subscriber,
        Ok(None) => return not_found(),
        Err(error) => return unavailable(error),
    };
    let details = async {
        let email = SubscriberEmail::parse(&subscriber.email).map_err(StoreError::Corrupt)?;
        Ok::<_, StoreError>((state.store.consent_record(&email).await?, state.store.subscriber_history(id).await?))
    };
    match details.await {
        Ok((consent, deliveries)) => HttpResponse::Ok().json(json!({
            "id": subscriber.id,
            "email": subscriber.email,
            "name": subscriber.name,
            "status": subscriber.status.as_str(),
            "tickers": subscriber.watchlist.to_stored(),
            "alert_threshold_pct": subscriber.alert_threshold.percent(),
            "digest_frequency": subscriber.digest_frequency.as_str(),
            "alerts_enabled": subscriber.alerts_enabled,
            "created_at": subscriber.created_at,
            "confirmed_at": subscriber.confirmed_at,
            "consent": consent.map(|c| json!({"at": c.at, "ip": c.ip, "user_agent": c.user_agent, "source": c.source})),
            "deliveries": deliveries,
        })),
        Err(error) => unavailable(error),
    }
}

/// Unsubscribes a reader at once, as their own one-click link would.
#[post("/admin/api/subscribers/{id}/unsubscribe")]
pub(super) async fn unsubscribe(_: AdminApi, id: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let Ok(id) = Uuid::parse_str(&id) else { return not_found() };
    match state.store.subscriber(id).await {
        Ok(None) => return not_found(),
        Err(error) => return unavailable(error),
        Ok(Some(_)) => {}
    }
    match state.store.unsubscribe(id).await {
        Ok(changed) => HttpResponse::Ok().json(json!({ "unsubscribed": true, "changed": changed })),
        Err(error) => unavailable(error),
    }
}

/// Erases a reader with all their personal data (GDPR); their deliveries
/// stay, anonymised, for the statistics. 204, or 404 if there is no such reader.
#[delete("/admin/api/subscribers/{id}")]
pub(super) async fn erase(_: AdminApi, id: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let Ok(id) = Uuid::parse_str(&id) else { return not_found() };
    match state.store.erase_subscriber(id).await {
        Ok(true) => HttpResponse::NoContent().finish(),
        Ok(false) => not_found(),
        Err(error) => unavailable(error),
    }
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
