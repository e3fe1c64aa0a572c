//! The delivery worker: the only code that sends email. It claims due rows
//! from the outbox in batches, renders each, sends it, and records what
//! became of it; a crash at any point leaves the row to be claimed again when
//! its lease runs out.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::delivery_lease::{DeliveryLease, HeldLeases, ShutBecause};
use super::delivery_outcome::{Disposition, Tally, record};
use super::edition_cache::EditionCache;
use super::list_protection::ListProtector;
use super::render::{Reader, RenderError, Renderer};
use super::retry::RetryPolicy;
use super::send_rate::SendRate;
use super::suppression::suppression;
use crate::config::{ListProtection, Settings};
use crate::domain::Message;
use crate::mailer::{Email, EmailLinks, Mailer, MessageOrigin, SendError};
use crate::store::{ClaimedDelivery, ClaimedReader, FinalStatus, Store, StoreError};
use crate::tokens::TokenKey;

/// Messages rendered per SMTP session at a time: the next ones are rendered
/// while the current ones are on the wire, so sessions never wait for the CPU.
const RENDER_AHEAD: usize = 6;

/// Deliveries under way (rendered, on the wire, or waiting to be recorded)
/// at least, however few the sessions: outcomes wait a little to be recorded.
const MIN_UNDER_WAY: usize = 64;

/// Outcomes recorded in one statement, at most.
const RECORD_CHUNK: usize = 64;

/// How long outcomes are gathered before they are recorded: long enough for
/// several sends to finish, short against the time a message takes.
const RECORD_LINGER: Duration = Duration::from_millis(2);

/// A finished delivery on its way to be recorded, with the slot it holds until then.
type Finished = (ClaimedDelivery, Disposition, OwnedSemaphorePermit);

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub batch_size: u32,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub lease: Duration,
    pub poll_interval: Duration,
    pub confirmation_ttl: Duration,
    /// Messages per second over all recipients; 0 for no limit.
    pub rate: u32,
    /// Messages per second to one recipient domain; 0 for no limit.
    pub rate_per_domain: u32,
    pub list_protection: ListProtection,
}

impl WorkerSettings {
    /// How many deliveries to claim at once: the batch size, but no more than
    /// the rate limits let go out in half a lease, so that few need their
    /// lease extended before they are sent.
    fn claim_limit(&self) -> u32 {
        let slowest = [self.rate, self.rate_per_domain].into_iter().filter(|rate| *rate > 0).min();
        match slowest {
            Some(rate) => {
                let in_half_a_lease = u64::from(rate) * self.lease.as_secs() / 2;
                self.batch_size.min(u32::try_from(in_half_a_lease).unwrap_or(u32::MAX)).max(1)
            }
            None => self.batch_size,
        }
    }

    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            batch_size: settings.send_batch_size,
            concurrency: settings.send_concurrency,
            max_attempts: settings.send_max_attempts,
            retry_base: settings.send_retry_base,
            lease: settings.send_lease,
            poll_interval: settings.worker_poll_interval,
            confirmation_ttl: settings.confirmation_ttl,
            rate: settings.send_rate,
            rate_per_domain: settings.send_rate_per_domain,
            list_protection: settings.list_protection,
        }
    }
}

#[derive(Clone)]
pub struct DeliveryWorker {
    store: Store,
    mailer: Mailer,
    links: EmailLinks,
    tokens: TokenKey,
    settings: WorkerSettings,
    wakeup: Arc<Notify>,
    editions: Arc<EditionCache>,
    list_protector: Arc<ListProtector>,
    send_rate: Arc<SendRate>,
    retry: RetryPolicy,
}

impl DeliveryWorker {
    pub fn new(
        store: Store,
        mailer: Mailer,
        links: EmailLinks,
        tokens: TokenKey,
        settings: WorkerSettings,
        wakeup: Arc<Notify>,
    ) -> Self {
        let editions = Arc::new(EditionCache::new(store.clone(), links.clone()));
        let list_protector = Arc::new(ListProtector::new(settings.list_protection, store.clone(), editions.clone()));
        let send_rate = Arc::new(SendRate::new(settings.rate, settings.rate_per_domain));
        let retry = RetryPolicy { max_attempts: settings.max_attempts, base: settings.retry_base };
        Self { store, mailer, links, tokens, settings, wakeup, editions, list_protector, send_rate, retry }
    }

    /// Drains the outbox until `shutdown` is cancelled. Then what is on the
    /// wire is finished and recorded; what is not goes back to the queue.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::debug!(transport = %self.mailer.describe(), "delivery worker started");
        while !shutdown.is_cancelled() {
            let idle = match self.run_until_idle(&shutdown).await {
                Ok(0) => true,
                Ok(_) => false,
                Err(error) => {
                    tracing::error!(%error, "delivery worker could not claim deliveries");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = self.wakeup.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll_interval) => {}
                }
            }
        }
        tracing::debug!("delivery worker stopped");
    }

    /// Claims and sends batch after batch until none is due or `stop` is
    /// cancelled, then waits for the sends in progress. Returns how many
    /// deliveries were claimed.
    pub async fn run_until_idle(&self, stop: &CancellationToken) -> Result<usize, StoreError> {
        // Each message is rendered and sent in a task of its own, on whichever
        // runtime thread is free (rendering costs more CPU than sending), a
        // few per SMTP session so that sessions never wait for a message to
        // be rendered. The tasks are started by a task of their own, which
        // claims the next batch while the last messages of the one before are
        // still on the wire, so sessions never wait for a claim either, and
        // recording outcomes below never holds up a send. Outcomes are
        // recorded in chunks of whatever has finished; each delivery holds a
        // slot until its outcome is recorded, so a crash re-sends at most as
        // many messages as there are slots.
        let (outcomes, finished) = tokio::sync::mpsc::unbounded_channel();
        let held = HeldLeases::default();
        let heartbeat = tokio::spawn(held.clone().keep(self.store.clone(), self.settings.lease));
        let dispatching = tokio::spawn(self.clone().claim_and_dispatch(stop.clone(), outcomes, held.clone()));
        let tally = self.record_as_they_finish(finished, &held, stop).await;
        heartbeat.abort();
        let claimed = match dispatching.await {
            Ok(claimed) => claimed,
            Err(error) => return Err(StoreError::Unavailable(format!("the dispatching task failed: {error}"))),
        };
        self.send_rate.forget_idle_domains();
        tally.report();
        claimed
    }

    /// Claims batches until none is due or `stop` is cancelled, and starts a
    /// task per delivery. Only as many are claimed as there are free slots, so
    /// a claimed delivery never waits for one.
    async fn claim_and_dispatch(
        self,
        stop: CancellationToken,
        outcomes: UnboundedSender<Finished>,
        held: HeldLeases,
    ) -> Result<usize, StoreError> {
        let limit = self.settings.claim_limit() as usize;
        let slots = Arc::new(Semaphore::new((self.settings.concurrency * RENDER_AHEAD).max(MIN_UNDER_WAY).min(limit)));
        let mut claimed = 0;
        loop {
            let first = tokio::select! {
                slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                _ = stop.cancelled() => break,
            };
            let room = (slots.available_permits() + 1).min(limit);
            let batch =
                self.store.claim_due_deliveries(room as u32, self.settings.lease, self.settings.max_attempts).await?;
            if batch.is_empty() {
                break;
            }
            claimed += batch.len();
            held.hold(&batch);
            let mut first = Some(first);
            for delivery in batch {
                let slot = match first.take() {
                    Some(slot) => slot,
                    None => slots.clone().acquire_owned().await.expect("the semaphore is never closed"),
                };
                let (worker, outcomes, stop) = (self.clone(), outcomes.clone(), stop.clone());
                tokio::spawn(async move {
                    let (delivery, disposition) = worker.process_guarded(delivery, &stop).await;
                    let _ = outcomes.send((delivery, disposition, slot));
                });
            }
        }
        Ok(claimed)
    }

    /// `process`, with a panic failing that message alone: it is recorded
    /// as failed, and its batch goes on.
    async fn process_guarded(
        &self,
        delivery: ClaimedDelivery,
        stop: &CancellationToken,
    ) -> (ClaimedDelivery, Disposition) {
        let copy = delivery.clone();
        match AssertUnwindSafe(self.process(delivery, stop)).catch_unwind().await {
            Ok(done) => done,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(id = %copy.id, panic = %what, "a delivery crashed the worker's task");
                let error = format!("internal error while preparing this message: {what}");
                (copy, Disposition::Final { status: FinalStatus::Failed, error, rejection: None })
            }
        }
    }

    /// Renders and sends one delivery and says what became of it.
    #[tracing::instrument(name = "delivery", skip_all, fields(id = %delivery.id, kind = %delivery.kind_name, attempt = delivery.attempts))]
    async fn process(&self, mut delivery: ClaimedDelivery, stop: &CancellationToken) -> (ClaimedDelivery, Disposition) {
        let disposition = match self.render(&delivery).await {
            Ok(email) => self.send(&mut delivery, email, stop).await,
            Err(disposition) => disposition,
        };
        (delivery, disposition)
    }

    /// The delivery's email, if it should still go to its reader as they are
    /// now, or what it comes to instead.
    async fn render(&self, delivery: &ClaimedDelivery) -> Result<Email, Disposition> {
        let edition = match (&delivery.message, delivery.edition_id) {
            (Ok(Message::Digest(_)), Some(id)) => self.editions.parts(id).await.map_err(|error| {
                let error = SendError::Transient(format!("cannot read the edition: {error}"));
                self.retry.after_send_error(delivery.attempts, error)
            })?,
            _ => None,
        };
        // The reader before the message: an erasure empties their messages'
        // payloads, which would otherwise fail as unreadable instead of being suppressed.
        let subscriber = match &delivery.reader {
            ClaimedReader::Found(subscriber) => subscriber,
            ClaimedReader::Erased => return Err(suppressed("the subscriber was erased".into())),
            ClaimedReader::Unreadable(reason) => return Err(unrenderable(reason.clone())),
        };
        let message = delivery.message.as_ref().map_err(|reason| unrenderable(reason.clone()))?;
        if let Some(reason) = suppression(message, subscriber, self.settings.confirmation_ttl) {
            return Err(suppressed(reason));
        }
        let renderer =
            Renderer { links: &self.links, tokens: &self.tokens, confirmation_ttl: self.settings.confirmation_ttl };
        let reader = Reader {
            id: subscriber.id,
            name: &subscriber.name,
            token_nonce: &subscriber.token_nonce,
            watchlist: &subscriber.watchlist,
        };
        let message_id = self.links.message_id(delivery.id);
        renderer.email(message, reader, edition.as_deref(), &subscriber.email, message_id).map_err(
            |error| match error {
                RenderError::NothingToSay(reason) => suppressed(reason),
                error => unrenderable(error.to_string()),
            },
        )
    }

    /// Sends a rendered delivery once the rate limits and its lease let it,
    /// and says what became of it.
    async fn send(&self, delivery: &mut ClaimedDelivery, email: Email, stop: &CancellationToken) -> Disposition {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Disposition::PutBack,
            _ = self.send_rate.wait_for(&delivery.recipient) => {}
        }
        let lease = Arc::new(DeliveryLease::new(
            self.store.clone(),
            &self.editions,
            delivery,
            self.settings.lease,
            self.settings.confirmation_ttl,
        ));
        let origin = MessageOrigin::Delivery { id: delivery.id, kind: &delivery.kind_name };
        let send = self.mailer.send(email, origin, lease.clone());
        tokio::pin!(send);
        let sent = tokio::select! {
            biased;
            _ = stop.cancelled() => {
                if lease.give_back() {
                    return Disposition::PutBack;
                }
                // On the wire: it is finished, and recorded.
                send.await
            }
            sent = &mut send => sent,
        };
        delivery.lease_until = lease.until();
        match sent {
            Ok(()) => Disposition::Sent,
            Err(SendError::NotStarted) => match lease.shut_because() {
                ShutBecause::GivenBack => Disposition::PutBack,
                // It waits for the resume, or is suppressed if cancelled.
                ShutBecause::EditionHeld => {
                    if let Some(id) = delivery.edition_id {
                        self.editions.forget_state(id);
                    }
                    Disposition::PutBack
                }
                ShutBecause::Suppressed(reason) => suppressed(reason),
                ShutBecause::Lost => {
                    tracing::warn!(
                        "a delivery's claim was lost before it was sent (taken over, or taken back by a pause or cancel)"
                    );
                    Disposition::Lost
                }
                ShutBecause::NotCovered => self.retry.after_send_error(
                    delivery.attempts,
                    SendError::Transient("its lease could not be extended before the send".into()),
                ),
            },
            Err(error) => self.retry.after_send_error(delivery.attempts, error),
        }
    }

    /// Records outcomes as the sends finish, in chunks of whatever has
    /// finished, then lets the list protection see them; each delivery keeps
    /// its slot until its outcome is recorded.
    async fn record_as_they_finish(
        &self,
        mut finished: UnboundedReceiver<Finished>,
        held: &HeldLeases,
        stop: &CancellationToken,
    ) -> Tally {
        let mut tally = Tally::default();
        let mut chunk = Vec::with_capacity(RECORD_CHUNK);
        while finished.recv_many(&mut chunk, RECORD_CHUNK).await > 0 {
            // Let a few more finish, so that one statement records them together.
            let linger = tokio::time::sleep(RECORD_LINGER);
            tokio::pin!(linger);
            while chunk.len() < RECORD_CHUNK {
                let room = RECORD_CHUNK - chunk.len();
                tokio::select! {
                    received = finished.recv_many(&mut chunk, room) => if received == 0 { break },
                    _ = &mut linger => break,
                }
            }
            let (outcomes, slots): (Vec<(ClaimedDelivery, Disposition)>, Vec<OwnedSemaphorePermit>) =
                chunk.drain(..).map(|(delivery, disposition, slot)| ((delivery, disposition), slot)).unzip();
            for (_, disposition) in &outcomes {
                tally.count(disposition);
            }
            record(&self.store, self.links.message_domain(), &outcomes, stop).await;
            held.release(outcomes.iter().map(|(delivery, _)| delivery));
            self.list_protector.protect(&outcomes).await;
            drop(slots);
        }
        tally
    }
}

/// A delivery its reader no longer gets, for `reason`.
fn suppressed(reason: String) -> Disposition {
    tracing::info!(%reason, "delivery suppressed");
    Disposition::Final { status: FinalStatus::Suppressed, error: reason, rejection: None }
}

/// A delivery that cannot become an email, for `reason`.
fn unrenderable(reason: String) -> Disposition {
    tracing::error!(%reason, "delivery cannot be rendered");
    Disposition::Final { status: FinalStatus::Failed, error: reason, rejection: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limited_worker_claims_no_more_than_half_a_lease_can_send() {
        let settings = |rate, rate_per_domain| WorkerSettings {
            batch_size: 200,
            concurrency: 4,
            max_attempts: 8,
            retry_base: Duration::from_secs(30),
            lease: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            confirmation_ttl: Duration::from_secs(3600),
            rate,
            rate_per_domain,
            list_protection: ListProtection { failure_percent: 5.0, min_attempts: 200, refusals_in_a_row: 10 },
        };
        assert_eq!(settings(0, 0).claim_limit(), 200);
        assert_eq!(settings(1, 0).claim_limit(), 150);
        assert_eq!(settings(10, 0).claim_limit(), 200);
        assert_eq!(settings(10, 1).claim_limit(), 150);
    }
}
