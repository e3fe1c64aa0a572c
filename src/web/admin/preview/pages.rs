//! The preview page (the HTML part in a frame beside the text part) and the
//! test-send page.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::{Preview, PreviewQuery, test_send_request};
use crate::jobs::test_send::TestSendError;
use crate::web::AppState;
use crate::web::admin::pages::{AdminPageError, html};
use crate::web::admin::session::{AdminForm, AdminSession};

const KINDS: [&str; 4] = ["digest", "alert", "confirmation", "welcome"];

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

#[get("/preview")]
pub(super) async fn preview_page(
    session: AdminSession,
    query: web::Query<PreviewQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let (kind, email) = query.asked();
    let preview = Preview::load(&state, kind, email).await?;
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
    Ok(response)
}

/// The HTML part alone, for the preview's frame: sandboxed, no scripts, and
/// images only over https (as a careful mail client would).
#[get("/preview/html")]
pub(super) async fn preview_html(
    query: web::Query<PreviewQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let (kind, email) = query.asked();
    Ok(match Preview::load(&state, kind, email).await? {
        Preview::Shown(content) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: data:",
            ))
            .insert_header((header::X_FRAME_OPTIONS, "SAMEORIGIN"))
            .body(content.html),
        Preview::Refused(message) => HttpResponse::UnprocessableEntity().content_type("text/plain").body(message),
    })
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

#[get("/test-send")]
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
pub(super) struct TestSendForm {
    #[serde(default)]
    to: String,
    #[serde(default)]
    kind: String,
}

/// Sends at once and shows what the SMTP server answered.
#[post("/test-send")]
pub(super) async fn test_send(
    form: AdminForm<TestSendForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let input = &form.form;
    let (status, outcome) = match test_send_request(&input.to, &input.kind) {
        Err(invalid) => (StatusCode::UNPROCESSABLE_ENTITY, Err(invalid.message)),
        Ok((to, kind)) => match state.test_sender.send(&to, kind).await {
            Ok(subject) => (StatusCode::OK, Ok(subject)),
            Err(TestSendError::Store(error)) => return Err(error.into()),
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
    Ok(html(status, &page))
}
