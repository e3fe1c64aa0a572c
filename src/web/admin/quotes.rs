//! Quotes over the admin API: pushed by the site's own data pipeline, and
//! the newest listed. (The stories page shows them too.)

use actix_web::web::ServiceConfig;
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::api::{AdminApiError, LISTED, ListQuery};
use crate::domain::{StoredQuote, Ticker, in_major_unit, major_unit, plausible_price, plausible_range};
use crate::web::AppState;
use crate::web::validation::InvalidField;

/// Quotes the far future cannot have; a clock a little ahead is tolerated.
const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

pub(super) fn configure(config: &mut ServiceConfig) {
    config.service(push_quotes).service(list_quotes);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuoteInput {
    symbol: String,
    /// Read as any JSON value so that a string or `null` is answered with the field's name.
    price: serde_json::Value,
    previous_close: serde_json::Value,
    as_of: DateTime<Utc>,
    currency: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
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

fn parse_quote(input: QuoteInput, max_move_percent: f64) -> Result<StoredQuote, InvalidField> {
    let symbol = Ticker::parse(&input.symbol).map_err(InvalidField::named("symbol"))?;
    // Pence, cents and agorot are kept in pounds, rand and shekels.
    let (currency, divisor) = match input.currency.as_deref().map(major_unit) {
        None => (None, 1.0),
        Some(Some((code, divisor))) => (Some(code), divisor),
        Some(None) => return Err(InvalidField::new("currency", "currency must be a 3-letter code like USD")),
    };
    let price = |field: &'static str, value: &serde_json::Value| {
        value.as_f64().map(|v| in_major_unit(v, divisor)).and_then(plausible_price).ok_or_else(|| {
            InvalidField::new(field, format!("{field} must be a number {} (in major units)", plausible_range()))
        })
    };
    let (price, previous_close) = (price("price", &input.price)?, price("previous_close", &input.previous_close)?);
    if input.as_of > Utc::now() + MAX_CLOCK_SKEW {
        return Err(InvalidField::new("as_of", "as_of is in the future"));
    }
    Ok(StoredQuote {
        symbol: symbol.as_str().to_string(),
        price,
        previous_close,
        currency,
        as_of: input.as_of,
        source: "api".into(),
        suspect: StoredQuote::is_suspect_move(price, previous_close, max_move_percent),
    })
}

/// Quotes pushed by the site's own data pipeline: one object or an array.
/// All are checked before any is saved.
#[post("/api/quotes")]
async fn push_quotes(
    body: web::Json<OneOrMany<QuoteInput>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminApiError> {
    let inputs = body.into_inner().into_vec();
    let many = inputs.len() > 1;
    let quotes = inputs
        .into_iter()
        .enumerate()
        .map(|(index, input)| {
            parse_quote(input, state.settings.quote_max_move_percent)
                .map_err(|field| AdminApiError::Invalid { field, index: many.then_some(index) })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for quote in &quotes {
        state.store.save_quote(quote).await?;
    }
    Ok(HttpResponse::Ok().json(json!({ "saved": quotes.len(), "quotes": quotes })))
}

/// The newest quotes (`?limit=`, default 50).
#[get("/api/quotes")]
async fn list_quotes(query: web::Query<ListQuery>, state: web::Data<AppState>) -> Result<HttpResponse, AdminApiError> {
    let quotes = state.store.newest_quotes(LISTED.of(query.limit)?).await?;
    Ok(HttpResponse::Ok().json(json!({ "quotes": quotes })))
}
