//! Stories and quotes: the newest stories (hidden ones too) with hide and
//! show, a story added by hand, and the newest quotes.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::pages::{html, not_found, see_other, unavailable};
use super::session::{AdminForm, AdminSession, NoFields};
use crate::domain::{StoredQuote, Story};
use crate::sources::{RawStory, clean_story};
use crate::web::AppState;

const LISTED_STORIES: u32 = 100;
const LISTED_QUOTES: u32 = 100;

/// The add-a-story form's values, kept when it is shown again with an error.
#[derive(Deserialize, Default)]
pub(super) struct StoryInput {
    #[serde(default)]
    title: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    summary: String,
    /// Symbols separated by commas.
    #[serde(default)]
    tickers: String,
}

#[derive(Template)]
#[template(path = "admin/stories.html")]
struct StoriesPage<'a> {
    site_name: &'a str,
    csrf: &'a str,
    stories: Vec<Story>,
    quotes: Vec<StoredQuote>,
    values: StoryInput,
    error: Option<String>,
}

async fn render_stories(
    state: &AppState,
    csrf: &str,
    status: StatusCode,
    values: StoryInput,
    error: Option<String>,
) -> HttpResponse {
    let listed = async {
        Ok((state.store.all_recent_stories(LISTED_STORIES).await?, state.store.newest_quotes(LISTED_QUOTES).await?))
    };
    match listed.await {
        Ok((stories, quotes)) => {
            html(status, &StoriesPage { site_name: &state.settings.site_name, csrf, stories, quotes, values, error })
        }
        Err(error) => unavailable(state, error),
    }
}

#[get("/admin/stories")]
pub(super) async fn stories_page(session: AdminSession, state: web::Data<AppState>) -> HttpResponse {
    render_stories(&state, &session.csrf, StatusCode::OK, StoryInput::default(), None).await
}

/// A story added by hand: cleaned like a pushed one, published now.
#[post("/admin/stories")]
pub(super) async fn add_story(form: AdminForm<StoryInput>, state: web::Data<AppState>) -> HttpResponse {
    let AdminForm { session, form: input } = form;
    let now = crate::store::now();
    let raw = RawStory {
        guid: None,
        source: "admin".into(),
        title: input.title.clone(),
        url: input.url.clone(),
        author: None,
        summary_html: Some(input.summary.clone()).filter(|s| !s.trim().is_empty()),
        body_html: None,
        categories: Vec::new(),
        tickers: input.tickers.split([',', ' ']).map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect(),
        published_at: Some(now),
    };
    let story = match clean_story(raw, now) {
        Ok(story) => story,
        Err(error) => {
            let message = format!("{}: {}", error.field, error.message);
            return render_stories(&state, &session.csrf, StatusCode::UNPROCESSABLE_ENTITY, input, Some(message)).await;
        }
    };
    match state.store.upsert_story(&story).await {
        Ok(_) => see_other("/admin/stories".into()),
        Err(error) => unavailable(&state, error),
    }
}

#[post("/admin/stories/{id}/{action:hide|show}")]
pub(super) async fn hide_story(
    _: AdminForm<NoFields>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let Ok(id) = Uuid::parse_str(&id) else { return not_found(&state, "story") };
    match state.store.set_story_hidden(id, action == "hide").await {
        Ok(true) => see_other("/admin/stories".into()),
        Ok(false) => not_found(&state, "story"),
        Err(error) => unavailable(&state, error),
    }
}
