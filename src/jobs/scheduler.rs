//! Periodic jobs. Each job calls the same functions the CLI and the admin
//! pages call; jobs that must run once across instances claim their
//! schedule slot in the database.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{Timelike, Utc};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use super::alerts::check_alerts;
use super::digest::{DigestRules, SlotCheck, digest_run, latest_slot};
use super::ingest::Ingest;
use crate::config::Settings;
use crate::domain::DigestFrequency;
use crate::store::{EditionOutcome, Store, StoreError};

/// Every five minutes (cron with seconds first, in UTC).
const QUEUE_REPORT_SCHEDULE: &str = "0 */5 * * * *";
/// Digest and alert schedules are checked every minute, in UTC: the slot
/// itself is worked out in the site's zone each time, so a DST change never
/// shifts it (tokio-cron-scheduler keeps a zone's offset from when a job was made).
const EVERY_MINUTE: &str = "0 * * * * *";

/// When price alerts are checked (a cron pattern in the site's zone), and
/// how old a quote may be to alert.
pub struct AlertSchedule {
    /// `None`: only `tickermail alerts` checks them.
    pub schedule: Option<croner::Cron>,
    pub time_zone: chrono_tz::Tz,
    pub max_quote_age: Duration,
}

impl AlertSchedule {
    /// Whether `now`'s minute, in the site's zone, is on the schedule.
    fn is_due(&self, now: chrono::DateTime<Utc>) -> bool {
        let minute = now.with_timezone(&self.time_zone).with_second(0).and_then(|t| t.with_nanosecond(0));
        let Some(schedule) = &self.schedule else { return false };
        minute.is_some_and(|minute| schedule.is_time_matching(&minute).unwrap_or(false))
    }
}

/// When digests go out.
#[derive(Clone)]
pub struct DigestSchedules {
    /// `None`: that digest goes out only when asked for.
    pub daily: Option<croner::Cron>,
    pub weekly: Option<croner::Cron>,
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
            rules: DigestRules::from_settings(settings),
        }
    }
}

/// How often each poll runs.
pub struct PollIntervals {
    pub feeds: Duration,
    pub quotes: Duration,
}

/// Starts the scheduler with its jobs: the daily and weekly digests, price alerts, the
/// feed poll, the quote poll (each exchange while it trades), and a report of the
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
    let alerts = Arc::new(alerts);
    scheduler
        .add(Job::new_async(EVERY_MINUTE, move |_, _| {
            let (store, alerts) = (alert_store.clone(), alerts.clone());
            Box::pin(async move {
                let now = crate::store::now();
                if !alerts.is_due(now) {
                    return;
                }
                if let Err(error) = check_alerts(&store, now, alerts.max_quote_age, false).await {
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
        .add(Job::new_async(EVERY_MINUTE, move |_, _| {
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
                    if let Err(error) = ingest.poll_quotes(Some(Utc::now())).await {
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
        let Some(schedule) = schedule else { continue };
        let Some(check) = latest_slot(schedule, &digests.time_zone, frequency, now, digests.max_lateness) else {
            continue;
        };
        let (SlotCheck::Due(slot) | SlotCheck::TooLate(slot, _)) = &check;
        if !handled.lock().expect("not poisoned").insert(slot.clone()) {
            continue;
        }
        match handle_slot(store, frequency, &check, now, digests.rules).await {
            Ok(SlotHandled::Done) => {}
            Ok(SlotHandled::NotYet) => {
                handled.lock().expect("not poisoned").remove(slot);
            }
            Err(error) => {
                tracing::error!(%slot, %error, "digest check failed; trying again in a minute");
                handled.lock().expect("not poisoned").remove(slot);
            }
        }
    }
}

/// Whether a slot is dealt with, or to be checked again next minute.
enum SlotHandled {
    Done,
    NotYet,
}

async fn handle_slot(
    store: &Store,
    frequency: DigestFrequency,
    check: &SlotCheck,
    now: chrono::DateTime<Utc>,
    rules: DigestRules,
) -> Result<SlotHandled, StoreError> {
    match check {
        SlotCheck::Due(slot) => {
            match store.create_digest_edition(&digest_run(frequency, slot.clone(), now, rules)).await? {
                EditionOutcome::Created(created) => {
                    tracing::info!(%slot, recipients = created.recipients, stories = created.stories, "digest edition created")
                }
                EditionOutcome::SlotTaken => tracing::info!(%slot, "digest slot already has its edition"),
                EditionOutcome::NobodyDue => tracing::info!(%slot, "digest slot reaches nobody"),
                EditionOutcome::UnderWay { edition_id } => {
                    tracing::info!(%slot, %edition_id, "digest slot waits: the edition before it is still going out");
                    return Ok(SlotHandled::NotYet);
                }
            }
        }
        SlotCheck::TooLate(slot, at) => {
            // A slot from before this database existed was never missed.
            let missed = store.created_at().await?.is_some_and(|created| created < *at);
            if missed && !store.edition_exists(slot).await? {
                tracing::warn!(%slot, "digest slot skipped: it is past DIGEST_MAX_LATENESS_MINUTES");
            }
        }
    }
    Ok(SlotHandled::Done)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> chrono::DateTime<Utc> {
        chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_alert_check_runs_on_the_minutes_of_its_schedule_in_the_sites_zone() {
        let every_five = AlertSchedule {
            schedule: Some("*/5 * * * *".parse().unwrap()),
            time_zone: chrono_tz::America::New_York,
            max_quote_age: Duration::from_secs(1800),
        };
        assert!(every_five.is_due(at("2026-11-24T15:05:00.004Z")), "a job that fires a few ms late");
        assert!(!every_five.is_due(at("2026-11-24T15:06:00Z")));
        let market_hours = AlertSchedule { schedule: Some("*/5 9-16 * * 1-5".parse().unwrap()), ..every_five };
        assert!(market_hours.is_due(at("2026-11-24T14:00:00Z")), "09:00 EST");
        assert!(!market_hours.is_due(at("2026-11-24T13:55:00Z")), "08:55 EST");
        assert!(market_hours.is_due(at("2026-06-09T13:00:00Z")), "09:00 EDT");
    }
}
