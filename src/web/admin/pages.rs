//! What every admin page shares: rendering, notices and errors.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use crate::store::StoreError;
use crate::web::AppState;

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

pub fn unavailable(state: &AppState, error: StoreError) -> HttpResponse {
    tracing::error!(%error, "admin page failed");
    notice_page(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        "The database is unavailable",
        "Nothing was changed. Try again in a moment.",
    )
}

pub fn not_found(state: &AppState, what: &str) -> HttpResponse {
    notice_page(
        state,
        StatusCode::NOT_FOUND,
        &format!("No such {what}"),
        "It may have been deleted. Go back and try again.",
    )
}

/// After a form: back to a page (303, so a reload does not post again).
pub fn see_other(location: String) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((actix_web::http::header::LOCATION, location)).finish()
}

/// Times on admin pages: UTC, to the minute.
pub fn minute(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}
