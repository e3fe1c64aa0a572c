//! The public routes: sign-up, confirmation, unsubscribe and preferences
//! links, the widgets' API, and health checks.

mod confirm;
mod health;
mod preferences;
mod public_api;
mod signup;
mod unsubscribe;

use actix_web::web::ServiceConfig;

use crate::domain::{Subscriber, Ticker};
use crate::jobs::alerts::mark_current_moves_seen;
use crate::store::{AlertWatcher, StoreError};
use crate::tokens::TokenKey;
use crate::web::AppState;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(health::health)
        .service(health::ready)
        .service(health::stylesheet)
        .service(signup::signup_page)
        .service(signup::subscribe)
        .service(confirm::confirm_page)
        .service(confirm::confirm)
        .service(confirm::resend)
        .service(unsubscribe::unsubscribe_page)
        .service(unsubscribe::unsubscribe)
        .service(preferences::preferences_page)
        .service(preferences::save_preferences)
        .service(public_api::quotes)
        .service(public_api::stories);
}

/// Today's moves of `tickers`, which `subscriber` starts following now, count
/// as already alerted: nobody is alerted to a move that happened before they
/// followed the ticker. A failure is logged; the page goes on.
async fn start_following(state: &AppState, subscriber: &Subscriber, tickers: &[&Ticker]) {
    if tickers.is_empty() {
        return;
    }
    let watcher = AlertWatcher {
        id: subscriber.id,
        email: subscriber.email.clone(),
        tickers: tickers.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(","),
        alert_threshold_pct: subscriber.alert_threshold.percent(),
    };
    let now = crate::store::now();
    if let Err(error) = mark_current_moves_seen(&state.store, &watcher, now, state.settings.alert_max_quote_age).await {
        tracing::error!(%error, "could not record today's moves as seen for new tickers");
    }
}

/// The subscriber a manage token (unsubscribe, preferences) belongs to, if
/// the token checks out against their current subscription.
async fn subscriber_for_manage_token(state: &AppState, token: &str) -> Result<Option<Subscriber>, StoreError> {
    let Some(id) = TokenKey::manage_token_subscriber(token) else {
        return Ok(None);
    };
    Ok(state
        .store
        .subscriber(id)
        .await?
        .filter(|subscriber| state.tokens.verify_manage_token(token, &subscriber.token_nonce)))
}
