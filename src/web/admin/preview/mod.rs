//! Previews of the emails as they would be sent now, and test sends of them
//! to any address, on the pages and over the API.

mod api;
mod pages;

use actix_web::web::ServiceConfig;
use serde::Deserialize;

use crate::domain::SubscriberEmail;
use crate::jobs::test_send::{TestKind, TestSendError};
use crate::mailer::EmailContent;
use crate::store::StoreError;
use crate::web::AppState;
use crate::web::validation::InvalidField;

pub(super) fn configure(config: &mut ServiceConfig) {
    config
        .service(pages::preview_page)
        .service(pages::preview_html)
        .service(pages::test_send_form)
        .service(pages::test_send)
        .service(api::preview)
        .service(api::test_send);
}

#[derive(Deserialize)]
struct PreviewQuery {
    kind: Option<String>,
    /// A reader's address; without one, a sample reader.
    email: Option<String>,
}

impl PreviewQuery {
    /// The kind asked for (`digest` without one), and the reader's address (empty for a sample reader).
    fn asked(&self) -> (&str, &str) {
        (self.kind.as_deref().unwrap_or("digest"), self.email.as_deref().unwrap_or_default())
    }
}

/// An email as it would be sent now, or why it cannot be shown.
enum Preview {
    Shown(EmailContent),
    /// A bad kind or address, or nothing to show yet.
    Refused(String),
}

impl Preview {
    /// `kind` for the reader at `email` (a sample reader when empty).
    async fn load(state: &AppState, kind: &str, email: &str) -> Result<Self, StoreError> {
        let kind: TestKind = match kind.parse() {
            Ok(kind) => kind,
            Err(message) => return Ok(Self::Refused(message)),
        };
        let reader = match email.trim() {
            "" => None,
            email => match SubscriberEmail::parse(email) {
                Err(_) => return Ok(Self::Refused(format!("'{email}' is not an email address."))),
                Ok(address) => match state.store.subscriber_by_email(&address).await? {
                    None => return Ok(Self::Refused(format!("No reader has the address {email}."))),
                    reader => reader,
                },
            },
        };
        match state.test_sender.preview(kind, reader.as_ref()).await {
            Ok(content) => Ok(Self::Shown(content)),
            Err(TestSendError::Store(error)) => Err(error),
            Err(error) => Ok(Self::Refused(error.to_string())),
        }
    }
}

/// Where a test send goes and what it is, as typed on the page or sent to the API.
fn test_send_request(to: &str, kind: &str) -> Result<(SubscriberEmail, TestKind), InvalidField> {
    Ok((
        SubscriberEmail::parse(to).map_err(InvalidField::named("to"))?,
        kind.parse().map_err(InvalidField::named("kind"))?,
    ))
}
