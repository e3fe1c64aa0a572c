//! The stories page: the newest stories with hide and show, the newest
//! quotes beside them, and a form to add a story by hand.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use super::set_hidden;
use crate::domain::{StoredQuote, Story};
use crate::sources::{RawStory, clean_story};
use crate::web::AppState;
use crate::web::admin::pages::{AdminPageError, html, see_other};
use crate::web::admin::session::{AdminForm, AdminSession, NoFields};

const LISTED_STORIES: u32 = 100;
const LISTED_QUOTES: u32 = 100;

/// The add-a-story form's values, kept when it is shown again with an error.
#[derive(Deserialize, Default)]
pub(super) struct StoryForm {
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
    values: StoryForm,
    error: Option<String>,
}

async fn render_stories(
    state: &AppState,
    csrf: &str,
    status: StatusCode,
    values: StoryForm,
    error: Option<String>,
) -> Result<HttpResponse, AdminPageError> {
    let stories = state.store.all_recent_stories(LISTED_STORIES).await?;
    let quotes = state.store.newest_quotes(LISTED_QUOTES).await?;
    let page = StoriesPage { site_name: &state.settings.site_name, csrf, stories, quotes, values, error };
    Ok(html(status, &page))
}

#[get("/stories")]
pub(super) async fn stories_page(
    session: AdminSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    render_stories(&state, &session.csrf, StatusCode::OK, StoryForm::default(), None).await
}

/// A story added by hand: cleaned like a pushed one, published now.
#[post("/stories")]
pub(super) async fn add_story(
    form: AdminForm<StoryForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
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
    match clean_story(raw, now) {
        Ok(story) => {
            state.store.upsert_story(&story).await?;
            Ok(see_other("/admin/stories".into()))
        }
        Err(invalid) => {
            let error = Some(invalid.to_string());
            render_stories(&state, &session.csrf, StatusCode::UNPROCESSABLE_ENTITY, input, error).await
        }
    }
}

#[post("/stories/{id}/{action:hide|show}")]
pub(super) async fn hide_story(
    _: AdminForm<NoFields>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let (id, action) = path.into_inner();
    set_hidden(&state, &id, action == "hide").await?;
    Ok(see_other("/admin/stories".into()))
}
