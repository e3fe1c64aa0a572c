use chrono::{DateTime, Utc};

use super::{Store, StoreResult, in_transaction, now};

/// A price as stored: the latest per symbol, plus the history.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct StoredQuote {
    pub symbol: String,
    pub price: f64,
    pub previous_close: f64,
    pub currency: Option<String>,
    pub as_of: DateTime<Utc>,
    pub source: String,
    /// Moved beyond the sanity bound: listed for the admin, never alerted on
    /// or mailed. (Edition snapshots from before it have no such field.)
    #[serde(default)]
    pub suspect: bool,
}

impl StoredQuote {
    /// The day's move in percent, from the previous close.
    pub fn change_percent(&self) -> f64 {
        (self.price / self.previous_close - 1.0) * 100.0
    }

    /// Whether a move from `previous_close` to `price` is beyond
    /// `max_move_percent` either way: up by more than that, or down to less
    /// than `1 / (1 + max_move_percent / 100)` of it (a quarter at 300%),
    /// as a price in the wrong unit or a provider's glitch would be.
    pub fn is_suspect_move(price: f64, previous_close: f64, max_move_percent: f64) -> bool {
        let bound = 1.0 + max_move_percent / 100.0;
        let ratio = price / previous_close;
        !(ratio.is_finite() && ratio <= bound && ratio * bound >= 1.0)
    }
}

impl Store {
    /// Adds a quote to the history and makes it the latest for its symbol
    /// unless a newer one is already there. Returns whether it became the latest.
    pub async fn save_quote(&self, quote: &StoredQuote) -> StoreResult<bool> {
        let now = now();
        let latest = in_transaction!(self, |tx| {
            sqlx::query(
                "INSERT INTO quote_history (symbol, as_of, source, price, previous_close, suspect) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(&quote.symbol)
            .bind(quote.as_of)
            .bind(&quote.source)
            .bind(quote.price)
            .bind(quote.previous_close)
            .bind(quote.suspect)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO latest_quotes (symbol, price, previous_close, currency, as_of, source, updated_at, suspect) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (symbol) DO UPDATE SET price = excluded.price, \
                     previous_close = excluded.previous_close, currency = excluded.currency, \
                     as_of = excluded.as_of, source = excluded.source, updated_at = excluded.updated_at, \
                     suspect = excluded.suspect \
                 WHERE excluded.as_of >= latest_quotes.as_of",
            )
            .bind(&quote.symbol)
            .bind(quote.price)
            .bind(quote.previous_close)
            .bind(quote.currency.as_deref())
            .bind(quote.as_of)
            .bind(&quote.source)
            .bind(now)
            .bind(quote.suspect)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1
        });
        Ok(latest)
    }

    /// The latest quote of each of `symbols` that has one.
    pub async fn latest_quotes(&self, symbols: &[String]) -> StoreResult<Vec<StoredQuote>> {
        let quotes = match self {
            Store::Sqlite { reader, .. } => {
                sqlx::query_as(
                    "SELECT symbol, price, previous_close, currency, as_of, source, suspect FROM latest_quotes \
                     WHERE symbol IN (SELECT value FROM json_each($1)) ORDER BY symbol",
                )
                .bind(serde_json::to_string(symbols).unwrap_or_default())
                .fetch_all(reader)
                .await?
            }
            Store::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT symbol, price, previous_close, currency, as_of, source, suspect FROM latest_quotes \
                     WHERE symbol = ANY($1) ORDER BY symbol",
                )
                .bind(symbols)
                .fetch_all(pool)
                .await?
            }
        };
        Ok(quotes)
    }
}
