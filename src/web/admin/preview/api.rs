//! Previews and test sends over the admin API.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use serde_json::json;

use super::{Preview, PreviewQuery, test_send_request};
use crate::jobs::test_send::TestSendError;
use crate::store::IdempotencyScope;
use crate::web::AppState;
use crate::web::admin::api::AdminApiError;
use crate::web::admin::idempotency::once_per_key;

/// `?kind=digest&email=ann@example.com`: the email as it would be sent now,
/// `{subject, text, html}`; 422 with the reason when there is none to show.
#[get("/api/preview")]
pub(super) async fn preview(
    query: web::Query<PreviewQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminApiError> {
    let (kind, email) = query.asked();
    match Preview::load(&state, kind, email).await? {
        Preview::Shown(content) => Ok(HttpResponse::Ok().json(json!({
            "kind": kind, "subject": content.subject, "text": content.text, "html": content.html,
        }))),
        Preview::Refused(message) => Err(AdminApiError::NoPreview(message)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TestSendInput {
    to: String,
    kind: String,
}

/// Sends a `[TEST]` digest, alert, confirmation or welcome email to any
/// address now, and answers with what SMTP said: 200 when it was accepted,
/// 502 with the server's reply when not, 409 when there is nothing to put in
/// it yet. With an `Idempotency-Key`, a repeat gets the first answer and
/// sends nothing.
#[post("/api/test-send")]
pub(super) async fn test_send(
    request: HttpRequest,
    body: web::Json<TestSendInput>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminApiError> {
    let (to, kind) = test_send_request(&body.to, &body.kind)?;
    once_per_key(&request, &state, IdempotencyScope::TestSend, || async {
        Ok(match state.test_sender.send(&to, kind).await {
            Ok(subject) => {
                (StatusCode::OK, json!({ "sent": true, "to": to.as_str(), "kind": body.kind, "subject": subject }))
            }
            Err(TestSendError::Refused(reply)) => (
                StatusCode::BAD_GATEWAY,
                json!({ "sent": false, "error": "The SMTP server did not accept the message.", "reply": reply }),
            ),
            Err(TestSendError::NothingToSend(message)) => {
                (StatusCode::CONFLICT, json!({ "sent": false, "error": message }))
            }
            Err(TestSendError::Render(message)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "sent": false, "error": message.to_string(), "field": "to" }),
            ),
            Err(TestSendError::Store(error)) => return Err(error.into()),
        })
    })
    .await
}
