//! Who may reach `/admin`. The whole scope is behind `require_admin`, so a
//! route added to it cannot be reached without credentials even when its
//! handler asks for none: the JSON API (`/admin/api/…`) takes
//! `Authorization: Bearer $ADMIN_TOKEN` (401 without it), the pages take the
//! session cookie (a browser without one is sent to log in), and the login
//! page is open to all.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::api::AdminApiError;
use super::session::{AdminSession, LOGIN_PAGE, to_login};
use crate::web::AppState;

pub async fn require_admin(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = request.app_data::<web::Data<AppState>>().expect("app state is configured").clone();
    let path = request.path();
    if path == "/admin/api" || path.starts_with("/admin/api/") {
        if !carries_admin_token(&request, &state) {
            return Ok(request.error_response(AdminApiError::Unauthorized).map_into_right_body());
        }
    } else if path != LOGIN_PAGE {
        let Some(session) = AdminSession::of(request.request(), &state) else {
            let response = to_login(request.request());
            return Ok(request.into_response(response).map_into_right_body());
        };
        request.extensions_mut().insert(session);
    }
    next.call(request).await.map(ServiceResponse::map_into_left_body)
}

fn carries_admin_token(request: &ServiceRequest, state: &AppState) -> bool {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (given, &state.settings.admin_token) {
        (Some(given), Some(expected)) => same_secret(given.trim(), expected.expose_secret()),
        _ => false,
    }
}

/// Compares in constant time: hashes of equal length, no early exit.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}
