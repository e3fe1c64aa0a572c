//! Readers imported from CSV, for the admin API and pages alike; invalid rows
//! are reported by line. An import is parsed off the async threads and
//! written in batches, so the site goes on serving, and signing readers up,
//! while a large one runs. The pages' imports run in the background.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::domain::{SubscriberEmail, SubscriberName, Watchlist};
use crate::store::{ImportedReader, Store, StoreError};

/// Rows written per transaction: short enough that a sign-up waits for one
/// batch at most, long enough that the import is not one commit per row.
const IMPORT_BATCH: usize = 1000;

/// Imports the admin pages keep the progress or report of, the newest.
const KEPT_IMPORTS: usize = 20;

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

/// Why an import stopped. All but `Store` are about the file as a whole:
/// nothing of it was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("The CSV could not be read: {0}")]
    NotCsv(#[from] csv::Error),
    #[error("The first row must name the columns, with an email column.")]
    NoEmailColumn,
    #[error("The CSV could not be read: {0}")]
    ParserFailed(#[from] tokio::task::JoinError),
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
    let (readers, invalid) = tokio::task::spawn_blocking(move || parse_import(&csv)).await??;
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
                ImportError::Store(error) => {
                    tracing::error!(%error, "import cut short");
                    "The database failed part-way; the rows before that were imported. Import the file again to add the rest.".into()
                }
                unreadable => unreadable.to_string(),
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
fn parse_import(csv: &[u8]) -> Result<(Vec<ImportedReader>, Vec<InvalidRow>), ImportError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(csv);
    let headers = reader.headers()?.clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let email_column = column("email").ok_or(ImportError::NoEmailColumn)?;
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
}
