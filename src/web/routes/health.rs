//! Liveness and readiness checks, and the stylesheet every page links to.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use serde_json::json;

use crate::web::AppState;
use crate::web::pages::STYLESHEET;

/// The process is alive.
#[get("/health")]
pub(super) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The process can serve: its database answers and its delivery worker runs.
#[get("/ready")]
pub(super) async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if !state.worker_running.load(std::sync::atomic::Ordering::Acquire) {
        return HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "unavailable", "error": "the delivery worker is not running" }));
    }
    match state.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ok", "database": state.store.backend_name() })),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable", "error": "database unreachable" }))
        }
    }
}

#[get("/static/site.css")]
pub(super) async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}
