//! Composing emails and handing them to SMTP, or writing them as `.eml` files
//! when no SMTP server is configured.

mod alert;
mod digest;
mod dkim;
mod email;
mod messages;
mod smtp;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;

pub use alert::{alert_content, alert_email};
pub use digest::{DigestEdition, digest_content, digest_email};
pub use dkim::DkimSigner;
pub use email::Email;
pub use messages::{
    EmailContent, EmailLinks, confirmation_content, confirmation_email, preferences_link_email, welcome_content,
    welcome_email,
};

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
    pub async fn send(&self, email: Email, file_stem: &str) -> Result<(), SendError> {
        match self {
            Mailer::Smtp(pool) => pool.send(email).await,
            Mailer::Outbox(dir) => {
                // Write then rename, so a reader of the folder never sees half a message.
                let partial = dir.join(format!(".{file_stem}.eml.partial"));
                let done = dir.join(format!("{file_stem}.eml"));
                let write = async {
                    tokio::fs::write(&partial, email.to_eml()).await?;
                    tokio::fs::rename(&partial, &done).await
                };
                write.await.map_err(|e| SendError::Transient(format!("cannot write {}: {e}", done.display())))
            }
        }
    }
}
