//! The sign-up form and `POST /subscriptions`, for form posts (from our page
//! or one embedded on another site) and for JSON clients.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{SubscriberEmail, SubscriberName, Watchlist};
use crate::store::{SignupOutcome, SignupRecord, StoreError};
use crate::web::AppState;
use crate::web::client_ip::client_ip;
use crate::web::pages::{SignupPage, SignupValues, ThanksPage, html};
use crate::web::validation::InvalidField;

#[get("/")]
pub(super) async fn signup_page(state: web::Data<AppState>) -> HttpResponse {
    html(
        StatusCode::OK,
        &SignupPage { site_name: &state.settings.site_name, values: SignupValues::default(), error: None },
    )
}

/// The fields as a form sends them. `website` is the honeypot: hidden from
/// people, filled in by bots.
#[derive(Deserialize, Default)]
struct SignupForm {
    email: Option<String>,
    name: Option<String>,
    tickers: Option<String>,
    website: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TickersField {
    List(Vec<String>),
    Text(String),
}

#[derive(Deserialize)]
struct SignupJson {
    email: Option<String>,
    name: Option<String>,
    tickers: Option<TickersField>,
    website: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Form,
    Json,
}

#[derive(Debug, thiserror::Error)]
enum SubscribeError {
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    #[error("Too many sign-ups from your network. Please try again later.")]
    RateLimited(Duration),
    #[error("Sign-ups are unavailable for a moment. Please try again shortly.")]
    Store(#[from] StoreError),
}

impl SubscribeError {
    fn status(&self) -> StatusCode {
        match self {
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

#[post("/subscriptions")]
pub(super) async fn subscribe(request: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let format = request_format(&request);
    let mut values = SignupValues::default();
    let result = match format {
        Some(format) => handle_signup(&request, &body, format, &state, &mut values).await,
        None => Err(SubscribeError::UnsupportedMediaType(
            "Send the sign-up as application/x-www-form-urlencoded or application/json.".into(),
        )),
    };
    match (result, format.unwrap_or(Format::Json)) {
        (Ok(()), Format::Form) => html(StatusCode::OK, &ThanksPage { site_name: &state.settings.site_name }),
        (Ok(()), Format::Json) => HttpResponse::Accepted().json(json!({
            "status": "pending_confirmation",
            "message": "Thanks! If this address can receive mail, a confirmation link is on its way.",
        })),
        (Err(error), format) => error_response(error, format, values, &state),
    }
}

fn request_format(request: &HttpRequest) -> Option<Format> {
    let content_type = request.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => Some(Format::Form),
        "application/json" => Some(Format::Json),
        _ => None,
    }
}

async fn handle_signup(
    request: &HttpRequest,
    body: &[u8],
    format: Format,
    state: &AppState,
    values: &mut SignupValues,
) -> Result<(), SubscribeError> {
    let ip = client_ip(request, &state.settings.client_address);
    state.signup_limiter.check(ip).map_err(SubscribeError::RateLimited)?;
    let (form, tickers) = read_fields(body, format)?;
    *values = SignupValues {
        email: form.email.clone().unwrap_or_default(),
        name: form.name.clone().unwrap_or_default(),
        tickers: match &tickers {
            Some(TickersField::Text(text)) => text.clone(),
            Some(TickersField::List(list)) => list.join(", "),
            None => String::new(),
        },
    };
    if form.website.as_deref().is_some_and(|w| !w.trim().is_empty()) {
        tracing::info!("honeypot filled in: sign-up answered but not stored");
        return Ok(());
    }
    let signup = SignupRecord {
        email: SubscriberEmail::parse(form.email.as_deref().unwrap_or_default())
            .map_err(InvalidField::named("email"))?,
        name: SubscriberName::parse(form.name.as_deref().unwrap_or_default()).map_err(InvalidField::named("name"))?,
        watchlist: match &tickers {
            None => Ok(Watchlist::default()),
            Some(TickersField::Text(text)) => Watchlist::parse_text(text),
            Some(TickersField::List(list)) => Watchlist::parse_items(list.iter().map(String::as_str)),
        }
        .map_err(InvalidField::named("tickers"))?,
        consent_ip: Some(ip.to_string()),
        consent_user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().filter(|c| !c.is_control()).take(512).collect()),
        consent_source: consent_source(request, format, &state.settings.base_url),
    };
    let outcome = state.signups.record(signup).await?;
    if let SignupOutcome::ConfirmationQueued { .. } = outcome {
        state.worker_wakeup.notify_one();
    }
    tracing::info!(outcome = ?outcome, "sign-up recorded");
    Ok(())
}

/// Reads the body into the form's fields; the tickers keep their JSON shape.
fn read_fields(body: &[u8], format: Format) -> Result<(SignupForm, Option<TickersField>), SubscribeError> {
    match format {
        Format::Form => {
            let mut form: SignupForm = serde_urlencoded::from_bytes(body)
                .map_err(|e| SubscribeError::Malformed(format!("The form data could not be read: {e}.")))?;
            let tickers = form.tickers.take().map(TickersField::Text);
            Ok((form, tickers))
        }
        Format::Json => {
            let json: SignupJson = serde_json::from_slice(body).map_err(|e| {
                SubscribeError::Malformed(format!(
                    "The JSON body could not be read: {e}. Send {{\"email\": \"…\", \"name\": \"…\", \"tickers\": [\"NOK\"]}}."
                ))
            })?;
            Ok((SignupForm { email: json.email, name: json.name, tickers: None, website: json.website }, json.tickers))
        }
    }
}

/// Where the sign-up came from, for the consent record: our own form, the
/// API, or the page that embeds the form on another site.
fn consent_source(request: &HttpRequest, format: Format, base_url: &str) -> String {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .or_else(|| request.headers().get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().filter(|c| !c.is_control()).take(200).collect::<String>());
    match (format, origin) {
        (Format::Json, _) => "api".into(),
        (Format::Form, Some(origin)) if !origin.starts_with(base_url) => format!("embedded form at {origin}"),
        (Format::Form, _) => "form".into(),
    }
}

fn error_response(error: SubscribeError, format: Format, values: SignupValues, state: &AppState) -> HttpResponse {
    if let SubscribeError::Store(store_error) = &error {
        tracing::error!(error = %store_error, "sign-up could not be stored");
    }
    let status = error.status();
    let mut response = match format {
        Format::Form => {
            html(status, &SignupPage { site_name: &state.settings.site_name, values, error: Some(error.to_string()) })
        }
        Format::Json => {
            let field = match &error {
                SubscribeError::Invalid(invalid) => Some(invalid.field),
                _ => None,
            };
            HttpResponse::build(status).json(json!({ "error": error.to_string(), "field": field }))
        }
    };
    if let SubscribeError::RateLimited(retry_after) = error {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(seconds.max(1)));
    }
    response
}
