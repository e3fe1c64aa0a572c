//! The leases of claimed deliveries: all that a run holds are extended every
//! quarter lease, and each message passes its own lease as the gate right
//! before it goes on the wire.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::edition_cache::EditionCache;
use super::suppression::suppression;
use crate::domain::Message;
use crate::mailer::SendGate;
use crate::store::{ClaimedDelivery, ClaimedReader, Store};

/// What a lease must still have left when a send starts, beyond the longest
/// the send can take: time to record the outcome.
const RECORD_MARGIN: Duration = Duration::from_secs(5);

/// A message that waited longer than this since its reader was read (with
/// its claim) reads them again before it goes out: an unsubscribe or erasure
/// meanwhile stops it.
const READER_MAX_AGE: Duration = Duration::from_secs(2);

/// The deliveries a run has claimed and not yet recorded, by id, with their claim.
#[derive(Clone, Default)]
pub(super) struct HeldLeases(Arc<Mutex<HashMap<Uuid, Uuid>>>);

impl HeldLeases {
    pub(super) fn hold(&self, batch: &[ClaimedDelivery]) {
        self.0.lock().expect("not poisoned").extend(batch.iter().map(|delivery| (delivery.id, delivery.claim_id)));
    }

    pub(super) fn release<'a>(&self, recorded: impl IntoIterator<Item = &'a ClaimedDelivery>) {
        let mut held = self.0.lock().expect("not poisoned");
        for delivery in recorded {
            held.remove(&delivery.id);
        }
    }

    fn pairs(&self) -> Vec<(Uuid, Uuid)> {
        self.0.lock().expect("not poisoned").iter().map(|(id, claim)| (*id, *claim)).collect()
    }

    /// Extends the leases held every quarter lease, until it is aborted with
    /// the run that started it.
    pub(super) async fn keep(self, store: Store, lease: Duration) {
        let every = (lease / 4).max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            let pairs = self.pairs();
            if pairs.is_empty() {
                continue;
            }
            if let Err(error) = store.extend_leases(&pairs, lease).await {
                tracing::warn!(%error, held = pairs.len(), "cannot extend the leases of the deliveries under way");
            }
        }
    }
}

/// Why the gate stayed shut when a message came to be sent.
pub(super) enum ShutBecause {
    /// The worker took it back before it went on the wire.
    GivenBack,
    /// Its edition was paused or cancelled while it waited for a session.
    EditionHeld,
    /// Its reader, read again, no longer gets it, for this reason.
    Suppressed(String),
    /// Its claim was lost: it is another worker's now.
    Lost,
    /// Its lease could not be extended to cover the send.
    NotCovered,
}

/// A claimed delivery's lease, as the gate its message passes right before
/// it goes on the wire: the send goes ahead only while the lease covers the
/// longest it can take (extending the lease first when it would not) and its
/// edition may send, and never once the lease was lost or the delivery given
/// back.
pub(super) struct DeliveryLease {
    store: Store,
    delivery_id: Uuid,
    claim_id: Uuid,
    lease: Duration,
    until: Mutex<Instant>,
    /// The edition it belongs to, whose pause or cancel holds it back.
    edition: Option<(Uuid, Arc<EditionCache>)>,
    /// Its reader, as the claim read them, and the message for them.
    reader: Option<ReaderCheck>,
    /// Why the reader, read again, no longer gets the message.
    suppressed: Mutex<Option<String>>,
    state: AtomicU8,
}

/// What a second look at a message's reader needs.
struct ReaderCheck {
    subscriber_id: Uuid,
    message: Message,
    read_at: Instant,
    confirmation_ttl: Duration,
}

impl ReaderCheck {
    fn stale(&self) -> bool {
        self.read_at.elapsed() > READER_MAX_AGE
    }
}

const WAITING: u8 = 0;
const ON_THE_WIRE: u8 = 1;
const GIVEN_BACK: u8 = 2;
const LOST: u8 = 3;
/// Its edition was paused or cancelled while it waited for a session.
const HELD: u8 = 4;
/// Its reader, read again, no longer gets it (see `suppressed`).
const SUPPRESSED: u8 = 5;

impl DeliveryLease {
    pub(super) fn new(
        store: Store,
        editions: &Arc<EditionCache>,
        delivery: &ClaimedDelivery,
        lease: Duration,
        confirmation_ttl: Duration,
    ) -> Self {
        let reader = match (&delivery.reader, &delivery.message) {
            (ClaimedReader::Found(subscriber), Ok(message)) => Some(ReaderCheck {
                subscriber_id: subscriber.id,
                message: message.clone(),
                read_at: delivery.lease_until.checked_sub(lease).unwrap_or_else(Instant::now),
                confirmation_ttl,
            }),
            _ => None,
        };
        Self {
            store,
            delivery_id: delivery.id,
            claim_id: delivery.claim_id,
            lease,
            until: Mutex::new(delivery.lease_until),
            edition: delivery.edition_id.map(|id| (id, editions.clone())),
            reader,
            suppressed: Mutex::default(),
            state: AtomicU8::new(WAITING),
        }
    }

    /// Why the reader, read again because the message waited, no longer gets
    /// it; `None` when they still do (or cannot be read: it goes ahead, as it would have).
    async fn reader_declines(&self) -> Option<String> {
        let check = self.reader.as_ref().filter(|check| check.stale())?;
        match self.store.subscriber(check.subscriber_id).await {
            Ok(None) => Some("the subscriber was erased".into()),
            Ok(Some(subscriber)) => suppression(&check.message, &subscriber, check.confirmation_ttl),
            Err(error) => {
                tracing::warn!(%error, "cannot read a reader again before a send; sending");
                None
            }
        }
    }

    /// When the lease ends, extended as it may have been for the send.
    pub(super) fn until(&self) -> Instant {
        *self.until.lock().expect("not poisoned")
    }

    fn covers(&self, longest: Duration) -> bool {
        Instant::now() + longest + RECORD_MARGIN <= self.until()
    }

    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    fn enter(&self, state: u8) -> bool {
        self.state.compare_exchange(WAITING, state, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Takes the delivery back unless it is already on the wire.
    pub(super) fn give_back(&self) -> bool {
        self.enter(GIVEN_BACK)
    }

    /// Why the gate stayed shut, once the transport said nothing was sent.
    pub(super) fn shut_because(&self) -> ShutBecause {
        match self.state() {
            GIVEN_BACK => ShutBecause::GivenBack,
            HELD => ShutBecause::EditionHeld,
            SUPPRESSED => {
                ShutBecause::Suppressed(self.suppressed.lock().expect("not poisoned").take().unwrap_or_default())
            }
            LOST => ShutBecause::Lost,
            _ => ShutBecause::NotCovered,
        }
    }
}

impl SendGate for DeliveryLease {
    fn open(&self, longest: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            if self.state() != WAITING {
                return false;
            }
            if let Some(reason) = self.reader_declines().await {
                *self.suppressed.lock().expect("not poisoned") = Some(reason);
                self.enter(SUPPRESSED);
                return false;
            }
            if let Some((id, editions)) = &self.edition
                && !editions.may_send(*id).await
            {
                self.enter(HELD);
                return false;
            }
            if !self.covers(longest) {
                let asked = Instant::now();
                match self.store.renew_delivery_lease(self.delivery_id, self.claim_id, self.lease).await {
                    Ok(true) => *self.until.lock().expect("not poisoned") = asked + self.lease,
                    Ok(false) => {
                        self.enter(LOST);
                        return false;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot extend a delivery's lease; it is not sent now");
                        return false;
                    }
                }
            }
            self.covers(longest) && self.enter(ON_THE_WIRE)
        })
    }

    fn open_now(&self, longest: Duration) -> bool {
        let edition_may_send = match &self.edition {
            Some((id, editions)) => editions.may_send_now(*id) == Some(true),
            None => true,
        };
        let reader_fresh = self.reader.as_ref().is_none_or(|check| !check.stale());
        self.state() == WAITING && reader_fresh && edition_may_send && self.covers(longest) && self.enter(ON_THE_WIRE)
    }
}
