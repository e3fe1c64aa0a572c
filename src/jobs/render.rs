//! The one place a message of the outbox becomes an email: the worker sends
//! what this renders, and test sends and previews show it, so the three
//! cannot drift apart.

use std::time::Duration;

use uuid::Uuid;

use crate::domain::{EditionContent, Message, ReaderDigest, Watchlist, compose};
use crate::mailer::{
    ComposeError, DigestEdition, Email, EmailContent, EmailLinks, alert_content, confirmation_content, digest_content,
    digest_email, preferences_link_content, welcome_content,
};
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

/// A message before it takes its final form: the parts of most kinds, or a
/// digest, whose wire form is spliced from its edition's shared parts.
enum Composed<'e> {
    Content(EmailContent),
    Digest(ReaderDigest<'e>, &'e EditionParts),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The message would say nothing (a digest with nothing new for its reader).
    #[error("{0}")]
    NothingToSay(String),
    #[error("the digest's edition is gone")]
    NoEdition,
    #[error(transparent)]
    Failed(#[from] ComposeError),
}

/// What rendering needs beside the message.
pub struct Renderer<'a> {
    pub links: &'a EmailLinks,
    pub tokens: &'a TokenKey,
    /// How long a confirmation link lasts.
    pub confirmation_ttl: Duration,
}

impl Renderer<'_> {
    /// `message` for `reader`, addressed to `to` in wire form; a digest needs its edition.
    pub fn email(
        &self,
        message: &Message,
        reader: Reader<'_>,
        edition: Option<&EditionParts>,
        to: &str,
        message_id: String,
    ) -> Result<Email, RenderError> {
        let links = self.links;
        match self.compose(message, reader, edition)? {
            Composed::Content(content) => content.into_message(links, to, message_id),
            Composed::Digest(digest, edition) => {
                let token = self.tokens.manage_token(reader.id, reader.token_nonce);
                digest_email(links, &edition.shared, to, message_id, reader.name, &token, &digest)
            }
        }
        .map_err(RenderError::from)
    }

    /// `message` for `reader` as a person sees it: its subject and parts.
    pub fn preview(
        &self,
        message: &Message,
        reader: Reader<'_>,
        edition: Option<&EditionParts>,
    ) -> Result<EmailContent, RenderError> {
        match self.compose(message, reader, edition)? {
            Composed::Content(content) => Ok(content),
            Composed::Digest(digest, edition) => {
                let token = self.tokens.manage_token(reader.id, reader.token_nonce);
                Ok(digest_content(self.links, reader.name, &token, &digest, edition.content.created_at)?)
            }
        }
    }

    /// The one switch over the kinds of message.
    fn compose<'e>(
        &self,
        message: &Message,
        reader: Reader<'_>,
        edition: Option<&'e EditionParts>,
    ) -> Result<Composed<'e>, RenderError> {
        let links = self.links;
        let manage_token = || self.tokens.manage_token(reader.id, reader.token_nonce);
        let content = match message {
            Message::Confirmation(request) => {
                let token = self.tokens.confirmation_token(reader.id, reader.token_nonce, request.issued_at);
                confirmation_content(links, &token, request.issued_at + self.confirmation_ttl)
            }
            Message::Welcome(_) => welcome_content(links, reader.name, &manage_token(), &reader.watchlist.to_string()),
            Message::PreferencesLink(_) => preferences_link_content(links, reader.name, &manage_token()),
            Message::Digest(due) => {
                let edition = edition.ok_or(RenderError::NoEdition)?;
                let digest = compose(&edition.content, due);
                if digest.is_empty() {
                    return Err(RenderError::NothingToSay("nothing new for this reader".into()));
                }
                return Ok(Composed::Digest(digest, edition));
            }
            Message::Alert(alert) => alert_content(links, reader.name, &manage_token(), alert),
        };
        Ok(Composed::Content(content?))
    }
}
