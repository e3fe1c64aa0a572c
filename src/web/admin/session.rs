//! The admin pages' access: one account (`ADMIN_EMAIL`, `ADMIN_PASSWORD_HASH`),
//! a signed session cookie with an expiry, and a CSRF token on every form.
//!
//! The `/admin` scope's middleware checks the session (`access`); a page
//! takes `AdminSession` for its CSRF token. `AdminForm` checks the form's
//! CSRF token too, so a form posted from another site (or without its
//! token) is refused with 403 before the handler runs.

use std::future::{Ready, ready};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use chrono::Utc;
use futures_util::future::LocalBoxFuture;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::pages::AdminPageError;
use crate::web::AppState;

pub const SESSION_COOKIE: &str = "tickermail_admin";
/// A random value set with the login form, so that form has a CSRF token too.
pub const LOGIN_COOKIE: &str = "tickermail_login";

/// The login page: the one page under `/admin` open to all.
pub const LOGIN_PAGE: &str = "/admin/login";

/// A logged-in admin: the session cookie and the CSRF token of its forms.
#[derive(Clone)]
pub struct AdminSession {
    cookie: String,
    pub csrf: String,
}

impl AdminSession {
    /// The session the request's cookie opens, if it is valid now.
    pub fn of(request: &HttpRequest, state: &AppState) -> Option<Self> {
        let login = state.settings.admin_login.as_ref()?;
        let cookie = request.cookie(SESSION_COOKIE)?;
        let valid = state.tokens.verify_admin_session(
            cookie.value(),
            &login.email,
            login.password_hash.expose_secret(),
            Utc::now(),
        );
        valid.then(|| Self { csrf: state.tokens.csrf_token(cookie.value()), cookie: cookie.value().to_string() })
    }

    /// Whether `token` is this session's CSRF token.
    pub fn accepts(&self, state: &AppState, token: &str) -> bool {
        state.tokens.verify_csrf_token(&self.cookie, token)
    }
}

/// The session `access` found; without one (a handler outside the `/admin`
/// scope), the browser is sent to log in.
impl FromRequest for AdminSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(checked_session(request))
    }
}

fn checked_session(request: &HttpRequest) -> actix_web::Result<AdminSession> {
    let session = request.extensions().get::<AdminSession>().cloned();
    session.ok_or_else(|| InternalError::from_response("login required", to_login(request)).into())
}

/// Sends the browser to the login page, and back here afterwards when this was a page view.
pub fn to_login(request: &HttpRequest) -> HttpResponse {
    let location = if request.method() == actix_web::http::Method::GET {
        let here = request.uri().path_and_query().map_or("/admin", |p| p.as_str());
        format!("{LOGIN_PAGE}?next={}", url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>())
    } else {
        LOGIN_PAGE.to_string()
    };
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

/// A page to return to after logging in: only one of ours, and nothing
/// that could not go in a `Location` header as it is.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with("/admin")
                && path.chars().all(|c| c.is_ascii_graphic())
                && !path.contains("//")
                && !path.contains('\\') =>
        {
            path
        }
        _ => "/admin",
    }
}

/// A form posted by a logged-in admin with the right CSRF token; its fields are `T`.
pub struct AdminForm<T> {
    pub session: AdminSession,
    pub form: T,
}

/// The fields of a form that carries nothing but its CSRF token (a button).
#[derive(Deserialize)]
pub struct NoFields {}

#[derive(Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

impl<T: DeserializeOwned + 'static> FromRequest for AdminForm<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = checked_session(request);
        let body = web::Bytes::from_request(request, payload);
        let state = request.app_data::<web::Data<AppState>>().expect("app state is configured").clone();
        Box::pin(async move {
            let session = session?;
            let body = body.await.map_err(|error| AdminPageError::FormTooLarge(error.to_string()))?;
            let token = serde_urlencoded::from_bytes::<CsrfField>(&body).ok().and_then(|field| field.csrf);
            if !token.is_some_and(|token| session.accepts(&state, &token)) {
                return Err(AdminPageError::FormExpired.into());
            }
            let form = serde_urlencoded::from_bytes::<T>(&body)
                .map_err(|error| AdminPageError::FormUnreadable(error.to_string()))?;
            Ok(Self { session, form })
        })
    }
}

/// The session cookie: signed, `HttpOnly`, `SameSite=Strict`, `Secure` on https, for the admin paths only.
pub fn session_cookie(state: &AppState, value: String) -> Cookie<'static> {
    let max_age = actix_web::cookie::time::Duration::seconds(
        i64::try_from(state.settings.admin_session_ttl.as_secs()).unwrap_or(i64::MAX),
    );
    admin_cookie(state, SESSION_COOKIE, value).max_age(max_age).finish()
}

pub fn login_cookie(state: &AppState, value: String) -> Cookie<'static> {
    admin_cookie(state, LOGIN_COOKIE, value).finish()
}

/// Tells the browser to forget `name`.
pub fn removal_cookie(state: &AppState, name: &'static str) -> Cookie<'static> {
    let mut cookie = admin_cookie(state, name, String::new()).finish();
    cookie.make_removal();
    cookie
}

fn admin_cookie(state: &AppState, name: &'static str, value: String) -> actix_web::cookie::CookieBuilder<'static> {
    Cookie::build(name, value)
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings.base_url.starts_with("https://"))
}
