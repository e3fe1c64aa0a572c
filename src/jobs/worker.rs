//! The delivery worker: the only code that sends email. It claims due rows
//! from the outbox in batches, renders each, sends it, and marks it; a crash
//! at any point leaves the row to be claimed again when its lease runs out.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use tokio::sync::{Notify, OnceCell, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::domain::{DigestFrequency, SubscriberStatus};
use crate::jobs::alerts::AlertPayload;
use crate::jobs::digest::{ReaderDue, compose};
use crate::mailer::{
    DigestEdition, EmailLinks, Mailer, SendError, alert_email, confirmation_email, digest_email,
    preferences_link_email, welcome_email,
};
use crate::store::{ClaimedDelivery, DeliveryKind, EditionContent, FinalStatus, Store, StoreError};
use crate::tokens::TokenKey;

/// Editions kept in memory while their deliveries are sent (one is sent at a
/// time in practice; a few cover a retry of an older one).
const CACHED_EDITIONS: usize = 8;
/// A pause or cancel reaches sends already claimed within this long.
const EDITION_STATE_MAX_AGE: Duration = Duration::from_secs(1);

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

/// The longest wait between two attempts, however many have failed.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(6 * 3600);

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
}

impl WorkerSettings {
    /// How many deliveries to claim at once: the batch size, but no more than
    /// the rate limits let go out in half a lease, so a slow batch is never
    /// taken over (and sent again) by another worker while it waits.
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
    /// Each edition's snapshot, read once however many sends wait for it.
    editions: Arc<Mutex<HashMap<uuid::Uuid, Arc<EditionCell>>>>,
    /// Whether each edition may send (not paused or cancelled), and when that was read.
    edition_states: Arc<Mutex<HashMap<uuid::Uuid, (Instant, bool)>>>,
    rate: Option<Arc<DefaultDirectRateLimiter>>,
    rate_per_domain: Option<Arc<DefaultKeyedRateLimiter<String>>>,
}

/// An edition's snapshot once read (`None`: there is no such edition).
type EditionCell = OnceCell<Option<Arc<Edition>>>;

/// An edition as its deliveries are rendered from: the snapshot, and what
/// every reader's digest shows alike, rendered once.
struct Edition {
    content: EditionContent,
    digest: DigestEdition,
}

/// What became of one claimed delivery, to be recorded.
#[derive(Debug)]
enum Disposition {
    Sent,
    Retry {
        error: String,
        retry_at: chrono::DateTime<Utc>,
    },
    /// Not tried: the edition is paused or cancelled.
    Deferred,
    Final {
        status: FinalStatus,
        error: String,
        bounce: bool,
    },
}

/// What rendering decided: a message to send, or a reason not to.
enum Rendered {
    Email(crate::mailer::Email),
    Suppress(String),
    Fail(String),
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
        let rate = NonZeroU32::new(settings.rate).map(|n| Arc::new(RateLimiter::direct(Quota::per_second(n))));
        let rate_per_domain =
            NonZeroU32::new(settings.rate_per_domain).map(|n| Arc::new(RateLimiter::keyed(Quota::per_second(n))));
        Self {
            store,
            mailer,
            links,
            tokens,
            settings,
            wakeup,
            editions: Arc::default(),
            edition_states: Arc::default(),
            rate,
            rate_per_domain,
        }
    }

    /// Drains the outbox until `shutdown` is cancelled; sends in progress are
    /// finished first, so none is cut off half-way.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(transport = %self.mailer.describe(), "delivery worker started");
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
        tracing::info!("delivery worker stopped");
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
        // many messages as there are slots, never more than a batch. A task
        // that died leaves its delivery to its lease.
        let (outcomes, mut finished) = tokio::sync::mpsc::unbounded_channel();
        let dispatching = tokio::spawn(self.clone().claim_and_dispatch(stop.clone(), outcomes));
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
            // Sent deliveries by claim: a chunk may straddle two batches.
            let mut sent: Vec<(uuid::Uuid, Vec<uuid::Uuid>)> = Vec::new();
            let mut slots = Vec::with_capacity(chunk.len());
            for (delivery, disposition, slot) in chunk.drain(..) {
                slots.push(slot);
                tally.count(&disposition);
                let recorded = match disposition {
                    Disposition::Sent => {
                        match sent.iter_mut().find(|(claim_id, _)| *claim_id == delivery.claim_id) {
                            Some((_, ids)) => ids.push(delivery.id),
                            None => sent.push((delivery.claim_id, vec![delivery.id])),
                        }
                        continue;
                    }
                    Disposition::Retry { error, retry_at } => {
                        self.store.mark_delivery_retry(&delivery, &error, retry_at).await
                    }
                    Disposition::Deferred => self.store.defer_delivery(&delivery).await,
                    Disposition::Final { status, error, bounce } => {
                        self.store.mark_delivery_final(&delivery, status, &error, bounce).await
                    }
                };
                report_recorded(recorded.map(u64::from), 1);
            }
            for (claim_id, ids) in sent {
                let marked = self.store.mark_deliveries_sent(claim_id, &ids, self.links.message_domain()).await;
                report_recorded(marked, ids.len());
            }
            drop(slots);
        }
        let claimed = dispatching.await.expect("the dispatching task does not panic");
        if let Some(limiter) = &self.rate_per_domain {
            limiter.retain_recent();
        }
        if tally.total() > 0 {
            tracing::info!(
                sent = tally.sent,
                retry = tally.retry,
                deferred = tally.deferred,
                failed = tally.failed,
                suppressed = tally.suppressed,
                "deliveries done"
            );
        }
        claimed
    }

    /// Claims batches until none is due or `stop` is cancelled, and starts a
    /// task per delivery, at most `RENDER_AHEAD` per SMTP session at a time.
    async fn claim_and_dispatch(
        self,
        stop: CancellationToken,
        outcomes: tokio::sync::mpsc::UnboundedSender<(ClaimedDelivery, Disposition, OwnedSemaphorePermit)>,
    ) -> Result<usize, StoreError> {
        let limit = self.settings.claim_limit() as usize;
        let slots = Arc::new(Semaphore::new((self.settings.concurrency * RENDER_AHEAD).max(MIN_UNDER_WAY).min(limit)));
        let mut claimed = 0;
        while !stop.is_cancelled() {
            let batch = self.store.claim_due_deliveries(self.settings.claim_limit(), self.settings.lease).await?;
            if batch.is_empty() {
                break;
            }
            claimed += batch.len();
            for delivery in batch {
                let slot = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
                let (worker, outcomes) = (self.clone(), outcomes.clone());
                tokio::spawn(async move {
                    let (delivery, disposition) = worker.process(delivery).await;
                    let _ = outcomes.send((delivery, disposition, slot));
                });
            }
        }
        Ok(claimed)
    }

    /// Renders and sends one delivery and says what became of it.
    #[tracing::instrument(name = "delivery", skip_all, fields(id = %delivery.id, kind = %delivery.kind_name, attempt = delivery.attempts))]
    async fn process(&self, delivery: ClaimedDelivery) -> (ClaimedDelivery, Disposition) {
        let edition = match (delivery.kind, delivery.edition_id) {
            (Some(DeliveryKind::Digest), Some(id)) => match self.edition(id).await {
                Ok(edition) => edition,
                Err(error) => {
                    let disposition = self
                        .after_send_error(&delivery, SendError::Transient(format!("cannot read the edition: {error}")));
                    return (delivery, disposition);
                }
            },
            _ => None,
        };
        let disposition = match self.render(&delivery, edition.as_deref()) {
            Rendered::Suppress(reason) => {
                tracing::info!(%reason, "delivery suppressed");
                Disposition::Final { status: FinalStatus::Suppressed, error: reason, bounce: false }
            }
            Rendered::Fail(reason) => {
                tracing::error!(%reason, "delivery cannot be rendered");
                Disposition::Final { status: FinalStatus::Failed, error: reason, bounce: false }
            }
            Rendered::Email(message) => {
                let file_stem = format!(
                    "{}-{}-{}",
                    Utc::now().format("%Y%m%dT%H%M%S%.6f"),
                    delivery.kind_name,
                    delivery.id.simple()
                );
                self.wait_for_rate_limits(&delivery.recipient).await;
                if let Some(id) = delivery.edition_id
                    && !self.edition_may_send(id).await
                {
                    // Put back, it waits for the resume, or is suppressed if
                    // cancelled. The state is read afresh next time: after a
                    // resume, a put-back delivery is due at once, and a stale
                    // "paused" would keep sending it round.
                    self.edition_states.lock().expect("not poisoned").remove(&id);
                    return (delivery, Disposition::Deferred);
                }
                match self.mailer.send(message, &file_stem).await {
                    Ok(()) => Disposition::Sent,
                    Err(error) => self.after_send_error(&delivery, error),
                }
            }
        };
        (delivery, disposition)
    }

    fn after_send_error(&self, delivery: &ClaimedDelivery, error: SendError) -> Disposition {
        match error {
            SendError::Permanent { reply, bounce } => {
                tracing::warn!(%reply, bounce, "delivery rejected permanently");
                Disposition::Final { status: FinalStatus::Failed, error: reply, bounce }
            }
            SendError::Transient(reply) if delivery.attempts >= self.settings.max_attempts => {
                let reason = format!("gave up after {} attempts: {reply}", delivery.attempts);
                tracing::warn!(%reason, "delivery failed");
                Disposition::Final { status: FinalStatus::Failed, error: reason, bounce: false }
            }
            SendError::Transient(reply) => {
                let delay = retry_delay(self.settings.retry_base, delivery.attempts);
                tracing::warn!(%reply, retry_in_secs = delay.as_secs_f64(), "delivery will be retried");
                Disposition::Retry { error: reply, retry_at: crate::store::now() + delay }
            }
        }
    }

    /// Waits for `SEND_RATE` and the recipient's domain's `SEND_RATE_PER_DOMAIN`.
    async fn wait_for_rate_limits(&self, recipient: &str) {
        if let Some(limiter) = &self.rate_per_domain {
            let domain = recipient.rsplit_once('@').map_or(recipient, |(_, domain)| domain).to_ascii_lowercase();
            limiter.until_key_ready(&domain).await;
        }
        if let Some(limiter) = &self.rate {
            limiter.until_ready().await;
        }
    }

    /// Whether edition `id` is still sending (not paused or cancelled), read
    /// at most once a second, so a pause reaches the sends already claimed.
    /// When the state cannot be read the send goes ahead, as it would have.
    async fn edition_may_send(&self, id: uuid::Uuid) -> bool {
        if let Some((read_at, may_send)) = self.edition_states.lock().expect("not poisoned").get(&id)
            && read_at.elapsed() < EDITION_STATE_MAX_AGE
        {
            return *may_send;
        }
        let may_send = match self.store.edition_state(id).await {
            Ok(state) => state.is_none_or(|state| state == "sending"),
            Err(error) => {
                tracing::warn!(%error, "cannot read an edition's state; sending");
                true
            }
        };
        let mut states = self.edition_states.lock().expect("not poisoned");
        if states.len() >= CACHED_EDITIONS {
            states.clear();
        }
        states.insert(id, (Instant::now(), may_send));
        may_send
    }

    /// An edition's snapshot, read once and kept while its deliveries go out:
    /// the sends that start together wait for the one read (a failed read is
    /// tried again by the next send).
    async fn edition(&self, id: uuid::Uuid) -> Result<Option<Arc<Edition>>, StoreError> {
        let cell = {
            let mut cache = self.editions.lock().expect("not poisoned");
            if !cache.contains_key(&id) && cache.len() >= CACHED_EDITIONS {
                cache.clear();
            }
            cache.entry(id).or_default().clone()
        };
        let edition = cell.get_or_try_init(|| async {
            let content = self.store.edition_content(id).await?;
            Ok(content.map(|content| Arc::new(Edition { digest: DigestEdition::new(&self.links, &content), content })))
        });
        edition.await.cloned()
    }

    fn render(&self, delivery: &ClaimedDelivery, edition: Option<&Edition>) -> Rendered {
        let Some(kind) = delivery.kind else {
            return Rendered::Fail(format!("unknown kind of message '{}'", delivery.kind_name));
        };
        let Some(subscriber) = &delivery.subscriber else {
            return Rendered::Suppress("the subscriber was erased".into());
        };
        let composed = match kind {
            DeliveryKind::Confirmation => {
                if subscriber.status != SubscriberStatus::Pending {
                    return Rendered::Suppress(format!("subscriber is {} now", subscriber.status.as_str()));
                }
                let Some(issued_at) =
                    delivery.payload["issued_at"].as_i64().and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                else {
                    return Rendered::Fail("confirmation payload has no issued_at".into());
                };
                let expires_at = issued_at + self.settings.confirmation_ttl;
                if expires_at <= Utc::now() {
                    return Rendered::Suppress("the confirmation link expired before it could be sent".into());
                }
                let token = self.tokens.confirmation_token(subscriber.id, &subscriber.token_nonce, issued_at);
                confirmation_email(
                    &self.links,
                    &subscriber.email,
                    self.links.message_id(delivery.id),
                    &subscriber.name,
                    &token,
                    expires_at,
                )
            }
            DeliveryKind::Welcome => {
                if subscriber.status != SubscriberStatus::Confirmed {
                    return Rendered::Suppress(format!("subscriber is {} now", subscriber.status.as_str()));
                }
                let token = self.tokens.manage_token(subscriber.id, &subscriber.token_nonce);
                welcome_email(
                    &self.links,
                    &subscriber.email,
                    self.links.message_id(delivery.id),
                    &subscriber.name,
                    &token,
                    &subscriber.watchlist.to_string(),
                )
            }
            DeliveryKind::PreferencesLink => {
                if subscriber.status != SubscriberStatus::Confirmed {
                    return Rendered::Suppress(format!("subscriber is {} now", subscriber.status.as_str()));
                }
                let token = self.tokens.manage_token(subscriber.id, &subscriber.token_nonce);
                preferences_link_email(
                    &self.links,
                    &subscriber.email,
                    self.links.message_id(delivery.id),
                    &subscriber.name,
                    &token,
                )
            }
            DeliveryKind::Digest => {
                if subscriber.status != SubscriberStatus::Confirmed {
                    return Rendered::Suppress(format!("subscriber is {} now", subscriber.status.as_str()));
                }
                if subscriber.digest_frequency == DigestFrequency::Never {
                    return Rendered::Suppress("the reader turned the digest off".into());
                }
                let Some(edition) = edition else {
                    return Rendered::Fail("the digest's edition is gone".into());
                };
                let due = match ReaderDue::deserialize(&delivery.payload) {
                    Ok(due) => due,
                    Err(error) => return Rendered::Fail(format!("digest payload: {error}")),
                };
                let digest = compose(&edition.content, &due);
                if digest.is_empty() {
                    return Rendered::Suppress("nothing new for this reader".into());
                }
                let token = self.tokens.manage_token(subscriber.id, &subscriber.token_nonce);
                digest_email(
                    &self.links,
                    &edition.digest,
                    &subscriber.email,
                    self.links.message_id(delivery.id),
                    &subscriber.name,
                    &token,
                    &digest,
                )
            }
            DeliveryKind::Alert => {
                // The reader may have changed their mind since the alert was queued.
                if subscriber.status != SubscriberStatus::Confirmed || !subscriber.alerts_enabled {
                    return Rendered::Suppress("the reader no longer takes alerts".into());
                }
                let alert = match AlertPayload::deserialize(&delivery.payload) {
                    Ok(alert) => alert,
                    Err(error) => return Rendered::Fail(format!("alert payload: {error}")),
                };
                if !subscriber.watchlist.tickers().iter().any(|t| t.as_str() == alert.symbol) {
                    return Rendered::Suppress(format!("{} is no longer on the watchlist", alert.symbol));
                }
                let token = self.tokens.manage_token(subscriber.id, &subscriber.token_nonce);
                alert_email(
                    &self.links,
                    &subscriber.email,
                    self.links.message_id(delivery.id),
                    &subscriber.name,
                    &token,
                    &alert,
                )
            }
        };
        match composed {
            Ok(email) => Rendered::Email(email),
            Err(reason) => Rendered::Fail(reason),
        }
    }
}

#[derive(Default)]
struct Tally {
    sent: usize,
    retry: usize,
    deferred: usize,
    failed: usize,
    suppressed: usize,
}

impl Tally {
    fn total(&self) -> usize {
        self.sent + self.retry + self.deferred + self.failed + self.suppressed
    }

    fn count(&mut self, disposition: &Disposition) {
        match disposition {
            Disposition::Sent => self.sent += 1,
            Disposition::Retry { .. } => self.retry += 1,
            Disposition::Deferred => self.deferred += 1,
            Disposition::Final { status: FinalStatus::Failed, .. } => self.failed += 1,
            Disposition::Final { status: FinalStatus::Suppressed, .. } => self.suppressed += 1,
        }
    }
}

/// Logs a recording that did not take: the rows' lease ran out and another
/// worker took them over, or the database failed (they are retried after
/// their lease).
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

/// Exponential backoff from `base` (doubling per failed attempt, capped),
/// with ±20% jitter so retries after an outage do not arrive all at once.
fn retry_delay(base: Duration, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    let delay = base.saturating_mul(1 << exponent).min(MAX_RETRY_DELAY);
    delay.mul_f64(rand::random_range(0.8..1.2))
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
        };
        assert_eq!(settings(0, 0).claim_limit(), 200);
        assert_eq!(settings(1, 0).claim_limit(), 150);
        assert_eq!(settings(10, 0).claim_limit(), 200);
        assert_eq!(settings(10, 1).claim_limit(), 150);
    }

    #[test]
    fn retry_delays_double_with_jitter_and_are_capped() {
        let base = Duration::from_secs(30);
        for (attempts, expected) in [(1, 30.0), (2, 60.0), (3, 120.0), (5, 480.0)] {
            let delay = retry_delay(base, attempts).as_secs_f64();
            assert!((expected * 0.8..=expected * 1.2).contains(&delay), "attempt {attempts}: {delay}");
        }
        assert!(retry_delay(base, 40) <= MAX_RETRY_DELAY.mul_f64(1.2));
    }
}
