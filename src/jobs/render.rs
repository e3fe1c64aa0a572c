//! The one place a message of the outbox becomes an email: the worker sends
//! what this renders, and test sends and previews show it, so the three
//! cannot drift apart.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::digest::compose;
use crate::domain::{Message, Watchlist};
use crate::mailer::{
    DigestEdition, Email, EmailContent, EmailLinks, alert_content, confirmation_content, digest_content, digest_email,
    preferences_link_content, welcome_content,
};
use crate::store::EditionContent;
use crate::tokens::TokenKey;

/// What a message says about its reader, and the links made for them.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub token_nonce: &'a str,
    pub watchlist: &'a Watchlist,
}

/// A digest edition as its messages are rendered from: the snapshot, and
/// what every reader's digest shows alike, rendered once.
pub struct EditionParts {
    pub content: EditionContent,
    pub shared: DigestEdition,
}

impl EditionParts {
    pub fn new(links: &EmailLinks, content: EditionContent) -> Self {
        Self { shared: DigestEdition::new(links, &content), content }
    }
}

/// Where a rendered message goes.
pub enum Rendering<'a> {
    /// Out, addressed to `to`, in wire form.
    Send { to: &'a str, message_id: String },
    /// To a person's eyes: its subject and parts.
    Preview,
}

pub enum Rendered {
    Email(Email),
    Preview(EmailContent),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The message would say nothing (a digest with nothing new for its reader).
    NothingToSay(String),
    Failed(String),
}

/// What rendering needs beside the message.
pub struct Renderer<'a> {
    pub links: &'a EmailLinks,
    pub tokens: &'a TokenKey,
    /// How long a confirmation link lasts.
    pub confirmation_ttl: Duration,
}

impl Renderer<'_> {
    /// Renders `message` for `reader`; a digest needs its edition.
    pub fn render(
        &self,
        message: &Message,
        reader: Reader<'_>,
        edition: Option<&EditionParts>,
        rendering: Rendering<'_>,
    ) -> Result<Rendered, RenderError> {
        let links = self.links;
        let manage_token = || self.tokens.manage_token(reader.id, reader.token_nonce);
        let content = match message {
            Message::Confirmation(request) => {
                let token = self.tokens.confirmation_token(reader.id, reader.token_nonce, request.issued_at);
                confirmation_content(links, &token, self.confirmation_expiry(request.issued_at))
            }
            Message::Welcome(_) => welcome_content(links, reader.name, &manage_token(), &reader.watchlist.to_string()),
            Message::PreferencesLink(_) => preferences_link_content(links, reader.name, &manage_token()),
            Message::Digest(due) => {
                let edition = edition.ok_or_else(|| RenderError::Failed("the digest's edition is gone".into()))?;
                let digest = compose(&edition.content, due);
                if digest.is_empty() {
                    return Err(RenderError::NothingToSay("nothing new for this reader".into()));
                }
                return match rendering {
                    Rendering::Send { to, message_id } => {
                        digest_email(links, &edition.shared, to, message_id, reader.name, &manage_token(), &digest)
                            .map(Rendered::Email)
                    }
                    Rendering::Preview => {
                        digest_content(links, reader.name, &manage_token(), &digest, edition.content.created_at)
                            .map(Rendered::Preview)
                    }
                }
                .map_err(RenderError::Failed);
            }
            Message::Alert(alert) => alert_content(links, reader.name, &manage_token(), alert),
        }
        .map_err(RenderError::Failed)?;
        match rendering {
            Rendering::Send { to, message_id } => {
                content.into_message(links, to, message_id).map(Rendered::Email).map_err(RenderError::Failed)
            }
            Rendering::Preview => Ok(Rendered::Preview(content)),
        }
    }

    /// When a confirmation link issued at `issued_at` stops working.
    pub fn confirmation_expiry(&self, issued_at: DateTime<Utc>) -> DateTime<Utc> {
        issued_at + self.confirmation_ttl
    }
}
