//! Periodic jobs. Each job calls the same functions the CLI and the admin
//! pages call; jobs that must run once across instances claim their
//! schedule slot in the database.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use super::ingest::{Ingest, us_market_is_open};
use crate::store::Store;

/// Every five minutes (cron with seconds first, in UTC).
const QUEUE_REPORT_SCHEDULE: &str = "0 */5 * * * *";

/// How often each poll runs.
pub struct PollIntervals {
    pub feeds: Duration,
    pub quotes: Duration,
}

/// Starts the scheduler with its jobs: the feed poll, the quote poll during
/// US market hours, and a report of the outbox's depth so a stuck queue
/// shows in the logs.
pub async fn start(store: Store, ingest: Arc<Ingest>, every: PollIntervals) -> Result<JobScheduler, JobSchedulerError> {
    let scheduler = JobScheduler::new().await?;
    scheduler
        .add(Job::new_async(QUEUE_REPORT_SCHEDULE, move |_, _| {
            let store = store.clone();
            Box::pin(async move { report_queue(&store).await })
        })?)
        .await?;
    if ingest.feed_count() > 0 {
        let feeds = ingest.clone();
        scheduler
            .add(Job::new_repeated_async(every.feeds, move |_, _| {
                let ingest = feeds.clone();
                Box::pin(async move {
                    ingest.poll_feeds().await;
                })
            })?)
            .await?;
    }
    if !ingest.quote_providers().is_empty() {
        scheduler
            .add(Job::new_repeated_async(every.quotes, move |_, _| {
                let ingest = ingest.clone();
                Box::pin(async move {
                    if !us_market_is_open(Utc::now()) {
                        return;
                    }
                    if let Err(error) = ingest.poll_quotes().await {
                        tracing::error!(%error, "quote poll failed");
                    }
                })
            })?)
            .await?;
    }
    scheduler.start().await?;
    Ok(scheduler)
}

#[tracing::instrument(name = "job.queue_report", skip_all)]
async fn report_queue(store: &Store) {
    match store.delivery_counts().await {
        Ok(counts) => {
            let by_status =
                counts.iter().map(|c| format!("{}/{}={}", c.kind, c.status, c.count)).collect::<Vec<_>>().join(" ");
            tracing::info!(deliveries = %by_status, "outbox report");
        }
        Err(error) => tracing::error!(%error, "outbox report failed"),
    }
}
