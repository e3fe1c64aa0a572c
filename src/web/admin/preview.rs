//! Previews (the HTML part in a frame beside the text part) and test sends.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::pages::{html, unavailable};
use super::session::{AdminForm, AdminSession};
use crate::domain::SubscriberEmail;
use crate::jobs::test_send::{TestKind, TestSendError};
use crate::mailer::EmailContent;
use crate::web::AppState;

const KINDS: [&str; 4] = ["digest", "alert", "confirmation", "welcome"];

#[derive(Deserialize)]
pub(super) struct PreviewQuery {
    kind: Option<String>,
    /// A reader's address; without one, a sample reader.
    email: Option<String>,
}

/// An email as it would be sent now, or why it cannot be shown.
pub enum Preview {
    Shown(EmailContent),
    /// A bad kind or address, or nothing to show yet: said on the page.
    Refused(String),
}

impl Preview {
    /// `kind` for the reader at `email` (a sample reader when empty).
    pub async fn load(state: &AppState, kind: &str, email: &str) -> Result<Self, crate::store::StoreError> {
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

#[derive(Template)]
#[template(path = "admin/preview.html")]
struct PreviewPage<'a> {
    site_name: &'a str,
    csrf: &'a str,
    kinds: [&'a str; 4],
    kind: &'a str,
    email: &'a str,
    preview: Preview,
    /// The query string of this preview, for the frame that shows its HTML.
    frame_query: String,
}

/// Pages allow frames from this site only here, for the HTML part.
const PREVIEW_PAGE_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[get("/admin/preview")]
pub(super) async fn preview_page(
    session: AdminSession,
    query: web::Query<PreviewQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let kind = query.kind.as_deref().unwrap_or("digest");
    let email = query.email.as_deref().unwrap_or_default();
    match Preview::load(&state, kind, email).await {
        Ok(preview) => {
            let frame_query = serde_urlencoded::to_string([("kind", kind), ("email", email)]).unwrap_or_default();
            let page = PreviewPage {
                site_name: &state.settings.site_name,
                csrf: &session.csrf,
                kinds: KINDS,
                kind,
                email,
                preview,
                frame_query,
            };
            let mut response = html(StatusCode::OK, &page);
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(PREVIEW_PAGE_POLICY));
            response
        }
        Err(error) => unavailable(&state, error),
    }
}

/// The HTML part alone, for the preview's frame: sandboxed, no scripts, and
/// images only over https (as a careful mail client would).
#[get("/admin/preview/html")]
pub(super) async fn preview_html(
    _: AdminSession,
    query: web::Query<PreviewQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let kind = query.kind.as_deref().unwrap_or("digest");
    match Preview::load(&state, kind, query.email.as_deref().unwrap_or_default()).await {
        Ok(Preview::Shown(content)) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: data:",
            ))
            .insert_header((header::X_FRAME_OPTIONS, "SAMEORIGIN"))
            .body(content.html),
        Ok(Preview::Refused(message)) => HttpResponse::UnprocessableEntity().content_type("text/plain").body(message),
        Err(error) => unavailable(&state, error),
    }
}

#[derive(Template)]
#[template(path = "admin/test_send.html")]
struct TestSendPage<'a> {
    site_name: &'a str,
    csrf: &'a str,
    kinds: [&'a str; 4],
    to: &'a str,
    kind: &'a str,
    /// What happened to the last send: accepted (with its subject) or not (with the reason).
    outcome: Option<Result<String, String>>,
}

#[get("/admin/test-send")]
pub(super) async fn test_send_form(session: AdminSession, state: web::Data<AppState>) -> HttpResponse {
    let page = TestSendPage {
        site_name: &state.settings.site_name,
        csrf: &session.csrf,
        kinds: KINDS,
        to: "",
        kind: "digest",
        outcome: None,
    };
    html(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub(super) struct TestSendInput {
    #[serde(default)]
    to: String,
    #[serde(default)]
    kind: String,
}

/// Sends at once and shows what the SMTP server answered.
#[post("/admin/test-send")]
pub(super) async fn test_send(form: AdminForm<TestSendInput>, state: web::Data<AppState>) -> HttpResponse {
    let input = &form.form;
    let (status, outcome) = match (SubscriberEmail::parse(&input.to), input.kind.parse::<TestKind>()) {
        (Err(message), _) | (_, Err(message)) => (StatusCode::UNPROCESSABLE_ENTITY, Err(message)),
        (Ok(to), Ok(kind)) => match state.test_sender.send(&to, kind).await {
            Ok(subject) => (StatusCode::OK, Ok(subject)),
            Err(TestSendError::Store(error)) => return unavailable(&state, error),
            Err(error @ TestSendError::Refused(_)) => (StatusCode::BAD_GATEWAY, Err(error.to_string())),
            Err(error) => (StatusCode::UNPROCESSABLE_ENTITY, Err(error.to_string())),
        },
    };
    let page = TestSendPage {
        site_name: &state.settings.site_name,
        csrf: &form.session.csrf,
        kinds: KINDS,
        to: &input.to,
        kind: &input.kind,
        outcome: Some(outcome),
    };
    html(status, &page)
}
