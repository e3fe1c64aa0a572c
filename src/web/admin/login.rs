//! Logging in and out of the admin pages. Logins are rate-limited per client
//! IP, and a wrong password and an unknown email cost the same time: the
//! password is always checked against the admin's hash.

use actix_web::http::{StatusCode, header};
use actix_web::web::ServiceConfig;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use askama::Template;
use chrono::Utc;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::access::same_secret;
use super::pages::{AdminPageError, html};
use super::session::{
    AdminForm, LOGIN_COOKIE, LOGIN_PAGE, NoFields, SESSION_COOKIE, login_cookie, removal_cookie, safe_next,
    session_cookie,
};
use crate::config::AdminLogin;
use crate::web::AppState;
use crate::web::client_ip::client_ip;

pub(super) fn configure(config: &mut ServiceConfig) {
    config.service(login_form).service(login).service(logout);
}

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage<'a> {
    site_name: &'a str,
    /// Empty: no menu before logging in.
    csrf: &'a str,
    login_csrf: &'a str,
    next: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    nonce: &str,
    next: &str,
    email: &str,
    error: Option<&str>,
) -> HttpResponse {
    let csrf = state.tokens.csrf_token(nonce);
    let page = LoginPage { site_name: &state.settings.site_name, csrf: "", login_csrf: &csrf, next, email, error };
    let mut response = html(status, &page);
    if let Err(error) = response.add_cookie(&login_cookie(state, nonce.to_string())) {
        tracing::error!(%error, "could not set the login cookie");
    }
    response
}

#[get("/login")]
async fn login_form(
    request: HttpRequest,
    query: web::Query<NextQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    if state.settings.admin_login.is_none() {
        return Err(AdminPageError::LoginNotSetUp);
    }
    let nonce =
        request.cookie(LOGIN_COOKIE).map_or_else(|| hex::encode(rand::random::<[u8; 16]>()), |c| c.value().to_string());
    Ok(login_page(&state, StatusCode::OK, &nonce, safe_next(query.next.as_deref()), "", None))
}

#[derive(Deserialize)]
struct LoginInput {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

#[post("/login")]
async fn login(
    request: HttpRequest,
    form: web::Form<LoginInput>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let admin = state.settings.admin_login.as_ref().ok_or(AdminPageError::LoginNotSetUp)?;
    let nonce = request.cookie(LOGIN_COOKIE).map(|c| c.value().to_string());
    if !nonce.as_deref().is_some_and(|nonce| state.tokens.verify_csrf_token(nonce, &form.csrf)) {
        return Err(AdminPageError::FormExpired);
    }
    let nonce = nonce.unwrap_or_default();
    let next = safe_next(form.next.as_deref());
    if let Err(wait) = state.login_limiter.check(client_ip(&request, &state.settings.client_address)) {
        let mut response = login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            &nonce,
            next,
            &form.email,
            Some("Too many login attempts from your address. Wait a minute and try again."),
        );
        response.headers_mut().insert(header::RETRY_AFTER, wait.as_secs().max(1).into());
        return Ok(response);
    }
    if !credentials_match(admin, &form.email, form.password.clone()).await {
        tracing::info!("admin login failed");
        return Ok(login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            &nonce,
            next,
            &form.email,
            Some("Wrong email or password."),
        ));
    }
    let expires_at = Utc::now() + state.settings.admin_session_ttl;
    let session = state.tokens.admin_session(&admin.email, admin.password_hash.expose_secret(), expires_at);
    tracing::info!("admin logged in");
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, next.to_string()))
        .cookie(session_cookie(&state, session))
        .cookie(removal_cookie(&state, LOGIN_COOKIE))
        .finish())
}

/// Checks the password against the admin's hash whatever the email, so an
/// unknown email takes as long as a wrong password.
async fn credentials_match(admin: &AdminLogin, email: &str, password: String) -> bool {
    let hash = admin.password_hash.expose_secret().to_string();
    let password_matches = web::block(move || {
        PasswordHash::new(&hash).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
    })
    .await
    .unwrap_or(false);
    let email_matches = same_secret(&email.trim().to_lowercase(), &admin.email);
    password_matches & email_matches
}

#[post("/logout")]
async fn logout(_: AdminForm<NoFields>, state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, LOGIN_PAGE))
        .cookie(removal_cookie(&state, SESSION_COOKIE))
        .finish()
}

/// An argon2id hash of `password` in PHC form, for `ADMIN_PASSWORD_HASH`.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string())
}
