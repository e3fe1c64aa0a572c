//! Runs over the admin API: a digest now (or what it would send), the
//! editions with their progress, and pause, resume and cancel.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use serde_json::json;

use super::{control, run_now, start};
use crate::store::{EditionOutcome, IdempotencyScope};
use crate::web::AppState;
use crate::web::admin::api::{AdminApiError, LISTED};
use crate::web::admin::idempotency::once_per_key;
use crate::web::admin::service;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EditionInput {
    /// `daily` (the default) or `weekly`.
    frequency: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// Runs a digest now, by the same rules as the schedule: 201 with the new
/// edition (the delivery worker sends it), or with `dry_run` 200 with how
/// many readers it would go to and its stories. 409 while an edition of that
/// frequency is still going out. With an `Idempotency-Key`, a repeat gets the
/// first answer and creates nothing.
#[post("/api/editions")]
pub(super) async fn create_edition(
    request: HttpRequest,
    body: web::Json<EditionInput>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminApiError> {
    let run = run_now(&state, body.frequency.as_deref().unwrap_or("daily"))?;
    let frequency = run.frequency.as_str();
    if body.dry_run {
        let (recipients, stories) = state.store.preview_digest(&run).await?;
        return Ok(HttpResponse::Ok().json(json!({
            "dry_run": true,
            "recipients": recipients,
            "stories": stories.iter().map(|s| json!({"title": s.title, "url": s.url})).collect::<Vec<_>>(),
        })));
    }
    once_per_key(&request, &state, IdempotencyScope::Edition, || async {
        Ok(match start(&state, &run).await? {
            EditionOutcome::Created(created) => (
                StatusCode::CREATED,
                json!({
                    "id": created.id, "frequency": frequency, "recipients": created.recipients,
                    "stories": created.stories, "quotes": created.quotes,
                }),
            ),
            EditionOutcome::UnderWay { edition_id } => (
                StatusCode::CONFLICT,
                json!({
                    "error": format!("The {frequency} edition {edition_id} is still going out (or paused): let it finish, or cancel it first."),
                    "edition": edition_id,
                }),
            ),
            EditionOutcome::NobodyDue => (
                StatusCode::OK,
                json!({
                    "id": null, "frequency": frequency, "recipients": 0,
                    "message": "No confirmed reader has a story they have not had yet: no edition was made.",
                }),
            ),
            EditionOutcome::SlotTaken => (StatusCode::CONFLICT, json!({ "error": "That run was already made." })),
        })
    })
    .await
}

/// An edition's deliveries by status: `done` once none is queued or being sent.
#[get("/api/editions/{id}")]
pub(super) async fn edition_progress(
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminApiError> {
    let id = service::id(&id, "edition")?;
    let progress = state.store.edition_progress(id).await?;
    if progress == Default::default() {
        return Err(AdminApiError::NoDeliveries);
    }
    Ok(HttpResponse::Ok().json(json!({ "id": id, "done": progress.is_done(), "deliveries": progress })))
}

/// The newest editions with their progress and state.
#[get("/api/editions")]
pub(super) async fn list_editions(state: web::Data<AppState>) -> Result<HttpResponse, AdminApiError> {
    let editions = state.store.recent_editions(LISTED.max).await?;
    Ok(HttpResponse::Ok().json(json!({ "editions": editions })))
}

/// `POST /admin/api/editions/{id}/pause` (or `resume`, `cancel`): 200 with
/// the edition's new state, 404, or 409 when its state does not allow it.
#[post("/api/editions/{id}/{action:pause|resume|cancel}")]
pub(super) async fn control_edition(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminApiError> {
    let (id, action) = path.into_inner();
    let (id, edition_state) = control(&state, &id, &action).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": id, "state": edition_state })))
}
