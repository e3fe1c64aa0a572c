//! The admin pages' access: one account (`ADMIN_EMAIL`, `ADMIN_PASSWORD_HASH`),
//! a signed session cookie with an expiry, and a CSRF token on every form.
//!
//! `AdminSession` is an extractor: a page that takes it cannot be seen
//! without logging in (the browser is sent to the login page). `AdminForm`
//! also checks the form's CSRF token, so a form posted from another site
//! (or without its token) is refused with 403 before the handler runs.

use std::future::{Ready, ready};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use chrono::Utc;
use futures_util::future::LocalBoxFuture;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::pages::notice_page;
use crate::web::AppState;

pub const SESSION_COOKIE: &str = "tickermail_admin";
/// A random value set with the login form, so that form has a CSRF token too.
pub const LOGIN_COOKIE: &str = "tickermail_login";

/// A logged-in admin: the session cookie and the CSRF token of its forms.
pub struct AdminSession {
    cookie: String,
    pub csrf: String,
}

impl AdminSession {
    fn of(request: &HttpRequest) -> Option<Self> {
        let state = request.app_data::<web::Data<AppState>>()?;
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

impl FromRequest for AdminSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::of(request).ok_or_else(|| to_login(request)))
    }
}

/// Sends the browser to the login page, and back here afterwards when this was a page view.
fn to_login(request: &HttpRequest) -> actix_web::Error {
    let location = if request.method() == actix_web::http::Method::GET {
        let here = request.uri().path_and_query().map_or("/admin", |p| p.as_str());
        format!("/admin/login?next={}", url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>())
    } else {
        "/admin/login".to_string()
    };
    let response = HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish();
    InternalError::from_response("login required", response).into()
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
        let session = AdminSession::of(request);
        let body = web::Bytes::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            let session = session.ok_or_else(|| to_login(&request))?;
            let body = body.await.map_err(|error| {
                let response = notice_page(
                    request.app_data::<web::Data<AppState>>().expect("app state is configured"),
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The form is too large",
                    &format!("{error}. Shorten what you typed and try again."),
                );
                actix_web::Error::from(InternalError::from_response("admin form too large", response))
            })?;
            let state = request.app_data::<web::Data<AppState>>().expect("app state is configured");
            let token = serde_urlencoded::from_bytes::<CsrfField>(&body).ok().and_then(|field| field.csrf);
            if !token.is_some_and(|token| session.accepts(state, &token)) {
                return Err(forbidden(state));
            }
            match serde_urlencoded::from_bytes::<T>(&body) {
                Ok(form) => Ok(Self { session, form }),
                Err(error) => {
                    let response = notice_page(
                        state,
                        StatusCode::BAD_REQUEST,
                        "The form could not be read",
                        &format!("{error}. Go back and try again."),
                    );
                    Err(InternalError::from_response("bad admin form", response).into())
                }
            }
        })
    }
}

/// The answer to a form without its CSRF token.
pub fn forbidden(state: &AppState) -> actix_web::Error {
    let response = notice_page(
        state,
        StatusCode::FORBIDDEN,
        "This form has expired",
        "It did not carry this session's security token (it may be old, or come from another site). \
         Go back, reload the page and try again.",
    );
    InternalError::from_response("CSRF token missing or wrong", response).into()
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
