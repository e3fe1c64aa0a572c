use std::fmt;

use super::Listing;

/// A stock symbol as readers type it (`NOK`, `$aapl`, `BRK-B`, `RY.TO`,
/// `0700.HK`), kept as its listing's canonical key (`NOK`, `AAPL`, `BRK.B`,
/// `RY.TO`, `700.HK`): the form stories and quotes are stored under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticker(String);

impl Ticker {
    pub fn parse(input: &str) -> Result<Self, String> {
        if let Some(listing) = Listing::parse_key(input.trim().trim_start_matches('$')) {
            Ok(Self(listing.key()))
        } else {
            Err(format!(
                "'{}' is not a ticker symbol: write it like NOK, BRK.B, RY.TO or 1810.HK.",
                input.trim().chars().take(20).collect::<String>()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A reader's watchlist: at most 50 distinct tickers, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Watchlist(Vec<Ticker>);

pub const MAX_WATCHLIST: usize = 50;

impl Watchlist {
    /// Parses a list typed into a form: symbols separated by commas or spaces.
    pub fn parse_text(input: &str) -> Result<Self, String> {
        Self::parse_items(input.split([',', ' ', ';', '\n', '\t']).filter(|s| !s.trim().is_empty()))
    }

    pub fn parse_items<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut tickers: Vec<Ticker> = Vec::new();
        for item in items {
            let ticker = Ticker::parse(item)?;
            if !tickers.contains(&ticker) {
                tickers.push(ticker);
            }
            if tickers.len() > MAX_WATCHLIST {
                return Err(format!("A watchlist can hold at most {MAX_WATCHLIST} tickers."));
            }
        }
        Ok(Self(tickers))
    }

    /// The stored form: symbols joined by commas.
    pub fn to_stored(&self) -> String {
        self.0.iter().map(Ticker::as_str).collect::<Vec<_>>().join(",")
    }

    /// Reads the stored form back. A symbol that no longer parses (one stored
    /// under older rules) is dropped alone; the rest of the list stays.
    pub fn from_stored(stored: &str) -> Self {
        let mut tickers: Vec<Ticker> = Vec::new();
        for ticker in stored.split(',').filter_map(|item| Ticker::parse(item).ok()) {
            if !tickers.contains(&ticker) && tickers.len() < MAX_WATCHLIST {
                tickers.push(ticker);
            }
        }
        Self(tickers)
    }

    pub fn tickers(&self) -> &[Ticker] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Watchlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.iter().map(Ticker::as_str).collect::<Vec<_>>().join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::{Ticker, Watchlist};

    #[test]
    fn symbols_are_upper_cased_and_cashtags_accepted() {
        assert_eq!(Ticker::parse(" nok ").unwrap().as_str(), "NOK");
        assert_eq!(Ticker::parse("$aapl").unwrap().as_str(), "AAPL");
        assert_eq!(Ticker::parse("brk.b").unwrap().as_str(), "BRK.B");
        assert_eq!(Ticker::parse("1810.HK").unwrap().as_str(), "1810.HK");
        assert_eq!(Ticker::parse("brk-b").unwrap().as_str(), "BRK.B", "one spelling per listing");
        assert_eq!(Ticker::parse("0700.hk").unwrap().as_str(), "700.HK");
    }

    #[test]
    fn things_that_are_not_symbols_are_rejected() {
        for bad in ["", "$", ".NOK", "TOOLONGSYMBOL1", "NO K", "<script>", "NOK;DROP", "ÄBC"] {
            assert!(Ticker::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_watchlist_drops_duplicates_and_keeps_order() {
        let list = Watchlist::parse_text("NOK, aapl;nok  MSFT").unwrap();
        assert_eq!(list.to_stored(), "NOK,AAPL,MSFT");
        assert_eq!(Watchlist::from_stored(&list.to_stored()), list);
        assert_eq!(Watchlist::from_stored("NOK,BTC-USD,brk-b").to_stored(), "NOK,BRK.B", "one bad symbol drops alone");
    }

    #[test]
    fn a_watchlist_of_more_than_50_tickers_is_rejected() {
        let fifty: Vec<String> = (0..50).map(|i| format!("T{i}")).collect();
        assert!(Watchlist::parse_items(fifty.iter().map(String::as_str)).is_ok());
        let fifty_one: Vec<String> = (0..51).map(|i| format!("T{i}")).collect();
        assert!(Watchlist::parse_items(fifty_one.iter().map(String::as_str)).is_err());
    }
}
