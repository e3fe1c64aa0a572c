//! Quotes: the history of prices, and the latest per symbol.

use sqlx::AssertSqlSafe;

use super::dialect::List;
use super::{Store, StoreResult, in_transaction, now, on_reader};
use crate::domain::StoredQuote;

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
        let latest = format!(
            "SELECT symbol, price, previous_close, currency, as_of, source, suspect FROM latest_quotes \
             WHERE {} ORDER BY symbol",
            self.dialect().in_list::<String>("symbol", 1)
        );
        let quotes =
            on_reader!(self, |pool| sqlx::query_as(AssertSqlSafe(latest)).bind(List(symbols)).fetch_all(pool).await)?;
        Ok(quotes)
    }
}
