//! `Idempotency-Key` on the admin API's requests that send or create: a
//! repeat gets the first answer, and does nothing again.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::api::AdminApiError;
use crate::store::{IdempotencyKey, IdempotencyScope};
use crate::web::AppState;

const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// An answer that is kept for the key: a status and its JSON body.
pub type Answer = (StatusCode, serde_json::Value);

/// Runs `act` once per `Idempotency-Key` of `scope` when the request has
/// one: a repeat gets the first answer, and a 409 while the first is still
/// under way. Without a key, `act` runs every time. An error is not kept (the
/// database failed, say): a repeat tries again.
pub async fn once_per_key<Fut: Future<Output = Result<Answer, AdminApiError>>>(
    request: &HttpRequest,
    state: &AppState,
    scope: IdempotencyScope,
    act: impl FnOnce() -> Fut,
) -> Result<HttpResponse, AdminApiError> {
    let key = match request.headers().get("Idempotency-Key").map(|v| v.to_str().map(str::trim)) {
        None => None,
        Some(Ok(key)) if !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY_LEN => Some(key.to_string()),
        Some(_) => {
            return Err(AdminApiError::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible characters."
            )));
        }
    };
    if let Some(key) = &key {
        match state.store.claim_idempotency_key(scope, key).await? {
            IdempotencyKey::New => {}
            IdempotencyKey::Seen(Some((status, answer))) => {
                return Ok(HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
                    .content_type("application/json")
                    .body(answer));
            }
            IdempotencyKey::Seen(None) => return Err(AdminApiError::KeyInUse),
        }
    }
    let answer = act().await;
    if let Some(key) = &key {
        let recorded = match &answer {
            Ok((status, body)) => {
                state.store.record_idempotent_answer(scope, key, status.as_u16(), &body.to_string()).await
            }
            Err(_) => state.store.release_idempotency_key(scope, key).await,
        };
        if let Err(error) = recorded {
            tracing::error!(%error, "could not record the answer to an Idempotency-Key");
        }
    }
    let (status, body) = answer?;
    Ok(HttpResponse::build(status).json(body))
}
