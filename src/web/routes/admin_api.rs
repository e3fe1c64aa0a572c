//! The admin JSON API, behind `Authorization: Bearer $ADMIN_TOKEN`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::web::AppState;

/// Compares the bearer token with `ADMIN_TOKEN` in constant time (hashes of
/// equal length, compared without early exit). No token configured: no access.
fn is_admin(request: &HttpRequest, state: &AppState) -> bool {
    let Some(expected) = &state.settings.admin_token else {
        return false;
    };
    let Some(given) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (Sha256::digest(given.trim().as_bytes()), Sha256::digest(expected.expose_secret().as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .json(json!({ "error": "Send Authorization: Bearer <ADMIN_TOKEN>." }))
}

/// Subscribers by status and the outbox by kind and status.
#[get("/admin/api/stats")]
pub(super) async fn stats(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !is_admin(&request, &state) {
        return unauthorized();
    }
    let counts = async {
        Ok::<_, crate::store::StoreError>((
            state.store.subscriber_counts().await?,
            state.store.delivery_counts().await?,
        ))
    };
    match counts.await {
        Ok((subscribers, deliveries)) => HttpResponse::Ok().json(json!({
            "subscribers": subscribers.into_iter().map(|(status, count)| (status.as_str(), count)).collect::<std::collections::BTreeMap<_, _>>(),
            "deliveries": deliveries,
        })),
        Err(error) => {
            tracing::error!(%error, "stats query failed");
            HttpResponse::ServiceUnavailable().json(json!({ "error": "database unavailable" }))
        }
    }
}
