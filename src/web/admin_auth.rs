//! `Authorization: Bearer $ADMIN_TOKEN` for the admin JSON API, as an extractor:
//! a handler that takes `AdminApi` cannot run without it.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::error::InternalError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::AppState;

/// Proof that the request carried the admin token.
pub struct AdminApi;

impl FromRequest for AdminApi {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authorised = request.app_data::<web::Data<AppState>>().is_some_and(|state| {
            let given = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match (given, &state.settings.admin_token) {
                (Some(given), Some(expected)) => same_secret(given.trim(), expected.expose_secret()),
                _ => false,
            }
        });
        ready(if authorised { Ok(AdminApi) } else { Err(unauthorized()) })
    }
}

/// Compares in constant time: hashes of equal length, no early exit.
pub(super) fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn unauthorized() -> actix_web::Error {
    let response = HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .json(json!({ "error": "Send Authorization: Bearer <ADMIN_TOKEN>." }));
    InternalError::from_response("unauthorized", response).into()
}

/// How a malformed JSON body to the admin API is answered: 400 (413 when too
/// large) with what was wrong, in JSON.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default().limit(super::ADMIN_BODY_LIMIT).error_handler(|error, _| {
        let status = match &error {
            actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
            | actix_web::error::JsonPayloadError::Overflow { .. } => actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            _ => actix_web::http::StatusCode::BAD_REQUEST,
        };
        let response =
            HttpResponse::build(status).json(json!({ "error": format!("The JSON body could not be read: {error}") }));
        InternalError::from_response(error, response).into()
    })
}
