//! Periodic jobs. Each job calls the same functions the CLI and the admin
//! pages call; jobs that must run once across instances claim their
//! schedule slot in the database.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use super::alerts::check_alerts;
use super::digest::{DigestRules, SlotCheck, digest_run, latest_slot};
use super::ingest::{Ingest, us_market_is_open};
use crate::config::Settings;
use crate::domain::DigestFrequency;
use crate::store::{Store, StoreError};

/// Every five minutes (cron with seconds first, in UTC).
const QUEUE_REPORT_SCHEDULE: &str = "0 */5 * * * *";
/// Digest schedules are checked every minute, in UTC: the slot itself is
/// worked out in the site's zone each time, so a DST change never shifts it
/// (tokio-cron-scheduler keeps a zone's offset from when a job was made).
const DIGEST_CHECK_SCHEDULE: &str = "0 * * * * *";

/// How often price alerts are checked, and how old a quote may be to alert.
pub struct AlertSchedule {
    pub every: Duration,
    pub max_quote_age: Duration,
}

/// When digests go out.
#[derive(Clone)]
pub struct DigestSchedules {
    pub daily: croner::Cron,
    pub weekly: croner::Cron,
    pub time_zone: chrono_tz::Tz,
    pub max_lateness: Duration,
    pub rules: DigestRules,
}

impl DigestSchedules {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            daily: settings.digest_schedule.clone(),
            weekly: settings.weekly_digest_schedule.clone(),
            time_zone: settings.time_zone,
            max_lateness: settings.digest_max_lateness,
            rules: settings.digest_rules,
        }
    }
}

/// How often each poll runs.
pub struct PollIntervals {
    pub feeds: Duration,
    pub quotes: Duration,
}

/// Starts the scheduler with its jobs: the daily and weekly digests, price alerts, the
/// feed poll, the quote poll during US market hours, and a report of the
/// outbox's depth so a stuck queue shows in the logs.
pub async fn start(
    store: Store,
    ingest: Arc<Ingest>,
    every: PollIntervals,
    digests: DigestSchedules,
    alerts: AlertSchedule,
) -> Result<JobScheduler, JobSchedulerError> {
    let scheduler = JobScheduler::new().await?;
    let alert_store = store.clone();
    scheduler
        .add(Job::new_repeated_async(alerts.every, move |_, _| {
            let store = alert_store.clone();
            Box::pin(async move {
                if let Err(error) = check_alerts(&store, crate::store::now(), alerts.max_quote_age, false).await {
                    tracing::error!(%error, "alert check failed");
                }
            })
        })?)
        .await?;
    let report_store = store.clone();
    scheduler
        .add(Job::new_async(QUEUE_REPORT_SCHEDULE, move |_, _| {
            let store = report_store.clone();
            Box::pin(async move { report_queue(&store).await })
        })?)
        .await?;
    let handled_slots = Arc::new(Mutex::new(HashSet::new()));
    scheduler
        .add(Job::new_async(DIGEST_CHECK_SCHEDULE, move |_, _| {
            let (store, digests, handled) = (store.clone(), digests.clone(), handled_slots.clone());
            Box::pin(async move { fire_due_digests(&store, &digests, &handled).await })
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

/// Creates the edition of each schedule's latest slot, once: a slot that
/// already has its edition (made by another instance, or before a restart)
/// is left alone, and one whose time is longer ago than the allowed lateness
/// is skipped and logged.
#[tracing::instrument(name = "job.digest_check", skip_all)]
async fn fire_due_digests(store: &Store, digests: &DigestSchedules, handled: &Mutex<HashSet<String>>) {
    let now = crate::store::now();
    for (frequency, schedule) in [(DigestFrequency::Daily, &digests.daily), (DigestFrequency::Weekly, &digests.weekly)]
    {
        let Some(check) = latest_slot(schedule, &digests.time_zone, frequency, now, digests.max_lateness) else {
            continue;
        };
        let (SlotCheck::Due(slot) | SlotCheck::TooLate(slot)) = &check;
        if !handled.lock().expect("not poisoned").insert(slot.clone()) {
            continue;
        }
        let outcome = handle_slot(store, frequency, &check, now, digests.rules).await;
        if let Err(error) = outcome {
            tracing::error!(%slot, %error, "digest check failed; trying again in a minute");
            handled.lock().expect("not poisoned").remove(slot);
        }
    }
}

async fn handle_slot(
    store: &Store,
    frequency: DigestFrequency,
    check: &SlotCheck,
    now: chrono::DateTime<Utc>,
    rules: DigestRules,
) -> Result<(), StoreError> {
    match check {
        SlotCheck::Due(slot) => {
            match store.create_digest_edition(&digest_run(frequency, slot.clone(), now, rules)).await? {
                Some(created) => {
                    tracing::info!(%slot, recipients = created.recipients, stories = created.stories, "digest edition created")
                }
                None => tracing::info!(%slot, "digest slot already has its edition"),
            }
        }
        SlotCheck::TooLate(slot) => {
            if !store.edition_exists(slot).await? {
                tracing::warn!(%slot, "digest slot skipped: it is past DIGEST_MAX_LATENESS_MINUTES");
            }
        }
    }
    Ok(())
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
