//! Every reader as CSV, for the admin API and pages alike: streamed a page
//! at a time, never built in memory.

use actix_web::{HttpResponse, web};
use futures_util::StreamExt;

use super::next_after;
use crate::store::{Store, SubscriberSummary};

/// Readers read per page while the CSV export streams.
const EXPORT_PAGE: u32 = 1000;

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
                    let next = next_after(&page, EXPORT_PAGE).map(str::to_string);
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
        subscriber.status.to_string(),
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

#[cfg(test)]
mod tests {
    use super::csv_cell;

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
