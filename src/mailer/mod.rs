//! Composing emails and handing them to SMTP, or writing them as `.eml` files
//! when no SMTP server is configured.

mod alert;
mod digest;
mod dkim;
mod email;
mod messages;
mod outbox;
mod smtp;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

pub use alert::alert_content;
pub use digest::{DigestEdition, digest_content, digest_email};
pub use dkim::DkimSigner;
pub use email::Email;
pub use messages::{
    ComposeError, EmailContent, EmailLinks, confirmation_content, preferences_link_content, welcome_content,
};
pub use outbox::MessageOrigin;

use crate::config::MailTransportSettings;
use outbox::Outbox;
use smtp::SmtpPool;

/// Why a message was not sent, and so what to do with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later: the server is unreachable, busy (4xx) or full.
    #[error("{0}")]
    Transient(String),
    /// The server refused our login or our sender address: a set-up problem
    /// an admin will fix, so the message is retried, but it counts as a refusal.
    #[error("{0}")]
    Unauthorized(String),
    /// The server refused this message for good; `rejection` says whose fault.
    #[error("{reply}")]
    Rejected { reply: String, rejection: Rejection },
    /// Nothing was sent: the message's gate stayed shut (its claim was lost
    /// or given back) when a session came to send it.
    #[error("not sent: the message may no longer go out from here")]
    NotStarted,
}

/// What a permanent refusal is about (RFC 3463 enhanced status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The mailbox does not exist (x.1.1, x.1.2, x.1.3, x.1.6, x.1.10): the reader's address is dead.
    MailboxUnknown,
    /// Policy, relaying, authentication or spam (x.7.x, 554): about us or the
    /// server's rules, not the reader's address.
    Policy,
    /// Anything else about this message (its size, its syntax).
    Message,
}

/// Decides, right before a message goes on the wire, whether it still may.
pub trait SendGate: Send + Sync {
    /// Whether the message may be sent now, sending it taking up to
    /// `longest` from now. It may first extend what it holds (a lease) to
    /// cover that; once it said yes, the message counts as on the wire.
    fn open(&self, longest: Duration) -> BoxFuture<'_, bool>;
    /// The same, but without waiting: false where `open` would have to
    /// extend anything first.
    fn open_now(&self, longest: Duration) -> bool;
}

/// The gate of a message that answers to nobody: a test send.
pub struct AlwaysOpen;

impl SendGate for AlwaysOpen {
    fn open(&self, _: Duration) -> BoxFuture<'_, bool> {
        Box::pin(std::future::ready(true))
    }

    fn open_now(&self, _: Duration) -> bool {
        true
    }
}

#[derive(Clone)]
pub enum Mailer {
    Smtp(Arc<SmtpPool>),
    Outbox(Outbox),
}

impl Mailer {
    pub fn new(settings: &MailTransportSettings, connections: usize) -> Result<Self, String> {
        match settings {
            MailTransportSettings::Smtp(smtp) => Ok(Mailer::Smtp(Arc::new(SmtpPool::new(smtp, connections)))),
            MailTransportSettings::Outbox(dir) => Outbox::new(dir).map(Mailer::Outbox),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp(pool) => pool.describe(),
            Mailer::Outbox(outbox) => outbox.describe(),
        }
    }

    /// Removes what the outbox folder holds of an erased reader: the files of
    /// their deliveries, and test messages sent to their address. Returns how
    /// many were removed; nothing to do when mail goes out over SMTP.
    pub async fn forget(&self, deliveries: Vec<uuid::Uuid>, address: String) -> std::io::Result<usize> {
        match self {
            Mailer::Smtp(_) => Ok(0),
            Mailer::Outbox(outbox) => outbox.forget(deliveries, address).await,
        }
    }

    /// Sends one message once `gate` lets it. `origin` names the `.eml` file
    /// in outbox mode.
    pub async fn send(
        &self,
        email: Email,
        origin: MessageOrigin<'_>,
        gate: Arc<dyn SendGate>,
    ) -> Result<(), SendError> {
        match self {
            Mailer::Smtp(pool) => pool.send(email, gate).await,
            Mailer::Outbox(outbox) => outbox.send(email, origin, gate.as_ref()).await,
        }
    }
}
