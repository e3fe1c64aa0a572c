//! Subscribers as CSV, for the admin API and pages alike: the export is
//! streamed a page at a time, and the import reports invalid rows by line.
//! An import is parsed off the async threads and written in batches, so the
//! site goes on serving, and signing readers up, while a large one runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{HttpResponse, web};
use futures_util::StreamExt;
use uuid::Uuid;

use crate::domain::{SubscriberEmail, SubscriberName, Watchlist};
use crate::store::{ImportedReader, Store, StoreError, SubscriberSummary};

/// Rows written per transaction: short enough that a sign-up waits for one
/// batch at most, long enough that the import is not one commit per row.
const IMPORT_BATCH: usize = 1000;

/// Imports the admin pages keep the progress or report of, the newest.
const KEPT_IMPORTS: usize = 20;

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

/// The largest CSV an import takes.
pub const MAX_IMPORT_BYTES: usize = 5 * 1024 * 1024;

pub fn too_large() -> String {
    format!("An import may be at most {} MiB.", MAX_IMPORT_BYTES >> 20)
}

/// A row that cannot be imported: its line, and why.
pub type InvalidRow = (u64, String);

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: u64,
    pub already_known: u64,
    pub invalid: Vec<InvalidRow>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file as a whole cannot be imported; nothing was.
    #[error("{0}")]
    Unreadable(String),
    /// The database failed part-way: the batches before it are in.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How far an import has come: its valid rows, and how many are written.
#[derive(Debug, Default)]
pub struct ImportProgress {
    pub rows: AtomicU64,
    pub written: AtomicU64,
}

/// Parses `csv` on a blocking thread, then adds its valid rows in batches.
pub async fn import(store: &Store, csv: Vec<u8>, progress: &ImportProgress) -> Result<ImportReport, ImportError> {
    let parsed = tokio::task::spawn_blocking(move || parse_import(&csv))
        .await
        .map_err(|e| ImportError::Unreadable(format!("The CSV could not be read: {e}")))?;
    let (readers, invalid) = parsed.map_err(ImportError::Unreadable)?;
    progress.rows.store(readers.len() as u64, Ordering::Relaxed);
    let mut imported = 0;
    for batch in readers.chunks(IMPORT_BATCH) {
        imported += store.import_subscribers(batch).await?;
        progress.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
    Ok(ImportReport { imported, already_known: readers.len() as u64 - imported, invalid })
}

/// An import started from the admin pages, which follow it until it is done.
#[derive(Debug, Default)]
pub struct ImportJob {
    pub progress: ImportProgress,
    pub outcome: Mutex<Option<Result<ImportReport, String>>>,
}

/// The imports the admin pages started, oldest first.
#[derive(Clone, Default)]
pub struct ImportJobs(Arc<Mutex<Vec<StartedImport>>>);

type StartedImport = (Uuid, Arc<ImportJob>);

impl ImportJobs {
    /// Starts importing `csv` in the background; its id names it for `get`.
    pub fn start(&self, store: Store, csv: Vec<u8>) -> Uuid {
        let (id, job) = (Uuid::new_v4(), Arc::new(ImportJob::default()));
        {
            let mut jobs = self.0.lock().expect("not poisoned");
            if jobs.len() == KEPT_IMPORTS {
                jobs.remove(0);
            }
            jobs.push((id, job.clone()));
        }
        tokio::spawn(async move {
            let outcome = import(&store, csv, &job.progress).await.map_err(|error| match error {
                ImportError::Unreadable(message) => message,
                ImportError::Store(error) => {
                    tracing::error!(%error, "import cut short");
                    "The database failed part-way; the rows before that were imported. Import the file again to add the rest.".into()
                }
            });
            *job.outcome.lock().expect("not poisoned") = Some(outcome);
        });
        id
    }

    pub fn get(&self, id: Uuid) -> Option<Arc<ImportJob>> {
        let jobs = self.0.lock().expect("not poisoned");
        jobs.iter().find(|(job_id, _)| *job_id == id).map(|(_, job)| job.clone())
    }
}

/// The valid rows, and each invalid one.
pub fn parse_import(csv: &[u8]) -> Result<(Vec<ImportedReader>, Vec<InvalidRow>), String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(csv);
    let headers = reader.headers().map_err(|e| format!("The CSV could not be read: {e}"))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let email_column = column("email").ok_or("The first row must name the columns, with an email column.")?;
    let (name_column, tickers_column) = (column("name"), column("tickers"));
    let (mut readers, mut invalid) = (Vec::new(), Vec::new());
    let mut lines = LineCounter::default();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |position| lines.line_of(csv, position));
                invalid.push((line, format!("not a CSV row: {error}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |position| lines.line_of(csv, position));
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

/// The line each record starts on, as an editor numbers it. (The csv crate's
/// own line count is one short after CRLF line ends, so it is counted here
/// from the record's byte offset, past any line end it points into.) Records
/// come in order, so the count goes on from the last one: one pass in all.
#[derive(Default)]
struct LineCounter {
    /// Bytes counted so far, and the line breaks among them.
    counted: usize,
    breaks: u64,
}

impl LineCounter {
    fn line_of(&mut self, csv: &[u8], position: &csv::Position) -> u64 {
        let mut start = usize::try_from(position.byte()).unwrap_or(usize::MAX).min(csv.len());
        while start < csv.len() && matches!(csv[start], b'\r' | b'\n') {
            start += 1;
        }
        if start < self.counted {
            *self = Self::default();
        }
        self.breaks += memchr::memchr_iter(b'\n', &csv[self.counted..start]).count() as u64;
        self.counted = start;
        1 + self.breaks
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn a_large_import_is_parsed_in_one_pass() {
        let mut csv = String::from("email,name\n");
        for i in 0..100_000 {
            csv.push_str(&format!("reader{i}@example.com,Reader {i}\n"));
        }
        csv.push_str("bad\n");
        let started = std::time::Instant::now();
        let (readers, invalid) = super::parse_import(csv.as_bytes()).unwrap();
        assert_eq!((readers.len(), invalid[0].0), (100_000, 100_002));
        // Counting each record's line from the start of the file took minutes here.
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    }

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
