//! Values that can only exist once parsed: a value of one of these types is valid.

mod listing;
mod message;
mod preferences;
mod price;
mod subscriber;
mod subscriber_email;
mod subscriber_name;
mod ticker;

pub use listing::{Exchange, Listing, exchange_from_prefix};
pub use message::{ConfirmationRequest, DigestDue, Message, MessageKind, PreferencesLink, PriceAlert, Welcome};
pub use preferences::{AlertThreshold, DigestFrequency};
pub use price::{decimals, in_major_unit, major_unit, plausible_price, plausible_range, round_to};
pub use subscriber::{Subscriber, SubscriberStatus};
pub use subscriber_email::SubscriberEmail;
pub use subscriber_name::SubscriberName;
pub use ticker::{Ticker, Watchlist};
