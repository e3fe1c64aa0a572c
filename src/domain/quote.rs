//! A price of a symbol as stored: the latest per symbol, or one of its history.

use chrono::{DateTime, Utc};

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
