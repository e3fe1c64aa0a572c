//! What every admin page shares: rendering, notices, and the error page.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::service::ServiceError;
use crate::store::StoreError;
use crate::web::AppState;
use crate::web::site_name::site_name;

pub use crate::web::pages::html;

/// A page with a heading and a message, for outcomes and errors.
#[derive(Template)]
#[template(path = "admin/notice.html")]
struct AdminNotice<'a> {
    site_name: &'a str,
    /// Empty: a notice shows no menu.
    csrf: &'a str,
    title: &'a str,
    message: &'a str,
}

pub fn notice_page(state: &AppState, status: StatusCode, title: &str, message: &str) -> HttpResponse {
    html(status, &AdminNotice { site_name: &state.settings.site_name, csrf: "", title, message })
}

/// Why an admin page did not do what was asked: a notice with a status.
#[derive(Debug, thiserror::Error)]
pub enum AdminPageError {
    #[error("the form's CSRF token is missing or wrong")]
    FormExpired,
    /// What the body's reader said.
    #[error("admin form too large: {0}")]
    FormTooLarge(String),
    /// What the form's parser said.
    #[error("admin form unreadable: {0}")]
    FormUnreadable(String),
    #[error("admin login is not set up")]
    LoginNotSetUp,
    #[error("the erasure was not confirmed")]
    ErasureNotConfirmed,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for AdminPageError {
    fn from(error: StoreError) -> Self {
        Self::Service(error.into())
    }
}

impl AdminPageError {
    /// The notice's heading and message.
    fn notice(&self) -> (Cow<'static, str>, Cow<'static, str>) {
        match self {
            Self::FormExpired => (
                "This form has expired".into(),
                "It did not carry this session's security token (it may be old, or come from another site). \
                 Go back, reload the page and try again."
                    .into(),
            ),
            Self::FormTooLarge(error) => {
                ("The form is too large".into(), format!("{error}. Shorten what you typed and try again.").into())
            }
            Self::FormUnreadable(error) => {
                ("The form could not be read".into(), format!("{error}. Go back and try again.").into())
            }
            Self::LoginNotSetUp => (
                "Admin login is not set up".into(),
                "Set ADMIN_EMAIL and ADMIN_PASSWORD_HASH (make the hash with `tickermail admin hash-password`) and restart."
                    .into(),
            ),
            Self::ErasureNotConfirmed => {
                ("Nothing was erased".into(), "Type the reader's address to confirm the erasure.".into())
            }
            Self::Service(ServiceError::NoSuch(what)) => {
                (format!("No such {what}").into(), "It may have been deleted. Go back and try again.".into())
            }
            Self::Service(ServiceError::UnknownStatus(message)) => ("Unknown status".into(), message.clone().into()),
            Self::Service(ServiceError::NoSuchDigest) => {
                ("Choose a digest".into(), "The digest to run must be the daily or the weekly one.".into())
            }
            Self::Service(ServiceError::EditionNotNow(state)) => (
                "Not possible now".into(),
                format!("This edition is {state}; it cannot be changed that way.").into(),
            ),
            Self::Service(ServiceError::Store(_)) => {
                ("The database is unavailable".into(), "Nothing was changed. Try again in a moment.".into())
            }
        }
    }
}

impl ResponseError for AdminPageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::FormExpired => StatusCode::FORBIDDEN,
            Self::FormTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::FormUnreadable(_) | Self::Service(ServiceError::UnknownStatus(_)) => StatusCode::BAD_REQUEST,
            Self::LoginNotSetUp | Self::Service(ServiceError::Store(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::ErasureNotConfirmed | Self::Service(ServiceError::NoSuchDigest) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Service(ServiceError::NoSuch(_)) => StatusCode::NOT_FOUND,
            Self::Service(ServiceError::EditionNotNow(_)) => StatusCode::CONFLICT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, message) = self.notice();
        html(self.status_code(), &AdminNotice { site_name: &site_name(), csrf: "", title: &title, message: &message })
    }
}

/// After a form: back to a page (303, so a reload does not post again).
pub fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((actix_web::http::header::LOCATION, location)).finish()
}

/// Times on admin pages: UTC, to the minute.
pub fn minute(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}
