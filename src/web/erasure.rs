//! GDPR erasure, for the admin API and pages alike: the reader's data in the
//! database, and what the outbox folder holds of them.

use uuid::Uuid;

use crate::store::StoreError;
use crate::web::AppState;

/// Erases reader `id`; false when there is no such reader.
pub async fn erase_reader(state: &AppState, id: Uuid) -> Result<bool, StoreError> {
    let Some(erased) = state.store.erase_subscriber(id).await? else { return Ok(false) };
    match state.mailer.forget(erased.deliveries, erased.email).await {
        Ok(removed) if removed > 0 => tracing::info!(removed, "an erased reader's messages left the outbox folder"),
        Ok(_) => {}
        Err(error) => {
            tracing::error!(%error, "an erased reader's messages could not all be removed from the outbox folder")
        }
    }
    Ok(true)
}
