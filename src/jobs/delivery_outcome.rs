//! What became of a claimed delivery, and recording it: the sent ones of a
//! claim in one statement, the others one by one, a failed recording tried
//! again while the claim may still be ours.

use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::mailer::Rejection;
use crate::store::{ClaimedDelivery, FinalStatus, Store, StoreError};

/// A failed recording is tried again after this, doubling up to `MAX_RECORD_RETRY_DELAY`.
const RECORD_RETRY_DELAY: Duration = Duration::from_millis(50);
const MAX_RECORD_RETRY_DELAY: Duration = Duration::from_secs(2);

/// What became of one claimed delivery, to be recorded.
#[derive(Debug)]
pub(super) enum Disposition {
    Sent,
    Retry {
        error: String,
        retry_at: chrono::DateTime<Utc>,
        /// The server refused our login or sender: it counts as a refusal.
        refused: bool,
    },
    /// Not tried, and back in the queue without using an attempt: its
    /// edition is paused or cancelled, or the worker is stopping.
    PutBack,
    Final {
        status: FinalStatus,
        error: String,
        rejection: Option<Rejection>,
    },
    /// Its claim was lost before it was sent: it is another worker's now.
    Lost,
}

/// How many deliveries of a run came to each disposition, for its log line.
#[derive(Default)]
pub(super) struct Tally {
    sent: usize,
    retry: usize,
    put_back: usize,
    failed: usize,
    suppressed: usize,
    lost: usize,
}

impl Tally {
    fn total(&self) -> usize {
        self.sent + self.retry + self.put_back + self.failed + self.suppressed + self.lost
    }

    pub(super) fn count(&mut self, disposition: &Disposition) {
        match disposition {
            Disposition::Sent => self.sent += 1,
            Disposition::Retry { .. } => self.retry += 1,
            Disposition::PutBack => self.put_back += 1,
            Disposition::Final { status: FinalStatus::Failed, .. } => self.failed += 1,
            Disposition::Final { status: FinalStatus::Suppressed, .. } => self.suppressed += 1,
            Disposition::Lost => self.lost += 1,
        }
    }

    /// Logs the counts, if anything was done.
    pub(super) fn report(&self) {
        if self.total() > 0 {
            tracing::info!(
                sent = self.sent,
                retry = self.retry,
                put_back = self.put_back,
                failed = self.failed,
                suppressed = self.suppressed,
                lost = self.lost,
                "deliveries done"
            );
        }
    }
}

/// Records what became of each delivery of a chunk: the sent ones of a
/// claim in one statement, the others one by one. A recording that fails
/// is tried again until it takes; only a worker told to stop gives up, once
/// their lease has run out. `message_domain` is the sent messages'
/// Message-ID domain.
pub(super) async fn record(
    store: &Store,
    message_domain: &str,
    outcomes: &[(ClaimedDelivery, Disposition)],
    stop: &CancellationToken,
) {
    // Sent deliveries by claim: a chunk may straddle two batches.
    let mut sent: Vec<(Uuid, Instant, Vec<Uuid>)> = Vec::new();
    for (delivery, disposition) in outcomes {
        let until = delivery.lease_until;
        let recorded = match disposition {
            Disposition::Sent => {
                match sent.iter_mut().find(|(claim_id, ..)| *claim_id == delivery.claim_id) {
                    Some((_, earliest, ids)) => {
                        *earliest = (*earliest).min(until);
                        ids.push(delivery.id);
                    }
                    None => sent.push((delivery.claim_id, until, vec![delivery.id])),
                }
                continue;
            }
            Disposition::Lost => continue,
            Disposition::Retry { error, retry_at, .. } => {
                retrying(stop, until, || store.mark_delivery_retry(delivery, error, *retry_at)).await
            }
            Disposition::PutBack => retrying(stop, until, || store.defer_delivery(delivery)).await,
            Disposition::Final { status, error, rejection } => {
                let bounce = *rejection == Some(Rejection::MailboxUnknown);
                retrying(stop, until, || store.mark_delivery_final(delivery, *status, error, bounce)).await
            }
        };
        report_recorded(recorded.map(u64::from), 1);
    }
    for (claim_id, until, ids) in sent {
        let marked = retrying(stop, until, || store.mark_deliveries_sent(claim_id, &ids, message_domain)).await;
        report_recorded(marked, ids.len());
    }
}

/// Runs a recording statement until it succeeds. The outcome only needs the
/// claim, not the lease, so it is tried past the lease too: only once `stop`
/// is cancelled and the lease has run out does it give up (another worker
/// may then send the message again).
async fn retrying<T, F, Fut>(stop: &CancellationToken, lease_until: Instant, mut record: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut delay = RECORD_RETRY_DELAY;
    loop {
        match record().await {
            Ok(done) => return Ok(done),
            Err(error) if !stop.is_cancelled() || Instant::now() + delay < lease_until => {
                tracing::warn!(%error, retry_in_ms = delay.as_millis(), "could not record a delivery's outcome; trying again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RECORD_RETRY_DELAY);
            }
            Err(error) => return Err(error),
        }
    }
}

/// Logs a recording that did not take: the rows' lease ran out and another
/// worker took them over, or the database kept failing until a stop.
fn report_recorded(recorded: Result<u64, StoreError>, expected: usize) {
    match recorded {
        Ok(count) if count < expected as u64 => tracing::warn!(
            lost = expected as u64 - count,
            "deliveries were taken over by another worker before their outcome was recorded"
        ),
        Ok(_) => {}
        Err(error) => {
            tracing::error!(%error, "could not record deliveries' outcome; they will be retried after their lease")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_recording_is_tried_again_until_it_takes_or_a_stopping_worker_s_lease_ran_out() {
        let failures = std::cell::Cell::new(0);
        let flaky = || {
            failures.set(failures.get() + 1);
            let count = failures.get();
            async move { if count <= 3 { Err(StoreError::Unavailable("down".into())) } else { Ok(count) } }
        };
        let running = CancellationToken::new();
        let lease_until = Instant::now();
        assert_eq!(
            retrying(&running, lease_until, flaky).await.unwrap(),
            4,
            "three failures past the lease, then it took"
        );

        let stopped = CancellationToken::new();
        stopped.cancel();
        let started = Instant::now();
        let lease_until = started + Duration::from_millis(300);
        let down = || async { Err::<(), _>(StoreError::Unavailable("down".into())) };
        assert!(retrying(&stopped, lease_until, down).await.is_err());
        assert!(started.elapsed() < Duration::from_millis(400), "a stopping worker gives up once the lease ran out");
        assert!(started.elapsed() >= Duration::from_millis(150), "after trying again a few times");
    }
}
