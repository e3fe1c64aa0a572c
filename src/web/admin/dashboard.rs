//! The dashboard: the list, the latest editions, the outbox, failures, the
//! newest quotes and stories, and when the scheduled jobs run next; as a
//! page, and as JSON with the API's counts of subscribers and deliveries.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::web::ServiceConfig;
use actix_web::{HttpResponse, get, web};
use askama::Template;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::api::AdminApiError;
use super::pages::{AdminPageError, html};
use super::session::AdminSession;
use crate::config::Settings;
use crate::domain::{DeliveryStatus, StoredQuote, Story};
use crate::store::{DayCounts, DeliveryFailure, EditionSummary, Store, StoreError};
use crate::web::AppState;

const DAYS: i64 = 30;
const EDITIONS: u32 = 5;
const FAILURES: u32 = 10;
const QUOTES: u32 = 10;
const STORIES: u32 = 10;

pub(super) fn configure(config: &mut ServiceConfig) {
    config.service(dashboard_page).service(dashboard).service(stats);
}

/// What the dashboard shows.
#[derive(Serialize)]
pub struct Dashboard {
    pub subscribers: BTreeMap<&'static str, i64>,
    /// Sign-ups and unsubscribes per day (UTC), the last 30 days.
    pub days: Vec<DayCounts>,
    pub editions: Vec<EditionSummary>,
    /// Deliveries waiting to be sent, and being sent.
    pub queued: i64,
    pub sending: i64,
    pub failures: Vec<DeliveryFailure>,
    pub quotes: Vec<StoredQuote>,
    pub stories: Vec<Story>,
    pub next_runs: Vec<NextRun>,
}

/// When a scheduled job runs next: a time for a cron schedule, an interval for a repeated poll.
#[derive(Serialize)]
pub struct NextRun {
    pub job: &'static str,
    pub at: Option<DateTime<Utc>>,
    pub every_seconds: Option<u64>,
}

impl Dashboard {
    pub async fn load(store: &Store, settings: &Settings) -> Result<Self, StoreError> {
        let now = Utc::now();
        let outbox = store.delivery_counts().await?;
        let in_status = |status| outbox.iter().filter(|c| c.status == status).map(|c| c.count).sum();
        Ok(Self {
            subscribers: subscribers_by_status(store).await?,
            days: store.daily_signups(first_day(now), now.date_naive()).await?,
            editions: store.recent_editions(EDITIONS).await?,
            queued: in_status(DeliveryStatus::Queued),
            sending: in_status(DeliveryStatus::Sending),
            failures: store.recent_failures(FAILURES).await?,
            quotes: store.newest_quotes(QUOTES).await?,
            stories: store.all_recent_stories(STORIES).await?,
            next_runs: next_runs(settings, now),
        })
    }
}

async fn subscribers_by_status(store: &Store) -> Result<BTreeMap<&'static str, i64>, StoreError> {
    Ok(store.subscriber_counts().await?.into_iter().map(|(status, count)| (status.as_str(), count)).collect())
}

/// Midnight (UTC) at the start of the dashboard's first day.
fn first_day(now: DateTime<Utc>) -> DateTime<Utc> {
    (now.date_naive() - chrono::Duration::days(DAYS - 1)).and_time(chrono::NaiveTime::MIN).and_utc()
}

fn next_runs(settings: &Settings, now: DateTime<Utc>) -> Vec<NextRun> {
    let local_now = now.with_timezone(&settings.time_zone);
    let next = |schedule: &Option<croner::Cron>| {
        let next = schedule.as_ref()?.find_next_occurrence(&local_now, false).ok()?;
        Some(next.with_timezone(&Utc))
    };
    let every = |job, interval: std::time::Duration| NextRun { job, at: None, every_seconds: Some(interval.as_secs()) };
    let mut runs = vec![
        NextRun { job: "daily digest", at: next(&settings.digest_schedule), every_seconds: None },
        NextRun { job: "weekly digest", at: next(&settings.weekly_digest_schedule), every_seconds: None },
        NextRun { job: "price alert check", at: next(&settings.alert_schedule), every_seconds: None },
        every("quote poll (each exchange while it trades)", settings.quote_poll_interval),
    ];
    if !settings.feed_urls.is_empty() {
        runs.push(every("feed poll", settings.feed_poll_interval));
    }
    runs
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage<'a> {
    site_name: &'a str,
    csrf: &'a str,
    dashboard: Dashboard,
    busiest_day: i64,
}

#[get("")]
async fn dashboard_page(session: AdminSession, state: web::Data<AppState>) -> Result<HttpResponse, AdminPageError> {
    let shown = Dashboard::load(&state.store, &state.settings).await?;
    let busiest_day = shown.days.iter().map(|d| d.signups.max(d.unsubscribes)).max().unwrap_or(0).max(1);
    let page =
        DashboardPage { site_name: &state.settings.site_name, csrf: &session.csrf, dashboard: shown, busiest_day };
    Ok(html(StatusCode::OK, &page))
}

/// What the dashboard page shows, as JSON.
#[get("/api/dashboard")]
async fn dashboard(state: web::Data<AppState>) -> Result<HttpResponse, AdminApiError> {
    Ok(HttpResponse::Ok().json(Dashboard::load(&state.store, &state.settings).await?))
}

/// Subscribers by status and the outbox by kind and status.
#[get("/api/stats")]
async fn stats(state: web::Data<AppState>) -> Result<HttpResponse, AdminApiError> {
    let subscribers = subscribers_by_status(&state.store).await?;
    let deliveries = state.store.delivery_counts().await?;
    Ok(HttpResponse::Ok().json(json!({ "subscribers": subscribers, "deliveries": deliveries })))
}
