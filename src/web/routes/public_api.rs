//! JSON for the site's widgets (a stock ticker, "Recent stories"): cacheable,
//! and readable from any origin.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError, get, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::{StoredQuote, Ticker, decimals, round_to};
use crate::store::StoreError;
use crate::web::AppState;

const MAX_SYMBOLS: usize = 50;
const MAX_STORIES: u32 = 50;

fn widget_response(mut builder: HttpResponseBuilder) -> HttpResponseBuilder {
    builder
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"));
    builder
}

/// Why a widget's request cannot be answered: `{"error": …}` with a status.
#[derive(Debug, thiserror::Error)]
pub(super) enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("database unavailable: {0}")]
    Unavailable(#[from] StoreError),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::BadRequest(message) => widget_response(HttpResponse::BadRequest()).json(json!({ "error": message })),
            // Not cached: the next request may well succeed.
            Self::Unavailable(_) => HttpResponse::ServiceUnavailable()
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
                .json(json!({ "error": "Temporarily unavailable." })),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct QuotesQuery {
    symbols: Option<String>,
}

/// A quote with its day's change, rounded as the price is written (at most
/// four decimals; the percentage to two). A suspect quote has no change.
#[derive(Serialize)]
struct QuoteView<'a> {
    #[serde(flatten)]
    quote: &'a StoredQuote,
    change: Option<f64>,
    change_percent: Option<f64>,
}

impl<'a> QuoteView<'a> {
    fn of(quote: &'a StoredQuote) -> Self {
        if quote.suspect {
            return QuoteView { quote, change: None, change_percent: None };
        }
        let places = decimals(quote.price).max(decimals(quote.previous_close)).min(4);
        QuoteView {
            quote,
            change: Some(round_to(quote.price - quote.previous_close, places)),
            change_percent: Some(round_to(quote.change_percent(), 2)),
        }
    }
}

/// `?symbols=NOK,AAPL`: the latest quote of each, with the day's change.
/// Symbols without a quote are listed under `unknown`, malformed ones under
/// `invalid`.
#[get("/api/quotes")]
pub(super) async fn quotes(
    query: web::Query<QuotesQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(list) = query.symbols.as_deref().filter(|s| !s.trim().is_empty()) else {
        return Err(ApiError::BadRequest("Name the symbols: /api/quotes?symbols=NOK,AAPL".into()));
    };
    let requested: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if requested.len() > MAX_SYMBOLS {
        return Err(ApiError::BadRequest(format!("At most {MAX_SYMBOLS} symbols per request.")));
    }
    let (mut symbols, mut invalid) = (Vec::new(), Vec::new());
    for raw in requested {
        match Ticker::parse(raw) {
            Ok(ticker) if !symbols.contains(&ticker.as_str().to_string()) => symbols.push(ticker.as_str().to_string()),
            Ok(_) => {}
            Err(_) => invalid.push(raw.chars().take(20).collect::<String>()),
        }
    }
    let found = state.store.latest_quotes(&symbols).await?;
    let unknown: Vec<&String> = symbols.iter().filter(|s| !found.iter().any(|q| &q.symbol == *s)).collect();
    let views: Vec<QuoteView> = found.iter().map(QuoteView::of).collect();
    Ok(widget_response(HttpResponse::Ok()).json(json!({ "quotes": views, "unknown": unknown, "invalid": invalid })))
}

#[derive(Deserialize)]
pub(super) struct StoriesQuery {
    limit: Option<String>,
}

/// `?limit=N` (default 10, at most 50): the newest stories with their tickers.
#[get("/api/stories")]
pub(super) async fn stories(
    query: web::Query<StoriesQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = match query.limit.as_deref().map(str::parse::<u32>) {
        None => 10,
        Some(Ok(limit)) if (1..=MAX_STORIES).contains(&limit) => limit,
        Some(_) => return Err(ApiError::BadRequest(format!("limit must be a number from 1 to {MAX_STORIES}."))),
    };
    let stories: Vec<_> = state
        .store
        .recent_stories(limit)
        .await?
        .iter()
        .map(|s| {
            json!({
                "title": s.title, "url": s.url, "author": s.author, "published_at": s.published_at,
                "summary": s.summary, "tickers": s.tickers,
            })
        })
        .collect();
    Ok(widget_response(HttpResponse::Ok()).json(json!({ "stories": stories })))
}
