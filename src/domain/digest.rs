//! What a digest shows: an edition's snapshot of stories and quotes, and
//! the part of it that is new to one reader, with the moves of their
//! watchlist. The worker renders it, test sends and previews show it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DigestDue, StoredQuote, Story};

/// What every reader of one edition is shown from (each sees the part that
/// is new to them), so a retry renders the same message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditionContent {
    pub created_at: DateTime<Utc>,
    pub stories: Vec<Story>,
    pub quotes: Vec<StoredQuote>,
}

/// At most this many stories in one email, those about the reader's watchlist first.
pub const MAX_STORIES_PER_EMAIL: usize = 20;
/// At most this many rows in the table of price moves.
pub const MAX_MOVES_PER_EMAIL: usize = 30;

/// A row of the price table.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceMove {
    pub symbol: String,
    pub price: f64,
    pub currency: Option<String>,
    pub change: f64,
    pub change_percent: f64,
    pub as_of: DateTime<Utc>,
    pub on_watchlist: bool,
}

impl PriceMove {
    pub fn from_quote(quote: &StoredQuote, on_watchlist: bool) -> Self {
        PriceMove {
            symbol: quote.symbol.clone(),
            price: quote.price,
            currency: quote.currency.clone(),
            change: quote.price - quote.previous_close,
            change_percent: quote.change_percent(),
            as_of: quote.as_of,
            on_watchlist,
        }
    }
}

/// One reader's digest.
#[derive(Debug, Clone, PartialEq)]
pub struct ReaderDigest<'a> {
    pub stories: Vec<&'a Story>,
    pub moves: Vec<PriceMove>,
}

impl ReaderDigest<'_> {
    pub fn is_empty(&self) -> bool {
        self.stories.is_empty() && self.moves.is_empty()
    }
}

/// The stories new to this reader (about their watchlist first, newest
/// first within each group), and the moves of their watchlist followed by
/// those of the tickers in their stories.
pub fn compose<'a>(content: &'a EditionContent, due: &DigestDue) -> ReaderDigest<'a> {
    let follows = |story: &Story| story.tickers.iter().any(|t| due.watchlist.tickers().iter().any(|w| w.as_str() == t));
    let mut stories: Vec<&Story> = content
        .stories
        .iter()
        .filter(|story| story.created_at > due.since && story.published_at >= due.confirmed_at)
        .collect();
    // Watchlist stories first, the newest first within each group.
    stories.sort_by_key(|story| (!follows(story), std::cmp::Reverse(story.published_at)));
    stories.truncate(MAX_STORIES_PER_EMAIL);

    let watchlist = due.watchlist.tickers().iter().map(|t| (t.as_str(), true));
    let mentioned = stories.iter().flat_map(|story| story.tickers.iter().map(|t| (t.as_str(), false)));
    let mut moves: Vec<PriceMove> = Vec::new();
    for (symbol, on_watchlist) in watchlist.chain(mentioned) {
        if moves.len() == MAX_MOVES_PER_EMAIL {
            break;
        }
        if moves.iter().any(|m| m.symbol == symbol) {
            continue;
        }
        if let Some(quote) = content.quotes.iter().find(|q| q.symbol == symbol) {
            moves.push(PriceMove::from_quote(quote, on_watchlist));
        }
    }
    ReaderDigest { stories, moves }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Watchlist;

    fn at(hour: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-11-20T{hour:02}:00:00Z")).unwrap().with_timezone(&Utc)
    }

    fn story(title: &str, tickers: &[&str], published: u32, stored: u32) -> Story {
        Story {
            id: uuid::Uuid::new_v4(),
            guid: title.into(),
            source: "api".into(),
            title: title.into(),
            url: format!("https://news.example/{title}"),
            author: None,
            summary: String::new(),
            tickers: tickers.iter().map(|t| t.to_string()).collect(),
            published_at: at(published),
            hidden: false,
            created_at: at(stored),
        }
    }

    fn quote(symbol: &str, price: f64, previous_close: f64) -> StoredQuote {
        StoredQuote {
            symbol: symbol.into(),
            price,
            previous_close,
            currency: None,
            as_of: at(16),
            source: "api".into(),
            suspect: false,
        }
    }

    fn content() -> EditionContent {
        EditionContent {
            created_at: at(18),
            stories: vec![
                story("newest-other", &["MSFT"], 15, 15),
                story("nokia", &["NOK", "1810.HK"], 14, 14),
                story("already-sent", &["NOK"], 9, 9),
                story("late-arrival-published-early", &["AAPL"], 8, 13),
                story("before-confirming", &["NOK"], 5, 12),
            ],
            quotes: vec![quote("NOK", 5.5, 5.0), quote("MSFT", 400.0, 410.0), quote("AAPL", 200.0, 200.0)],
        }
    }

    fn due(watchlist: &str) -> DigestDue {
        DigestDue { since: at(10), confirmed_at: at(6), watchlist: Watchlist::parse_text(watchlist).unwrap() }
    }

    #[test]
    fn a_reader_gets_only_stories_new_to_them_watchlist_first() {
        let content = content();
        let digest = compose(&content, &due("NOK"));
        let titles: Vec<&str> = digest.stories.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["nokia", "newest-other", "late-arrival-published-early"]);
    }

    #[test]
    fn moves_list_the_watchlist_then_the_stories_tickers_that_have_quotes() {
        let content = content();
        let digest = compose(&content, &due("AAPL, NOK, ZZZZ"));
        let rows: Vec<(&str, bool)> = digest.moves.iter().map(|m| (m.symbol.as_str(), m.on_watchlist)).collect();
        assert_eq!(rows, [("AAPL", true), ("NOK", true), ("MSFT", false)]);
        let nok = &digest.moves[1];
        assert!((nok.change - 0.5).abs() < 1e-9 && (nok.change_percent - 10.0).abs() < 1e-9);
    }

    #[test]
    fn a_reader_with_nothing_new_and_no_watchlist_gets_an_empty_digest() {
        let content = content();
        let caught_up = DigestDue { since: at(18), ..due("") };
        assert!(compose(&content, &caught_up).is_empty());
    }
}
