//! Stories over the admin API: pushed by the site's CMS, listed, hidden and shown.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::set_hidden;
use crate::sources::{RawStory, clean_story};
use crate::store::StoryUpsert;
use crate::web::AppState;
use crate::web::admin::api::{AdminApiError, LISTED, ListQuery};
use crate::web::validation::InvalidField;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoryInput {
    title: String,
    url: String,
    published_at: DateTime<Utc>,
    author: Option<String>,
    /// Plain text or HTML; either way only its text is kept.
    summary: Option<String>,
    /// The story's body, for finding its tickers and, without a summary, its summary.
    html: Option<String>,
    #[serde(default)]
    tickers: Vec<String>,
    /// The CMS's own id; without one the url identifies the story.
    guid: Option<String>,
}

/// A story pushed by the site's CMS. Pushing the same guid again updates it
/// in place: 201 when it was new, 200 otherwise, with the story as stored.
#[post("/api/stories")]
pub(super) async fn push_story(
    body: web::Json<StoryInput>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminApiError> {
    let input = body.into_inner();
    let raw = RawStory {
        guid: input.guid,
        source: "api".into(),
        title: input.title,
        url: input.url,
        author: input.author,
        summary_html: input.summary,
        body_html: input.html,
        categories: Vec::new(),
        tickers: input.tickers,
        published_at: Some(input.published_at),
    };
    let story = clean_story(raw, crate::store::now()).map_err(|error| InvalidField::new(error.field, error.message))?;
    let (outcome, stored) = state.store.upsert_story(&story).await?;
    let (mut response, outcome) = match outcome {
        StoryUpsert::Inserted => (HttpResponse::Created(), "inserted"),
        StoryUpsert::Updated => (HttpResponse::Ok(), "updated"),
        StoryUpsert::Unchanged => (HttpResponse::Ok(), "unchanged"),
    };
    Ok(response.json(json!({ "outcome": outcome, "story": stored })))
}

/// The newest stories, hidden ones too (`hidden: true`).
#[get("/api/stories")]
pub(super) async fn list_stories(
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminApiError> {
    let stories = state.store.all_recent_stories(LISTED.of(query.limit)?).await?;
    Ok(HttpResponse::Ok().json(json!({ "stories": stories })))
}

/// `POST /admin/api/stories/{id}/hide` keeps a story out of digests and the
/// public API; `…/show` brings it back.
#[post("/api/stories/{id}/{action:hide|show}")]
pub(super) async fn hide_story(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminApiError> {
    let (id, action) = path.into_inner();
    let hidden = action == "hide";
    let id = set_hidden(&state, &id, hidden).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": id, "hidden": hidden })))
}
