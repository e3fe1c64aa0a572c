//! The public pages, rendered from askama templates under `templates/`.

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::site_name::site_name;
use crate::domain::DigestFrequency;
use crate::store::StoreError;

/// The sign-up form's values, kept when the form is shown again with an error.
#[derive(Debug, Clone, Default)]
pub struct SignupValues {
    pub email: String,
    pub name: String,
    pub tickers: String,
}

#[derive(Template)]
#[template(path = "signup.html")]
pub struct SignupPage<'a> {
    pub site_name: &'a str,
    pub values: SignupValues,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "thanks.html")]
pub struct ThanksPage<'a> {
    pub site_name: &'a str,
}

#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage<'a> {
    pub site_name: &'a str,
    pub token: &'a str,
}

#[derive(Template)]
#[template(path = "confirm_expired.html")]
pub struct ConfirmExpiredPage<'a> {
    pub site_name: &'a str,
    pub token: &'a str,
}

#[derive(Template)]
#[template(path = "welcome.html")]
pub struct WelcomePage<'a> {
    pub site_name: &'a str,
    pub preferences_url: &'a str,
}

#[derive(Template)]
#[template(path = "unsubscribe.html")]
pub struct UnsubscribePage<'a> {
    pub site_name: &'a str,
    pub token: &'a str,
    pub email: &'a str,
}

#[derive(Template)]
#[template(path = "preferences.html")]
pub struct PreferencesPage<'a> {
    pub site_name: &'a str,
    pub token: &'a str,
    pub email: &'a str,
    pub values: PreferencesValues,
    pub frequencies: [DigestFrequency; 3],
    pub notice: Option<&'a str>,
    pub error: Option<String>,
}

/// The preferences form's values as shown (or as typed, when there is an error).
#[derive(Debug, Clone)]
pub struct PreferencesValues {
    pub name: String,
    pub tickers: String,
    pub alert_threshold: String,
    pub digest_frequency: String,
    pub alerts_enabled: bool,
}

/// A page with a heading and a message, for outcomes and errors.
#[derive(Template)]
#[template(path = "notice.html")]
pub struct NoticePage<'a> {
    pub site_name: &'a str,
    pub title: &'a str,
    pub message: &'a str,
    pub link: Option<(&'a str, &'a str)>,
}

/// Renders a page with a status. A template that fails to render is a bug,
/// not bad input; it is logged and answered with a plain 500.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status).content_type(ContentType::html()).body(body),
        Err(error) => {
            tracing::error!(%error, "page template failed to render");
            HttpResponse::InternalServerError().content_type(ContentType::plaintext()).body("internal error")
        }
    }
}

pub fn notice(status: StatusCode, site_name: &str, title: &str, message: &str) -> HttpResponse {
    html(status, &NoticePage { site_name, title, message, link: None })
}

/// Why a public page cannot show what was asked: a notice with a status.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the link's token does not check out")]
    InvalidLink,
    /// The reader's subscription ended: there is nothing left to manage.
    #[error("the subscription has ended")]
    SubscriptionEnded,
    #[error("database unavailable: {0}")]
    Unavailable(#[from] StoreError),
}

impl PageError {
    /// The notice's heading and message.
    fn notice(&self) -> (&'static str, &'static str) {
        match self {
            Self::InvalidLink => (
                "This link is not valid",
                "The link is incomplete, was changed, or belongs to a subscription that has ended. Open it again from your latest email, or sign up again.",
            ),
            Self::SubscriptionEnded => (
                "You are not subscribed",
                "This subscription has ended, so there are no preferences to change. Sign up again to get our emails.",
            ),
            // The reader should simply retry.
            Self::Unavailable(_) => {
                ("Please try again", "We could not process this just now. Please try again in a moment.")
            }
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidLink => StatusCode::NOT_FOUND,
            Self::SubscriptionEnded => StatusCode::GONE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, message) = self.notice();
        notice(self.status_code(), &site_name(), title, message)
    }
}

pub async fn not_found(state: actix_web::web::Data<super::AppState>) -> HttpResponse {
    notice(
        StatusCode::NOT_FOUND,
        &state.settings.site_name,
        "Page not found",
        "There is nothing at this address. Check the link, or go to the sign-up page.",
    )
}

pub const STYLESHEET: &str = include_str!("../../templates/site.css");
