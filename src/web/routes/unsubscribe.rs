//! Unsubscribe links: `GET` shows a button; `POST` unsubscribes at once. The
//! `POST` is also RFC 8058's one-click unsubscribe (a body of
//! `List-Unsubscribe=One-Click`, no session, no CSRF token: the token in the
//! URL is the credential).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};

use super::subscriber_for_manage_token;
use crate::domain::SubscriberStatus;
use crate::web::AppState;
use crate::web::pages::{PageError, UnsubscribePage, html, notice};

#[get("/unsubscribe/{token}")]
pub(super) async fn unsubscribe_page(
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let site_name = &state.settings.site_name;
    let subscriber = subscriber_for_manage_token(&state, &token).await?.ok_or(PageError::InvalidLink)?;
    Ok(if subscriber.status == SubscriberStatus::Unsubscribed {
        already_unsubscribed(site_name)
    } else {
        html(StatusCode::OK, &UnsubscribePage { site_name, token: &token, email: &subscriber.email })
    })
}

/// The body is ignored: a one-click client sends `List-Unsubscribe=One-Click`,
/// our page's button sends nothing else of use.
#[post("/unsubscribe/{token}")]
pub(super) async fn unsubscribe(
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let subscriber = subscriber_for_manage_token(&state, &token).await?.ok_or(PageError::InvalidLink)?;
    state.store.unsubscribe(subscriber.id).await?;
    tracing::info!(subscriber = %subscriber.id, "unsubscribed");
    Ok(already_unsubscribed(&state.settings.site_name))
}

fn already_unsubscribed(site_name: &str) -> HttpResponse {
    notice(
        StatusCode::OK,
        site_name,
        "You are unsubscribed",
        "You will get no more emails from us. Changed your mind? Sign up again on our sign-up page.",
    )
}
