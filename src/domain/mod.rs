//! The nouns the layers share. Values that exist only once parsed (an email
//! address, a ticker: a value of one of these types is valid), and the records
//! passed between layers (a story, a quote, an edition's content and a
//! reader's digest, a message of the outbox).

mod digest;
mod listing;
mod message;
mod preferences;
mod price;
mod quote;
mod status;
mod story;
mod subscriber;
mod subscriber_email;
mod subscriber_name;
mod ticker;

pub use digest::{EditionContent, MAX_MOVES_PER_EMAIL, MAX_STORIES_PER_EMAIL, PriceMove, ReaderDigest, compose};
pub use listing::{Exchange, Listing, exchange_from_prefix};
pub use message::{ConfirmationRequest, DigestDue, Message, MessageKind, PreferencesLink, PriceAlert, Welcome};
pub use preferences::{AlertThreshold, DigestFrequency};
pub use price::{decimals, in_major_unit, major_unit, plausible_price, plausible_range, round_to};
pub use quote::StoredQuote;
pub use story::{NewStory, Story};
pub use subscriber::{Subscriber, SubscriberStatus};
pub use subscriber_email::SubscriberEmail;
pub use subscriber_name::SubscriberName;
pub use ticker::{Ticker, Watchlist};

pub use status::{DeliveryStatus, EditionState};
