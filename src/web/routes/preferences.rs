//! The preferences page, reached from the link in every email.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;

use super::subscriber_for_manage_token;
use crate::domain::{AlertThreshold, DigestFrequency, Subscriber, SubscriberName, SubscriberStatus, Watchlist};
use crate::store::PreferencesUpdate;
use crate::web::AppState;
use crate::web::pages::{PreferencesPage, PreferencesValues, html, invalid_link, notice, unavailable};

#[derive(Deserialize)]
struct PreferencesForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    tickers: String,
    #[serde(default)]
    alert_threshold: String,
    #[serde(default)]
    digest_frequency: String,
    /// A checkbox: present when ticked.
    alerts_enabled: Option<String>,
}

impl PreferencesForm {
    fn parse(&self) -> Result<PreferencesUpdate, String> {
        Ok(PreferencesUpdate {
            name: SubscriberName::parse(&self.name)?,
            watchlist: Watchlist::parse_text(&self.tickers)?,
            alert_threshold: AlertThreshold::parse(&self.alert_threshold)?,
            digest_frequency: self.digest_frequency.parse::<DigestFrequency>()?,
            alerts_enabled: self.alerts_enabled.is_some(),
        })
    }

    fn values(&self) -> PreferencesValues {
        PreferencesValues {
            name: self.name.clone(),
            tickers: self.tickers.clone(),
            alert_threshold: self.alert_threshold.clone(),
            digest_frequency: self.digest_frequency.clone(),
            alerts_enabled: self.alerts_enabled.is_some(),
        }
    }
}

fn stored_values(subscriber: &Subscriber) -> PreferencesValues {
    PreferencesValues {
        name: subscriber.name.clone(),
        tickers: subscriber.watchlist.to_string(),
        alert_threshold: subscriber.alert_threshold.to_string(),
        digest_frequency: subscriber.digest_frequency.as_str().into(),
        alerts_enabled: subscriber.alerts_enabled,
    }
}

fn no_longer_subscribed(site_name: &str) -> HttpResponse {
    notice(
        StatusCode::GONE,
        site_name,
        "You are not subscribed",
        "This subscription has ended, so there are no preferences to change. Sign up again to get our emails.",
    )
}

fn is_active(subscriber: &Subscriber) -> bool {
    matches!(subscriber.status, SubscriberStatus::Pending | SubscriberStatus::Confirmed)
}

#[get("/preferences/{token}")]
pub(super) async fn preferences_page(token: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let site_name = &state.settings.site_name;
    match subscriber_for_manage_token(&state, &token).await {
        Err(error) => unavailable(site_name, error),
        Ok(None) => invalid_link(site_name),
        Ok(Some(subscriber)) if !is_active(&subscriber) => no_longer_subscribed(site_name),
        Ok(Some(subscriber)) => html(
            StatusCode::OK,
            &PreferencesPage {
                site_name,
                token: &token,
                email: &subscriber.email,
                values: stored_values(&subscriber),
                frequencies: DigestFrequency::ALL,
                notice: None,
                error: None,
            },
        ),
    }
}

#[post("/preferences/{token}")]
pub(super) async fn save_preferences(
    token: web::Path<String>,
    form: web::Form<PreferencesForm>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let site_name = &state.settings.site_name;
    let subscriber = match subscriber_for_manage_token(&state, &token).await {
        Err(error) => return unavailable(site_name, error),
        Ok(None) => return invalid_link(site_name),
        Ok(Some(subscriber)) if !is_active(&subscriber) => return no_longer_subscribed(site_name),
        Ok(Some(subscriber)) => subscriber,
    };
    let page = |values, notice, error| PreferencesPage {
        site_name,
        token: &token,
        email: &subscriber.email,
        values,
        frequencies: DigestFrequency::ALL,
        notice,
        error,
    };
    let update = match form.parse() {
        Ok(update) => update,
        Err(message) => return html(StatusCode::UNPROCESSABLE_ENTITY, &page(form.values(), None, Some(message))),
    };
    match state.store.update_preferences(subscriber.id, &update).await {
        Err(error) => unavailable(site_name, error),
        Ok(false) => no_longer_subscribed(site_name),
        Ok(true) => match state.store.subscriber(subscriber.id).await {
            Ok(Some(saved)) => {
                let added: Vec<_> =
                    saved.watchlist.tickers().iter().filter(|t| !subscriber.watchlist.tickers().contains(t)).collect();
                super::start_following(&state, &saved, &added).await;
                html(StatusCode::OK, &page(stored_values(&saved), Some("Your preferences are saved."), None))
            }
            Ok(None) => invalid_link(site_name),
            Err(error) => unavailable(site_name, error),
        },
    }
}
