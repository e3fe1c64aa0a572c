//! Periodic jobs. Each job calls the same functions the CLI and the admin
//! pages call; jobs that must run once across instances claim their
//! schedule slot in the database.

use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::store::Store;

/// Every five minutes (cron with seconds first, in UTC).
const QUEUE_REPORT_SCHEDULE: &str = "0 */5 * * * *";

/// Starts the scheduler with its jobs. Today: a report of the outbox's
/// depth by status, so a stuck queue shows in the logs.
pub async fn start(store: Store) -> Result<JobScheduler, JobSchedulerError> {
    let scheduler = JobScheduler::new().await?;
    scheduler
        .add(Job::new_async(QUEUE_REPORT_SCHEDULE, move |_, _| {
            let store = store.clone();
            Box::pin(async move { report_queue(&store).await })
        })?)
        .await?;
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
