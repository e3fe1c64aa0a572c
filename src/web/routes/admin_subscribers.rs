//! Looking after the list over the admin API: find readers, see one with
//! their consent records and delivery history, unsubscribe one, erase one.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::domain::SubscriberStatus;
use futures_util::StreamExt;

use super::admin_api::unavailable;
use crate::store::SubscriberRecord;
use crate::web::AppState;
use crate::web::admin_auth::AdminApi;
use crate::web::subscriber_csv::{self, ImportError, ImportProgress, MAX_IMPORT_BYTES};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({ "error": "No such subscriber." }))
}

fn bad_request(message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": message }))
}

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    /// Part of the address, any case.
    email: Option<String>,
    status: Option<String>,
    /// The last address of the previous page.
    after: Option<String>,
    limit: Option<u32>,
}

/// `?email=ann&status=confirmed&after=…&limit=50`: readers in address order.
#[get("/admin/api/subscribers")]
pub(super) async fn search(_: AdminApi, query: web::Query<SearchQuery>, state: web::Data<AppState>) -> HttpResponse {
    let status = match query.status.as_deref().filter(|s| !s.is_empty()).map(str::parse::<SubscriberStatus>) {
        None => None,
        Some(Ok(status)) => Some(status),
        Some(Err(_)) => return bad_request("status must be pending, confirmed, unsubscribed or bounced."),
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return bad_request(&format!("limit must be from 1 to {MAX_PAGE}."));
    }
    let email = query.email.as_deref().unwrap_or_default().trim();
    let after = query.after.as_deref().unwrap_or_default();
    match state.store.find_subscribers(email, status, after, limit).await {
        Ok(found) => {
            let next = (found.len() == limit as usize).then(|| found.last().map(|s| s.email.clone())).flatten();
            HttpResponse::Ok().json(json!({ "subscribers": found, "next_after": next }))
        }
        Err(error) => unavailable(error),
    }
}

/// Every reader as CSV, streamed a page at a time (never built in memory).
/// A cell that a spreadsheet would take for a formula is escaped.
#[get("/admin/api/subscribers.csv")]
pub(super) async fn export_csv(_: AdminApi, state: web::Data<AppState>) -> HttpResponse {
    subscriber_csv::export_response(state.store.clone())
}

#[derive(Deserialize)]
pub(super) struct ImportQuery {
    /// `yes`: the admin confirms these people consented to the emails.
    consent: Option<String>,
}

/// Imports readers from CSV (a header row naming `email`, and optionally
/// `name` and `tickers`) as confirmed, after the admin confirms they
/// consented (`?consent=yes`). Valid rows are added, known addresses are
/// left alone, and invalid rows are reported with their line numbers.
#[post("/admin/api/subscribers/import")]
pub(super) async fn import_csv(
    _: AdminApi,
    query: web::Query<ImportQuery>,
    mut body: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if query.consent.as_deref() != Some("yes") {
        return HttpResponse::UnprocessableEntity().json(json!({
            "error": "Confirm that these people consented to get our emails: add ?consent=yes.",
            "field": "consent",
        }));
    }
    let mut csv = Vec::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { return bad_request("The body could not be read.") };
        if csv.len() + chunk.len() > MAX_IMPORT_BYTES {
            return HttpResponse::PayloadTooLarge().json(json!({ "error": subscriber_csv::too_large() }));
        }
        csv.extend_from_slice(&chunk);
    }
    match subscriber_csv::import(&state.store, csv, &ImportProgress::default()).await {
        Ok(report) => HttpResponse::Ok().json(json!({
            "imported": report.imported,
            "already_known": report.already_known,
            "invalid": report.invalid.iter().map(|(line, error)| json!({"line": line, "error": error})).collect::<Vec<_>>(),
        })),
        Err(ImportError::Unreadable(message)) => bad_request(&message),
        Err(ImportError::Store(error)) => unavailable(error),
    }
}

/// One reader: their preferences, consent records (newest first) and deliveries.
#[get("/admin/api/subscribers/{id}")]
pub(super) async fn show(_: AdminApi, id: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let Ok(id) = Uuid::parse_str(&id) else { return not_found() };
    match state.store.subscriber_record(id).await {
        Ok(None) => not_found(),
        Ok(Some(SubscriberRecord { subscriber, consents, deliveries })) => HttpResponse::Ok().json(json!({
            "id": subscriber.id,
            "email": subscriber.email,
            "name": subscriber.name,
            "status": subscriber.status.as_str(),
            "tickers": subscriber.watchlist.to_stored(),
            "alert_threshold_pct": subscriber.alert_threshold.percent(),
            "digest_frequency": subscriber.digest_frequency.as_str(),
            "alerts_enabled": subscriber.alerts_enabled,
            "created_at": subscriber.created_at,
            "confirmed_at": subscriber.confirmed_at,
            "consents": consents,
            "deliveries": deliveries,
        })),
        Err(error) => unavailable(error),
    }
}

/// Unsubscribes a reader at once, as their own one-click link would.
#[post("/admin/api/subscribers/{id}/unsubscribe")]
pub(super) async fn unsubscribe(_: AdminApi, id: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let Ok(id) = Uuid::parse_str(&id) else { return not_found() };
    match state.store.subscriber(id).await {
        Ok(None) => return not_found(),
        Err(error) => return unavailable(error),
        Ok(Some(_)) => {}
    }
    match state.store.unsubscribe(id).await {
        Ok(changed) => HttpResponse::Ok().json(json!({ "unsubscribed": true, "changed": changed })),
        Err(error) => unavailable(error),
    }
}

/// Erases a reader with all their personal data (GDPR); their deliveries
/// stay, anonymised, for the statistics. 204, or 404 if there is no such reader.
#[delete("/admin/api/subscribers/{id}")]
pub(super) async fn erase(_: AdminApi, id: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let Ok(id) = Uuid::parse_str(&id) else { return not_found() };
    match crate::web::erasure::erase_reader(&state, id).await {
        Ok(true) => HttpResponse::NoContent().finish(),
        Ok(false) => not_found(),
        Err(error) => unavailable(error),
    }
}
