//! Runs: the latest editions, a digest run now by the same rules as the
//! schedule (the page confirms first, with how many readers it will reach),
//! and an edition's progress with pause, resume and cancel.

mod api;
mod pages;

use actix_web::web::ServiceConfig;
use uuid::Uuid;

use super::service::{self, ServiceError};
use crate::domain::EditionState;
use crate::jobs::digest::{DigestRules, manual_run, on_demand_frequency};
use crate::store::{DigestRun, EditionAction, EditionControl, EditionOutcome, StoreError};
use crate::web::AppState;

pub(super) fn configure(config: &mut ServiceConfig) {
    config
        .service(pages::editions_page)
        .service(pages::confirm_edition)
        .service(pages::create_edition)
        .service(pages::edition_page)
        .service(pages::control_edition)
        .service(api::create_edition)
        .service(api::edition_progress)
        .service(api::list_editions)
        .service(api::control_edition);
}

/// A run now of the `frequency` digest: `daily` or `weekly`.
fn run_now(state: &AppState, frequency: &str) -> Result<DigestRun, ServiceError> {
    let frequency = on_demand_frequency(frequency).ok_or(ServiceError::NoSuchDigest)?;
    Ok(manual_run(frequency, crate::store::now(), DigestRules::from_settings(&state.settings)))
}

/// Makes the run's edition; the delivery worker is woken to send it.
async fn start(state: &AppState, run: &DigestRun) -> Result<EditionOutcome, StoreError> {
    let outcome = state.store.create_digest_edition(run).await?;
    if let EditionOutcome::Created(_) = outcome {
        state.worker_wakeup.notify_one();
    }
    Ok(outcome)
}

/// Pauses, resumes or cancels edition `id`: the edition, and its state after.
async fn control(state: &AppState, id: &str, action: &str) -> Result<(Uuid, EditionState), ServiceError> {
    let id = service::id(id, "edition")?;
    let action: EditionAction = action.parse().map_err(|_| ServiceError::NoSuch("edition"))?;
    match state.store.control_edition(id, action).await? {
        EditionControl::Done(edition_state) => {
            state.worker_wakeup.notify_one();
            Ok((id, edition_state))
        }
        EditionControl::NoSuchEdition => Err(ServiceError::NoSuch("edition")),
        EditionControl::NotNow(current) => Err(ServiceError::EditionNotNow(current)),
    }
}
