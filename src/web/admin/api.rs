//! What every admin API handler shares: its error answers (`{"error": …}`
//! with a status), how a malformed JSON body is answered, and list limits.

use actix_web::error::JsonPayloadError;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError, web};
use serde::Deserialize;
use serde_json::json;

use super::service::ServiceError;
use crate::store::StoreError;
use crate::web::validation::InvalidField;

/// Admins push stories with their HTML, which can be longer than a public form.
const ADMIN_BODY_LIMIT: usize = 1024 * 1024;

/// Why the admin API did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AdminApiError {
    #[error("no admin token, or a wrong one")]
    Unauthorized,
    /// A body, query or header that cannot be read: what is wrong with it.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    /// An edition id without deliveries: no such edition, or one that reached nobody.
    #[error("No such edition, or it had no readers.")]
    NoDeliveries,
    #[error("A request with this Idempotency-Key is still under way.")]
    KeyInUse,
    /// A value that cannot be accepted; `index` is its item's place in a pushed array.
    #[error("{field}")]
    Invalid { field: InvalidField, index: Option<usize> },
    /// There is no such email to preview: why.
    #[error("{0}")]
    NoPreview(String),
    #[error("Confirm that these people consented to get our emails: add ?consent=yes.")]
    NoConsent,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for AdminApiError {
    fn from(error: StoreError) -> Self {
        Self::Service(error.into())
    }
}

impl From<InvalidField> for AdminApiError {
    fn from(field: InvalidField) -> Self {
        Self::Invalid { field, index: None }
    }
}

impl ResponseError for AdminApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) | Self::Service(ServiceError::UnknownStatus(_)) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NoDeliveries | Self::Service(ServiceError::NoSuch(_)) => StatusCode::NOT_FOUND,
            Self::KeyInUse | Self::Service(ServiceError::EditionNotNow(_)) => StatusCode::CONFLICT,
            Self::Invalid { .. } | Self::NoPreview(_) | Self::NoConsent | Self::Service(ServiceError::NoSuchDigest) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Service(ServiceError::Store(_)) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let invalid = |field: &InvalidField, index: Option<usize>| json!({ "error": field.message, "field": field.field, "index": index });
        let body = match self {
            Self::Unauthorized => json!({ "error": "Send Authorization: Bearer <ADMIN_TOKEN>." }),
            Self::Invalid { field, index } => invalid(field, *index),
            Self::NoConsent => json!({ "error": self.to_string(), "field": "consent" }),
            Self::Service(ServiceError::NoSuch(what)) => json!({ "error": format!("No such {what}.") }),
            Self::Service(ServiceError::UnknownStatus(_)) => {
                json!({ "error": "status must be pending, confirmed, unsubscribed or bounced." })
            }
            Self::Service(ServiceError::NoSuchDigest) => {
                invalid(&InvalidField::new("frequency", "frequency must be daily or weekly"), None)
            }
            Self::Service(ServiceError::EditionNotNow(state)) => json!({
                "error": format!("The edition is {state}; it cannot be changed that way."), "state": state,
            }),
            Self::Service(ServiceError::Store(_)) => {
                json!({ "error": "The database is unavailable; try again shortly." })
            }
            Self::BadRequest(_) | Self::TooLarge(_) | Self::NoDeliveries | Self::KeyInUse | Self::NoPreview(_) => {
                json!({ "error": self.to_string() })
            }
        };
        let mut response = HttpResponse::build(self.status_code());
        if let Self::Unauthorized = self {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(body)
    }
}

/// How a malformed JSON body to the admin API is answered: 400 (413 when too
/// large) with what was wrong.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(ADMIN_BODY_LIMIT).error_handler(|error, _| {
        let message = format!("The JSON body could not be read: {error}");
        match error {
            JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
                AdminApiError::TooLarge(message)
            }
            _ => AdminApiError::BadRequest(message),
        }
        .into()
    })
}

/// `?limit=` of a list.
#[derive(Deserialize)]
pub struct ListQuery {
    pub limit: Option<u32>,
}

/// The lists of stories, quotes and editions.
pub const LISTED: ListLimit = ListLimit { default: 50, max: 200 };

/// How many items a list answers with: `?limit=` from 1 to `max`, `default` without one.
#[derive(Clone, Copy)]
pub struct ListLimit {
    pub default: u32,
    pub max: u32,
}

impl ListLimit {
    pub fn of(self, asked: Option<u32>) -> Result<u32, AdminApiError> {
        Some(asked.unwrap_or(self.default))
            .filter(|limit| (1..=self.max).contains(limit))
            .ok_or_else(|| AdminApiError::BadRequest(format!("limit must be from 1 to {}.", self.max)))
    }
}
