//! What the worker keeps of the editions it sends: each one's snapshot,
//! rendered once however many sends wait for it, and whether it may send
//! (not paused or cancelled), read at most once a second so a pause reaches
//! the messages already claimed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use uuid::Uuid;

use super::render::EditionParts;
use crate::domain::EditionState;
use crate::mailer::EmailLinks;
use crate::store::{Store, StoreError};

/// Editions kept in memory while their deliveries are sent (one is sent at a
/// time in practice; a few cover a retry of an older one).
const CACHED_EDITIONS: usize = 8;
/// A pause or cancel reaches sends already claimed within this long.
const STATE_MAX_AGE: Duration = Duration::from_secs(1);

/// An edition's snapshot once read (`None`: there is no such edition).
type PartsCell = OnceCell<Option<Arc<EditionParts>>>;

pub struct EditionCache {
    store: Store,
    links: EmailLinks,
    parts: Mutex<HashMap<Uuid, Arc<PartsCell>>>,
    /// Whether each edition may send, and when that was read.
    states: Mutex<HashMap<Uuid, (Instant, bool)>>,
}

impl EditionCache {
    pub fn new(store: Store, links: EmailLinks) -> Self {
        Self { store, links, parts: Mutex::default(), states: Mutex::default() }
    }

    /// An edition's snapshot: the sends that start together wait for the one
    /// read (a failed read is tried again by the next send).
    pub async fn parts(&self, id: Uuid) -> Result<Option<Arc<EditionParts>>, StoreError> {
        let cell = {
            let mut cache = self.parts.lock().expect("not poisoned");
            if !cache.contains_key(&id) && cache.len() >= CACHED_EDITIONS {
                cache.clear();
            }
            cache.entry(id).or_default().clone()
        };
        let parts = cell.get_or_try_init(|| async {
            let content = self.store.edition_content(id).await?;
            Ok(content.map(|content| Arc::new(EditionParts::new(&self.links, content))))
        });
        parts.await.cloned()
    }

    /// Whether edition `id` may send now, as read within the last second.
    /// When the state cannot be read the send goes ahead, as it would have.
    pub async fn may_send(&self, id: Uuid) -> bool {
        if let Some(may_send) = self.may_send_now(id) {
            return may_send;
        }
        let may_send = match self.store.edition_state(id).await {
            Ok(state) => state.is_none_or(|state| state == EditionState::Sending),
            Err(error) => {
                tracing::warn!(%error, "cannot read an edition's state; sending");
                true
            }
        };
        let mut states = self.states.lock().expect("not poisoned");
        if states.len() >= CACHED_EDITIONS {
            states.clear();
        }
        states.insert(id, (Instant::now(), may_send));
        may_send
    }

    /// The same without waiting: `None` when the state was not read within the last second.
    pub fn may_send_now(&self, id: Uuid) -> Option<bool> {
        let states = self.states.lock().expect("not poisoned");
        states.get(&id).filter(|(read_at, _)| read_at.elapsed() < STATE_MAX_AGE).map(|(_, may_send)| *may_send)
    }

    /// Reads the state afresh next time: after a resume a put-back delivery is
    /// due at once, and a stale "paused" would keep sending it round.
    pub fn forget_state(&self, id: Uuid) {
        self.states.lock().expect("not poisoned").remove(&id);
    }
}
