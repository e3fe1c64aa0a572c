//! The admin JSON API, behind `Authorization: Bearer $ADMIN_TOKEN`.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::domain::Ticker;
use crate::sources::{RawStory, clean_story};
use crate::store::{StoreError, StoredQuote, StoryUpsert};
use crate::web::AppState;
use crate::web::admin_auth::AdminApi;

fn unavailable(error: StoreError) -> HttpResponse {
    tracing::error!(%error, "admin API request failed");
    HttpResponse::ServiceUnavailable().json(json!({ "error": "The database is unavailable; try again shortly." }))
}

/// A field of a pushed item that cannot be accepted; answered with 422.
struct InvalidField {
    /// Position in a pushed array.
    index: Option<usize>,
    field: &'static str,
    message: String,
}

fn invalid(index: Option<usize>, field: &'static str, message: String) -> InvalidField {
    InvalidField { index, field, message }
}

impl InvalidField {
    fn response(self) -> HttpResponse {
        HttpResponse::UnprocessableEntity()
            .json(json!({ "error": self.message, "field": self.field, "index": self.index }))
    }
}

/// Subscribers by status and the outbox by kind and status.
#[get("/admin/api/stats")]
pub(super) async fn stats(_: AdminApi, state: web::Data<AppState>) -> HttpResponse {
    let counts =
        async { Ok::<_, StoreError>((state.store.subscriber_counts().await?, state.store.delivery_counts().await?)) };
    match counts.await {
        Ok((subscribers, deliveries)) => HttpResponse::Ok().json(json!({
            "subscribers": subscribers.into_iter().map(|(status, count)| (status.as_str(), count)).collect::<std::collections::BTreeMap<_, _>>(),
            "deliveries": deliveries,
        })),
        Err(error) => unavailable(error),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QuoteInput {
    symbol: String,
    price: f64,
    previous_close: f64,
    as_of: DateTime<Utc>,
    currency: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            Self::One(item) => vec![item],
            Self::Many(items) => items,
        }
    }
}

/// Quotes the far future cannot have; a clock a little ahead is tolerated.
const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

fn parse_quote(input: QuoteInput, index: Option<usize>) -> Result<StoredQuote, InvalidField> {
    let symbol = Ticker::parse(&input.symbol).map_err(|m| invalid(index, "symbol", m))?;
    for (field, value) in [("price", input.price), ("previous_close", input.previous_close)] {
        if !(value.is_finite() && value > 0.0) {
            return Err(invalid(index, field, format!("{field} must be a positive number")));
        }
    }
    if input.as_of > Utc::now() + MAX_CLOCK_SKEW {
        return Err(invalid(index, "as_of", "as_of is in the future".into()));
    }
    let currency = match input.currency {
        Some(code) if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) => {
            Some(code.to_ascii_uppercase())
        }
        Some(_) => return Err(invalid(index, "currency", "currency must be a 3-letter code like USD".into())),
        None => None,
    };
    Ok(StoredQuote {
        symbol: symbol.as_str().to_string(),
        price: input.price,
        previous_close: input.previous_close,
        currency,
        as_of: input.as_of,
        source: "api".into(),
    })
}

/// Quotes pushed by the site's own data pipeline: one object or an array.
/// All are checked before any is saved.
#[post("/admin/api/quotes")]
pub(super) async fn push_quotes(
    _: AdminApi,
    body: web::Json<OneOrMany<QuoteInput>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let inputs = body.into_inner().into_vec();
    let many = inputs.len() > 1;
    let mut quotes = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        match parse_quote(input, many.then_some(index)) {
            Ok(quote) => quotes.push(quote),
            Err(invalid) => return invalid.response(),
        }
    }
    for quote in &quotes {
        if let Err(error) = state.store.save_quote(quote).await {
            return unavailable(error);
        }
    }
    HttpResponse::Ok().json(json!({ "saved": quotes.len(), "quotes": quotes }))
}

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
#[post("/admin/api/stories")]
pub(super) async fn push_story(_: AdminApi, body: web::Json<StoryInput>, state: web::Data<AppState>) -> HttpResponse {
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
    let story = match clean_story(raw, crate::store::now()) {
        Ok(story) => story,
        Err(error) => return invalid(None, error.field, error.message).response(),
    };
    match state.store.upsert_story(&story).await {
        Ok((outcome, stored)) => {
            let mut response =
                if outcome == StoryUpsert::Inserted { HttpResponse::Created() } else { HttpResponse::Ok() };
            let outcome = match outcome {
                StoryUpsert::Inserted => "inserted",
                StoryUpsert::Updated => "updated",
                StoryUpsert::Unchanged => "unchanged",
            };
            response.json(json!({ "outcome": outcome, "story": stored }))
        }
        Err(error) => unavailable(error),
    }
}
