//! Where stories and prices come from: RSS/Atom feeds, stories pushed by the
//! site's CMS, and quote providers. Everything read here is hostile until
//! cleaned: text is stripped of HTML, symbols are parsed into listings, and
//! every provider failure is a typed error that is logged, never a crash.

pub mod feeds;
mod http;
pub mod quotes;
pub mod stories;
pub mod text;
pub mod tickers;

pub use feeds::{FeedPoller, FeedReport};
pub use quotes::{QuoteError, QuoteFetcher, QuoteReport};
pub use stories::{RawStory, clean_story};
