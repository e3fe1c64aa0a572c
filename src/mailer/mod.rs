//! Composing emails and handing them to SMTP, or writing them as `.eml` files
//! when no SMTP server is configured.

mod alert;
mod digest;
mod dkim;
mod messages;
mod smtp;

use std::path::PathBuf;
use std::sync::Arc;

use lettre::Message;

pub use alert::alert_email;
pub use digest::digest_email;
pub use dkim::DkimSigner;
pub use messages::{EmailLinks, confirmation_email, welcome_email};

use crate::config::MailTransportSettings;
use smtp::SmtpPool;

/// Why a message was not sent, and so what to do with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later: the server is unreachable, busy (4xx) or refused our login.
    #[error("{0}")]
    Transient(String),
    /// Never retry. `bounce` when the server rejected the recipient's address.
    #[error("{reply}")]
    Permanent { reply: String, bounce: bool },
}

#[derive(Clone)]
pub enum Mailer {
    Smtp(Arc<SmtpPool>),
    Outbox(PathBuf),
}

impl Mailer {
    pub fn new(settings: &MailTransportSettings, connections: usize) -> Result<Self, String> {
        match settings {
            MailTransportSettings::Smtp(smtp) => Ok(Mailer::Smtp(Arc::new(SmtpPool::new(smtp, connections)))),
            MailTransportSettings::Outbox(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("MAIL_OUTBOX_DIR: cannot create {}: {e}", dir.display()))?;
                Ok(Mailer::Outbox(dir.clone()))
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp(pool) => pool.describe(),
            Mailer::Outbox(dir) => format!(".eml files in {}", dir.display()),
        }
    }

    /// Sends one message. `file_stem` names the `.eml` file in outbox mode.
    pub async fn send(&self, message: Message, file_stem: &str) -> Result<(), SendError> {
        match self {
            Mailer::Smtp(pool) => pool.send(&message).await,
            Mailer::Outbox(dir) => {
                // Write then rename, so a reader of the folder never sees half a message.
                let partial = dir.join(format!(".{file_stem}.eml.partial"));
                let done = dir.join(format!("{file_stem}.eml"));
                let write = async {
                    tokio::fs::write(&partial, message.formatted()).await?;
                    tokio::fs::rename(&partial, &done).await
                };
                write.await.map_err(|e| SendError::Transient(format!("cannot write {}: {e}", done.display())))
            }
        }
    }
}

/// Sorts an SMTP failure into retry or give up. Only replies that say the
/// mailbox is bad (550–553) bounce the address; a 5xx about our login is a
/// set-up problem an admin will fix, so those messages wait and retry.
fn classify(error: &lettre::transport::smtp::Error) -> SendError {
    let code = error.status().map(u16::from);
    let reply = match code {
        Some(code) => format!("{code}: {error}"),
        None => error.to_string(),
    };
    match code {
        Some(550..=553) => SendError::Permanent { reply, bounce: true },
        Some(530 | 534 | 535 | 538) => SendError::Transient(reply),
        Some(_) if error.is_permanent() => SendError::Permanent { reply, bounce: false },
        _ => SendError::Transient(reply),
    }
}
