//! List protection: an edition whose permanent failures pass
//! `EDITION_PAUSE_*` pauses itself, so a list full of dead addresses, or a
//! relay that refuses everything, costs a few messages instead of the whole
//! edition and the sender's name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use super::delivery_outcome::Disposition;
use super::edition_cache::EditionCache;
use crate::config::ListProtection;
use crate::mailer::Rejection;
use crate::store::{ClaimedDelivery, EditionControl, FinalStatus, Store};

/// What became of an edition's deliveries, as the list protection counts them.
#[derive(Debug, Default, Clone, Copy)]
struct EditionOutcomes {
    sent: u64,
    failed: u64,
    /// Policy, relay and login refusals since the last send that went through.
    refusals_in_a_row: u32,
}

/// Counts each edition's outcomes since it started or was last paused, and
/// pauses the ones that fail too often.
pub(super) struct ListProtector {
    rules: ListProtection,
    store: Store,
    editions: Arc<EditionCache>,
    outcomes: Mutex<HashMap<Uuid, EditionOutcomes>>,
}

impl ListProtector {
    pub(super) fn new(rules: ListProtection, store: Store, editions: Arc<EditionCache>) -> Self {
        Self { rules, store, editions, outcomes: Mutex::default() }
    }

    /// Counts `outcomes` and pauses an edition past the rules: a share of
    /// what it sent since it started or was resumed failed for good, or
    /// policy, relay or login refusals came one after another.
    pub(super) async fn protect(&self, outcomes: &[(ClaimedDelivery, Disposition)]) {
        for (edition, reason) in self.editions_to_pause(outcomes) {
            self.pause_edition(edition, &reason).await;
        }
    }

    fn editions_to_pause(&self, outcomes: &[(ClaimedDelivery, Disposition)]) -> Vec<(Uuid, String)> {
        let rules = self.rules;
        let mut to_pause: Vec<(Uuid, String)> = Vec::new();
        let mut by_edition = self.outcomes.lock().expect("not poisoned");
        for (delivery, disposition) in outcomes {
            let Some(edition) = delivery.edition_id else { continue };
            let counts = by_edition.entry(edition).or_default();
            let refusal = match disposition {
                Disposition::Sent => {
                    counts.sent += 1;
                    counts.refusals_in_a_row = 0;
                    None
                }
                Disposition::Final { status: FinalStatus::Failed, error, rejection } => {
                    counts.failed += 1;
                    (*rejection == Some(Rejection::Policy)).then_some(error)
                }
                Disposition::Retry { error, refused: true, .. } => Some(error),
                _ => None,
            };
            if let Some(error) = refusal {
                counts.refusals_in_a_row += 1;
                if rules.refusals_in_a_row > 0 && counts.refusals_in_a_row >= rules.refusals_in_a_row {
                    let reason = format!(
                        "paused itself after {} policy, relay or authentication refusals in a row (the last: \
                         {error}); check the SMTP relay's settings and the sender's reputation, then resume",
                        counts.refusals_in_a_row
                    );
                    to_pause.push((edition, reason));
                    continue;
                }
            }
            let attempted = counts.sent + counts.failed;
            if attempted >= u64::from(rules.min_attempts)
                && counts.failed as f64 * 100.0 >= rules.failure_percent * attempted as f64
            {
                let reason = format!(
                    "paused itself: {} of its {attempted} deliveries since it started or was resumed failed \
                     for good, over the {}% of EDITION_PAUSE_FAILURE_PERCENT; look at the failures below, then \
                     resume or cancel",
                    counts.failed, rules.failure_percent
                );
                to_pause.push((edition, reason));
            }
        }
        // Counting starts again from the pause: a resume gets a fresh chance.
        for (edition, _) in &to_pause {
            by_edition.remove(edition);
        }
        to_pause
    }

    async fn pause_edition(&self, edition: Uuid, reason: &str) {
        match self.store.pause_edition(edition, reason).await {
            Ok(EditionControl::Done(_)) => {
                tracing::warn!(%edition, reason, "edition paused to protect the list");
                self.editions.forget_state(edition);
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, %edition, "cannot pause an edition that fails too often"),
        }
    }
}
