//! Confirmation links: `GET` shows a button (mail scanners prefetch links),
//! `POST` confirms.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use chrono::Utc;

use crate::store::{ConfirmOutcome, StoreError};
use crate::tokens::{ConfirmationClaim, TokenKey};
use crate::web::AppState;
use crate::web::pages::{ConfirmExpiredPage, ConfirmPage, PageError, WelcomePage, html, notice};

enum TokenState {
    /// With the nonce it was checked against.
    Valid(ConfirmationClaim, String),
    Expired(ConfirmationClaim),
    Invalid,
}

/// Checks a token against its subscriber's current nonce: a link from before
/// their latest sign-up is invalid.
async fn check_token(state: &AppState, token: &str) -> Result<TokenState, StoreError> {
    let Some(id) = TokenKey::confirmation_token_subscriber(token) else {
        return Ok(TokenState::Invalid);
    };
    let Some(subscriber) = state.store.subscriber(id).await? else {
        return Ok(TokenState::Invalid);
    };
    Ok(match state.tokens.verify_confirmation_token(token, &subscriber.token_nonce) {
        None => TokenState::Invalid,
        Some(claim) if claim.issued_at + state.settings.confirmation_ttl < Utc::now() => TokenState::Expired(claim),
        Some(claim) => TokenState::Valid(claim, subscriber.token_nonce),
    })
}

#[get("/confirm/{token}")]
pub(super) async fn confirm_page(
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let site_name = &state.settings.site_name;
    Ok(match check_token(&state, &token).await? {
        TokenState::Invalid => return Err(PageError::InvalidLink),
        TokenState::Expired(_) => html(StatusCode::GONE, &ConfirmExpiredPage { site_name, token: &token }),
        TokenState::Valid(..) => html(StatusCode::OK, &ConfirmPage { site_name, token: &token }),
    })
}

#[post("/confirm/{token}")]
pub(super) async fn confirm(token: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let site_name = &state.settings.site_name;
    let (claim, nonce) = match check_token(&state, &token).await? {
        TokenState::Invalid => return Err(PageError::InvalidLink),
        TokenState::Expired(_) => return Ok(html(StatusCode::GONE, &ConfirmExpiredPage { site_name, token: &token })),
        TokenState::Valid(claim, nonce) => (claim, nonce),
    };
    let resend_interval = state.settings.confirmation_resend_interval;
    Ok(match state.store.confirm_subscriber(claim.subscriber_id, &nonce, resend_interval).await? {
        ConfirmOutcome::Confirmed => {
            state.worker_wakeup.notify_one();
            let subscriber = state.store.subscriber(claim.subscriber_id).await?.ok_or(PageError::InvalidLink)?;
            let tickers: Vec<_> = subscriber.watchlist.tickers().iter().collect();
            super::start_following(&state, &subscriber, &tickers).await;
            let preferences_url = format!(
                "{}/preferences/{}",
                state.settings.base_url,
                state.tokens.manage_token(subscriber.id, &subscriber.token_nonce)
            );
            html(StatusCode::OK, &WelcomePage { site_name, preferences_url: &preferences_url })
        }
        // An old link may be in someone else's hands: the preferences link goes
        // to the reader's mailbox, not onto this page.
        ConfirmOutcome::AlreadyConfirmed { preferences_link_queued } => {
            if preferences_link_queued {
                state.worker_wakeup.notify_one();
            }
            notice(
                StatusCode::OK,
                site_name,
                "You’re already confirmed",
                "You’re already confirmed — we’ve emailed you a link to your preferences.",
            )
        }
        ConfirmOutcome::NoLongerSubscribed => notice(
            StatusCode::CONFLICT,
            site_name,
            "You are no longer subscribed",
            "This address was unsubscribed after this link was sent. To get our emails again, sign up again.",
        ),
        ConfirmOutcome::NotFound => return Err(PageError::InvalidLink),
    })
}

/// Sends a fresh confirmation link, for a link that expired.
#[post("/confirm/{token}/resend")]
pub(super) async fn resend(token: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let claim = match check_token(&state, &token).await? {
        TokenState::Invalid => return Err(PageError::InvalidLink),
        TokenState::Expired(claim) | TokenState::Valid(claim, _) => claim,
    };
    if state.store.resend_confirmation(claim.subscriber_id, state.settings.confirmation_resend_interval).await? {
        state.worker_wakeup.notify_one();
    }
    Ok(notice(
        StatusCode::OK,
        &state.settings.site_name,
        "Check your inbox",
        "If this address is still waiting for confirmation, a new link is on its way.",
    ))
}
