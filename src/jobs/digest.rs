//! The digest: which readers get one, and what each reader's shows. An
//! edition snapshots the stories and quotes when it is created; each reader's
//! delivery says which of those stories are new to them and what their
//! watchlist was, so every retry renders the same message.

use crate::config::Settings;
use crate::domain::DigestFrequency;
use crate::store::DigestRun;
use chrono::{DateTime, TimeZone, Utc};

/// Stories in one edition's snapshot, the latest stored first.
const MAX_STORIES_PER_EDITION: u32 = 500;

/// How a digest run picks its stories.
#[derive(Debug, Clone, Copy)]
pub struct DigestRules {
    /// Send readers with no new story their watchlist's moves anyway.
    pub send_empty: bool,
    /// Stories stored this recently wait for the next edition, so one whose
    /// save is under way while the edition is made is not skipped.
    pub story_settle: std::time::Duration,
}

impl DigestRules {
    pub fn from_settings(settings: &Settings) -> Self {
        Self { send_empty: settings.digest_send_empty, story_settle: settings.digest_story_settle }
    }
}

/// A digest run for `frequency` at `now`. Stories older than the frequency's
/// lookback (3 days for daily, so a Monday digest covers the weekend; 8 for
/// weekly) are never sent, however long a reader has waited.
pub fn digest_run(frequency: DigestFrequency, slot: String, now: DateTime<Utc>, rules: DigestRules) -> DigestRun {
    let lookback_days = if frequency == DigestFrequency::Weekly { 8 } else { 3 };
    DigestRun {
        frequency,
        slot,
        now,
        stories_until: now - chrono::Duration::from_std(rules.story_settle).unwrap_or_default(),
        oldest_story: now - chrono::Duration::days(lookback_days),
        max_stories: MAX_STORIES_PER_EDITION,
        send_empty: rules.send_empty,
        keep_empty: true,
    }
}

/// A run made on demand (CLI, admin pages and API), by the schedule's
/// rules, under a slot never taken before.
pub fn manual_run(frequency: DigestFrequency, now: DateTime<Utc>, rules: DigestRules) -> DigestRun {
    let slot = format!("{}:manual:{}", frequency.as_str(), uuid::Uuid::new_v4().simple());
    DigestRun { keep_empty: false, ..digest_run(frequency, slot, now, rules) }
}

/// The digest an admin asks to run: `daily` or `weekly` (never `never`).
pub fn on_demand_frequency(text: &str) -> Option<DigestFrequency> {
    match text.parse() {
        Ok(frequency @ (DigestFrequency::Daily | DigestFrequency::Weekly)) => Some(frequency),
        _ => None,
    }
}

/// Where a schedule stands at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotCheck {
    /// The latest slot, still within the allowed lateness: its key.
    Due(String),
    /// The latest slot is older than the allowed lateness: skip it. Its key and time.
    TooLate(String, DateTime<Utc>),
}

/// The latest slot of `schedule` (in `zone`, across DST changes) at or
/// before `now`, keyed by frequency and UTC minute so every instance agrees.
pub fn latest_slot<Tz: TimeZone>(
    schedule: &croner::Cron,
    zone: &Tz,
    frequency: DigestFrequency,
    now: DateTime<Utc>,
    max_lateness: std::time::Duration,
) -> Option<SlotCheck> {
    let slot = schedule.find_previous_occurrence(&now.with_timezone(zone), true).ok()?.with_timezone(&Utc);
    let key = format!("{}:{}", frequency.as_str(), slot.format("%Y-%m-%dT%H:%MZ"));
    let late = (now - slot).to_std().unwrap_or_default();
    Some(if late <= max_lateness { SlotCheck::Due(key) } else { SlotCheck::TooLate(key, slot) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_is_found_in_the_sites_time_zone_across_dst() {
        let weekdays_1730: croner::Cron = "30 17 * * 1-5".parse().unwrap();
        let new_york = chrono_tz::America::New_York;
        let lateness = std::time::Duration::from_secs(7200);
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // Friday 30 October 2026 is EDT (UTC-4); Monday 2 November is EST (UTC-5).
        let check =
            latest_slot(&weekdays_1730, &new_york, DigestFrequency::Daily, utc("2026-10-30T21:31:00Z"), lateness);
        assert_eq!(check, Some(SlotCheck::Due("daily:2026-10-30T21:30Z".into())));
        let check =
            latest_slot(&weekdays_1730, &new_york, DigestFrequency::Daily, utc("2026-11-02T22:30:00Z"), lateness);
        assert_eq!(check, Some(SlotCheck::Due("daily:2026-11-02T22:30Z".into())));
        let check =
            latest_slot(&weekdays_1730, &new_york, DigestFrequency::Daily, utc("2026-10-31T12:00:00Z"), lateness);
        assert_eq!(
            check,
            Some(SlotCheck::TooLate("daily:2026-10-30T21:30Z".into(), utc("2026-10-30T21:30:00Z"))),
            "Saturday: Friday's slot is past"
        );
    }
}
