//! The list: search and filter, one reader with their consent records and
//! delivery history, unsubscribe, erasure with all their personal data, and
//! CSV export and import; on the pages and over the API.

mod api;
mod export;
mod import;
mod pages;

use actix_web::web::ServiceConfig;
use uuid::Uuid;

pub use import::ImportJobs;

use super::service::{self, ServiceError};
use crate::domain::{Subscriber, SubscriberStatus};
use crate::store::{Store, StoreError, SubscriberRecord, SubscriberSummary};
use crate::web::AppState;

pub(super) fn configure(config: &mut ServiceConfig) {
    config
        .service(pages::subscribers_page)
        .service(pages::export_csv)
        .service(pages::import_csv)
        .service(pages::import_page)
        .service(pages::subscriber_page)
        .service(pages::unsubscribe)
        .service(pages::erase)
        .service(api::search)
        .service(api::export_csv)
        .service(api::import_csv)
        .service(api::show)
        .service(api::unsubscribe)
        .service(api::erase);
}

/// A search of the list, in address order.
struct Search<'a> {
    /// Part of the address, any case.
    email: &'a str,
    status: Option<SubscriberStatus>,
    /// The last address of the page before.
    after: &'a str,
}

impl<'a> Search<'a> {
    /// `status` is empty for readers of any status.
    fn parse(email: &'a str, status: &str, after: &'a str) -> Result<Self, ServiceError> {
        let status = match status {
            "" => None,
            status => Some(status.parse().map_err(ServiceError::UnknownStatus)?),
        };
        Ok(Self { email: email.trim(), status, after })
    }

    async fn page(&self, store: &Store, limit: u32) -> Result<Vec<SubscriberSummary>, StoreError> {
        store.find_subscribers(self.email, self.status, self.after, limit).await
    }
}

/// Where the next page starts, when this one came back full.
fn next_after(found: &[SubscriberSummary], limit: u32) -> Option<&str> {
    found.last().filter(|_| found.len() == limit as usize).map(|last| last.email.as_str())
}

fn subscriber_id(text: &str) -> Result<Uuid, ServiceError> {
    service::id(text, "subscriber")
}

async fn subscriber(state: &AppState, id: Uuid) -> Result<Subscriber, ServiceError> {
    state.store.subscriber(id).await?.ok_or(ServiceError::NoSuch("subscriber"))
}

/// A reader with their consent records (newest first) and deliveries.
async fn record(state: &AppState, id: Uuid) -> Result<SubscriberRecord, ServiceError> {
    state.store.subscriber_record(id).await?.ok_or(ServiceError::NoSuch("subscriber"))
}

/// Unsubscribes a reader at once, as their own one-click link would:
/// whether that changed their status.
async fn unsubscribe_reader(state: &AppState, id: Uuid) -> Result<bool, ServiceError> {
    subscriber(state, id).await?;
    Ok(state.store.unsubscribe(id).await?)
}

/// Erases a reader with all their personal data (GDPR): in the database
/// (their deliveries stay, anonymised, for the statistics), and what the
/// outbox folder holds of them.
async fn erase_reader(state: &AppState, id: Uuid) -> Result<(), ServiceError> {
    let erased = state.store.erase_subscriber(id).await?.ok_or(ServiceError::NoSuch("subscriber"))?;
    match state.mailer.forget(erased.deliveries, erased.email).await {
        Ok(removed) if removed > 0 => tracing::info!(removed, "an erased reader's messages left the outbox folder"),
        Ok(_) => {}
        Err(error) => {
            tracing::error!(%error, "an erased reader's messages could not all be removed from the outbox folder")
        }
    }
    Ok(())
}
