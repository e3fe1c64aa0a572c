//! The runs pages: the latest editions, the confirm step before a run, and
//! an edition's progress with its controls.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::{control, run_now, start};
use crate::domain::Story;
use crate::store::{EditionOutcome, EditionSummary};
use crate::web::AppState;
use crate::web::admin::pages::{AdminPageError, html, notice_page, see_other};
use crate::web::admin::service::{self, ServiceError};
use crate::web::admin::session::{AdminForm, AdminSession, NoFields};

const LISTED: u32 = 30;

#[derive(Template)]
#[template(path = "admin/editions.html")]
struct EditionsPage<'a> {
    site_name: &'a str,
    csrf: &'a str,
    editions: Vec<EditionSummary>,
}

#[get("/editions")]
pub(super) async fn editions_page(
    session: AdminSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let editions = state.store.recent_editions(LISTED).await?;
    Ok(html(StatusCode::OK, &EditionsPage { site_name: &state.settings.site_name, csrf: &session.csrf, editions }))
}

#[derive(Deserialize)]
pub(super) struct RunForm {
    #[serde(default)]
    frequency: String,
}

#[derive(Template)]
#[template(path = "admin/edition_confirm.html")]
struct ConfirmPage<'a> {
    site_name: &'a str,
    csrf: &'a str,
    frequency: &'a str,
    recipients: i64,
    stories: Vec<Story>,
}

/// The confirm step: what the run would send, and to how many, before anything is sent.
#[post("/editions/confirm")]
pub(super) async fn confirm_edition(
    form: AdminForm<RunForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let run = run_now(&state, &form.form.frequency)?;
    let (recipients, stories) = state.store.preview_digest(&run).await?;
    let page = ConfirmPage {
        site_name: &state.settings.site_name,
        csrf: &form.session.csrf,
        frequency: run.frequency.as_str(),
        recipients,
        stories,
    };
    Ok(html(StatusCode::OK, &page))
}

/// Runs the digest now, by the same rules as the schedule, and shows its progress.
#[post("/editions")]
pub(super) async fn create_edition(
    form: AdminForm<RunForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let run = run_now(&state, &form.form.frequency)?;
    Ok(match start(&state, &run).await? {
        EditionOutcome::Created(created) => see_other(format!("/admin/editions/{}", created.id)),
        EditionOutcome::UnderWay { edition_id } => notice_page(
            &state,
            StatusCode::CONFLICT,
            "The last edition is still going out",
            &format!(
                "The {} edition {edition_id} has not reached every reader yet, so no new one was started: one edition of a frequency goes out at a time. Open it from the dashboard to follow, pause or cancel it.",
                run.frequency.as_str()
            ),
        ),
        EditionOutcome::NobodyDue => notice_page(
            &state,
            StatusCode::OK,
            "Nothing to send",
            "No confirmed reader on this digest has a story they have not had yet, so no edition was made.",
        ),
        EditionOutcome::SlotTaken => {
            notice_page(&state, StatusCode::CONFLICT, "Already run", "That run was already made.")
        }
    })
}

#[derive(Template)]
#[template(path = "admin/edition.html")]
struct EditionPage<'a> {
    site_name: &'a str,
    csrf: &'a str,
    edition: EditionSummary,
}

/// An edition's progress; the page reloads itself while it is being sent.
#[get("/editions/{id}")]
pub(super) async fn edition_page(
    session: AdminSession,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let id = service::id(&id, "edition")?;
    let edition = state.store.edition_summary(id).await?.ok_or(ServiceError::NoSuch("edition"))?;
    Ok(html(StatusCode::OK, &EditionPage { site_name: &state.settings.site_name, csrf: &session.csrf, edition }))
}

#[post("/editions/{id}/{action}")]
pub(super) async fn control_edition(
    _: AdminForm<NoFields>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let (id, action) = path.into_inner();
    let (id, _) = control(&state, &id, &action).await?;
    Ok(see_other(format!("/admin/editions/{id}")))
}
