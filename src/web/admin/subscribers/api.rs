//! Looking after the list over the admin API: find readers, see one with
//! their consent records and delivery history, unsubscribe one, erase one,
//! and CSV export and import.

use actix_web::{HttpResponse, delete, get, post, web};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::export::export_response;
use super::import::{ImportError, ImportProgress, MAX_IMPORT_BYTES, import, too_large};
use super::{Search, erase_reader, next_after, record, subscriber_id, unsubscribe_reader};
use crate::store::SubscriberRecord;
use crate::web::AppState;
use crate::web::admin::api::{AdminApiError, ListLimit};

const PAGE: ListLimit = ListLimit { default: 50, max: 500 };

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
#[get("/api/subscribers")]
pub(super) async fn search(
    query: web::Query<SearchQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminApiError> {
    let search = Search::parse(
        query.email.as_deref().unwrap_or_default(),
        query.status.as_deref().unwrap_or_default(),
        query.after.as_deref().unwrap_or_default(),
    )?;
    let limit = PAGE.of(query.limit)?;
    let found = search.page(&state.store, limit).await?;
    let next = next_after(&found, limit);
    Ok(HttpResponse::Ok().json(json!({ "subscribers": found, "next_after": next })))
}

/// Every reader as CSV. A cell that a spreadsheet would take for a formula is escaped.
#[get("/api/subscribers.csv")]
pub(super) async fn export_csv(state: web::Data<AppState>) -> HttpResponse {
    export_response(state.store.clone())
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
#[post("/api/subscribers/import")]
pub(super) async fn import_csv(
    query: web::Query<ImportQuery>,
    mut body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminApiError> {
    if query.consent.as_deref() != Some("yes") {
        return Err(AdminApiError::NoConsent);
    }
    let mut csv = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| AdminApiError::BadRequest("The body could not be read.".into()))?;
        if csv.len() + chunk.len() > MAX_IMPORT_BYTES {
            return Err(AdminApiError::TooLarge(too_large()));
        }
        csv.extend_from_slice(&chunk);
    }
    let report = import(&state.store, csv, &ImportProgress::default()).await.map_err(|error| match error {
        ImportError::Store(error) => error.into(),
        unreadable => AdminApiError::BadRequest(unreadable.to_string()),
    })?;
    Ok(HttpResponse::Ok().json(json!({
        "imported": report.imported,
        "already_known": report.already_known,
        "invalid": report.invalid.iter().map(|(line, error)| json!({"line": line, "error": error})).collect::<Vec<_>>(),
    })))
}

/// One reader: their preferences, consent records (newest first) and deliveries.
#[get("/api/subscribers/{id}")]
pub(super) async fn show(id: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, AdminApiError> {
    let SubscriberRecord { subscriber, consents, deliveries } = record(&state, subscriber_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(json!({
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
    })))
}

/// Unsubscribes a reader at once, as their own one-click link would.
#[post("/api/subscribers/{id}/unsubscribe")]
pub(super) async fn unsubscribe(
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminApiError> {
    let changed = unsubscribe_reader(&state, subscriber_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(json!({ "unsubscribed": true, "changed": changed })))
}

/// Erases a reader with all their personal data (GDPR); their deliveries
/// stay, anonymised, for the statistics. 204, or 404 if there is no such reader.
#[delete("/api/subscribers/{id}")]
pub(super) async fn erase(id: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, AdminApiError> {
    erase_reader(&state, subscriber_id(&id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
