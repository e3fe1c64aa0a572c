//! What the admin services share, whichever surface calls them: the reasons
//! they give for not doing what was asked, and ids read from paths.

use uuid::Uuid;

use crate::domain::EditionState;
use crate::store::StoreError;

/// Why an admin service did not do what was asked. `AdminApiError` and
/// `AdminPageError` word each reason for their surface.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such thing (a story, an edition…), or an id that cannot be one.
    #[error("no such {0}")]
    NoSuch(&'static str),
    /// A subscriber status filter that is no status: what is wrong with it.
    #[error("{0}")]
    UnknownStatus(String),
    /// A digest to run that is neither the daily nor the weekly one.
    #[error("no such digest")]
    NoSuchDigest,
    /// The edition's state (given) does not allow the change.
    #[error("the edition is {0}")]
    EditionNotNow(EditionState),
    #[error("database unavailable: {0}")]
    Store(#[from] StoreError),
}

/// The id in a path, if it can be one of ours: otherwise there is no such `what`.
pub fn id(text: &str, what: &'static str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(text).map_err(|_| ServiceError::NoSuch(what))
}
