//! Runs: the latest editions, running a digest now (after a confirm step
//! that shows how many readers it will reach), and an edition's progress with
//! pause, resume and cancel.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::pages::{html, not_found, notice_page, see_other, unavailable};
use super::session::{AdminForm, AdminSession, NoFields};
use crate::domain::Story;
use crate::jobs::digest::{DigestRules, manual_run, on_demand_frequency};
use crate::store::{EditionAction, EditionControl, EditionOutcome, EditionSummary};
use crate::web::AppState;

const LISTED: u32 = 30;

#[derive(Template)]
#[template(path = "admin/editions.html")]
struct EditionsPage<'a> {
    site_name: &'a str,
    csrf: &'a str,
    editions: Vec<EditionSummary>,
}

#[get("/admin/editions")]
pub(super) async fn editions_page(session: AdminSession, state: web::Data<AppState>) -> HttpResponse {
    match state.store.recent_editions(LISTED).await {
        Ok(editions) => {
            html(StatusCode::OK, &EditionsPage { site_name: &state.settings.site_name, csrf: &session.csrf, editions })
        }
        Err(error) => unavailable(&state, error),
    }
}

#[derive(Deserialize)]
pub(super) struct RunInput {
    #[serde(default)]
    frequency: String,
}

fn no_such_digest(state: &AppState) -> HttpResponse {
    notice_page(
        state,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Choose a digest",
        "The digest to run must be the daily or the weekly one.",
    )
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
#[post("/admin/editions/confirm")]
pub(super) async fn confirm_edition(form: AdminForm<RunInput>, state: web::Data<AppState>) -> HttpResponse {
    let Some(frequency) = on_demand_frequency(&form.form.frequency) else { return no_such_digest(&state) };
    let run = manual_run(frequency, crate::store::now(), DigestRules::from_settings(&state.settings));
    match state.store.preview_digest(&run).await {
        Ok((recipients, stories)) => html(
            StatusCode::OK,
            &ConfirmPage {
                site_name: &state.settings.site_name,
                csrf: &form.session.csrf,
                frequency: frequency.as_str(),
                recipients,
                stories,
            },
        ),
        Err(error) => unavailable(&state, error),
    }
}

/// Runs the digest now, by the same rules as the schedule, and shows its progress.
#[post("/admin/editions")]
pub(super) async fn create_edition(form: AdminForm<RunInput>, state: web::Data<AppState>) -> HttpResponse {
    let Some(frequency) = on_demand_frequency(&form.form.frequency) else { return no_such_digest(&state) };
    let run = manual_run(frequency, crate::store::now(), DigestRules::from_settings(&state.settings));
    match state.store.create_digest_edition(&run).await {
        Ok(EditionOutcome::Created(created)) => {
            state.worker_wakeup.notify_one();
            see_other(format!("/admin/editions/{}", created.id))
        }
        Ok(EditionOutcome::UnderWay { edition_id }) => notice_page(
            &state,
            StatusCode::CONFLICT,
            "The last edition is still going out",
            &format!(
                "The {} edition {edition_id} has not reached every reader yet, so no new one was started: one edition of a frequency goes out at a time. Open it from the dashboard to follow, pause or cancel it.",
                frequency.as_str()
            ),
        ),
        Ok(EditionOutcome::NobodyDue) => notice_page(
            &state,
            StatusCode::OK,
            "Nothing to send",
            "No confirmed reader on this digest has a story they have not had yet, so no edition was made.",
        ),
        Ok(EditionOutcome::SlotTaken) => {
            notice_page(&state, StatusCode::CONFLICT, "Already run", "That run was already made.")
        }
        Err(error) => unavailable(&state, error),
    }
}

#[derive(Template)]
#[template(path = "admin/edition.html")]
struct EditionPage<'a> {
    site_name: &'a str,
    csrf: &'a str,
    edition: EditionSummary,
}

/// An edition's progress; the page reloads itself while it is being sent.
#[get("/admin/editions/{id}")]
pub(super) async fn edition_page(
    session: AdminSession,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Ok(id) = Uuid::parse_str(&id) else { return not_found(&state, "edition") };
    match state.store.edition_summary(id).await {
        Ok(Some(edition)) => {
            html(StatusCode::OK, &EditionPage { site_name: &state.settings.site_name, csrf: &session.csrf, edition })
        }
        Ok(None) => not_found(&state, "edition"),
        Err(error) => unavailable(&state, error),
    }
}

#[post("/admin/editions/{id}/{action}")]
pub(super) async fn control_edition(
    _: AdminForm<NoFields>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let (Ok(id), Ok(action)) = (Uuid::parse_str(&id), action.parse::<EditionAction>()) else {
        return not_found(&state, "edition");
    };
    match state.store.control_edition(id, action).await {
        Ok(EditionControl::Done(_)) => {
            state.worker_wakeup.notify_one();
            see_other(format!("/admin/editions/{id}"))
        }
        Ok(EditionControl::NoSuchEdition) => not_found(&state, "edition"),
        Ok(EditionControl::NotNow(current)) => notice_page(
            &state,
            StatusCode::CONFLICT,
            "Not possible now",
            &format!("This edition is {current}; it cannot be changed that way."),
        ),
        Err(error) => unavailable(&state, error),
    }
}
