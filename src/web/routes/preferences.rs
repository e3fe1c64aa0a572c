//! The preferences page, reached from the link in every email.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;

use super::subscriber_for_manage_token;
use crate::domain::{AlertThreshold, DigestFrequency, Subscriber, SubscriberName, SubscriberStatus, Watchlist};
use crate::store::PreferencesUpdate;
use crate::web::AppState;
use crate::web::pages::{PageError, PreferencesPage, PreferencesValues, html};
use crate::web::validation::InvalidField;

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
    fn parse(&self) -> Result<PreferencesUpdate, InvalidField> {
        Ok(PreferencesUpdate {
            name: SubscriberName::parse(&self.name).map_err(InvalidField::named("name"))?,
            watchlist: Watchlist::parse_text(&self.tickers).map_err(InvalidField::named("tickers"))?,
            alert_threshold: AlertThreshold::parse(&self.alert_threshold)
                .map_err(InvalidField::named("alert_threshold"))?,
            digest_frequency: self
                .digest_frequency
                .parse::<DigestFrequency>()
                .map_err(InvalidField::named("digest_frequency"))?,
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

/// The reader whose token this is, while their subscription lasts.
async fn active_subscriber(state: &AppState, token: &str) -> Result<Subscriber, PageError> {
    let subscriber = subscriber_for_manage_token(state, token).await?.ok_or(PageError::InvalidLink)?;
    match subscriber.status {
        SubscriberStatus::Pending | SubscriberStatus::Confirmed => Ok(subscriber),
        _ => Err(PageError::SubscriptionEnded),
    }
}

#[get("/preferences/{token}")]
pub(super) async fn preferences_page(
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let subscriber = active_subscriber(&state, &token).await?;
    Ok(html(
        StatusCode::OK,
        &PreferencesPage {
            site_name: &state.settings.site_name,
            token: &token,
            email: &subscriber.email,
            values: stored_values(&subscriber),
            frequencies: DigestFrequency::ALL,
            notice: None,
            error: None,
        },
    ))
}

#[post("/preferences/{token}")]
pub(super) async fn save_preferences(
    token: web::Path<String>,
    form: web::Form<PreferencesForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let subscriber = active_subscriber(&state, &token).await?;
    let page = |values, notice, error| PreferencesPage {
        site_name: &state.settings.site_name,
        token: &token,
        email: &subscriber.email,
        values,
        frequencies: DigestFrequency::ALL,
        notice,
        error,
    };
    let update = match form.parse() {
        Ok(update) => update,
        Err(invalid) => {
            return Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &page(form.values(), None, Some(invalid.message))));
        }
    };
    if !state.store.update_preferences(subscriber.id, &update).await? {
        return Err(PageError::SubscriptionEnded);
    }
    let saved = state.store.subscriber(subscriber.id).await?.ok_or(PageError::InvalidLink)?;
    let added: Vec<_> =
        saved.watchlist.tickers().iter().filter(|t| !subscriber.watchlist.tickers().contains(t)).collect();
    super::start_following(&state, &saved, &added).await;
    Ok(html(StatusCode::OK, &page(stored_values(&saved), Some("Your preferences are saved."), None)))
}
