//! What a queued delivery will say. Every row of the outbox holds one
//! `Message`: its kind (the `kind` column) and that kind's payload (the
//! `payload` column, JSON). The store queues messages through one function
//! and the worker, test sends and previews render them through one function,
//! so a kind and its payload are written and read in one place each.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Watchlist;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Confirmation,
    Welcome,
    PreferencesLink,
    Digest,
    Alert,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmation => "confirmation",
            Self::Welcome => "welcome",
            Self::PreferencesLink => "preferences_link",
            Self::Digest => "digest",
            Self::Alert => "alert",
        }
    }
}

/// One message of the outbox, with what it needs to be rendered the same on
/// every attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum Message {
    /// The double opt-in link.
    Confirmation(ConfirmationRequest),
    /// Sent once a reader confirms.
    Welcome(Welcome),
    /// A confirmed reader's preferences link, asked for by using their confirmation link again.
    PreferencesLink(PreferencesLink),
    /// A reader's share of a digest edition (the edition holds the stories).
    Digest(DigestDue),
    /// A price move past the reader's threshold.
    Alert(PriceAlert),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationRequest {
    /// The link is made from this time, and expires after the configured time.
    #[serde(with = "chrono::serde::ts_seconds")]
    pub issued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Welcome {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PreferencesLink {}

/// What one reader is due from their digest's edition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestDue {
    /// Stories stored after this are new to them (their last digest sent, or their confirmation).
    pub since: DateTime<Utc>,
    /// Nothing published before they confirmed is sent to them.
    pub confirmed_at: DateTime<Utc>,
    /// Their watchlist when the edition was made, as stored.
    #[serde(serialize_with = "stored_watchlist", deserialize_with = "parse_stored_watchlist")]
    pub watchlist: Watchlist,
}

/// A move of one ticker past a reader's threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceAlert {
    pub symbol: String,
    pub price: f64,
    pub previous_close: f64,
    pub change_percent: f64,
    /// `up` or `down`.
    pub direction: String,
    /// How many thresholds the move spans (1 at the threshold, 2 at twice it…).
    pub tier: i64,
    pub threshold_percent: f64,
    pub as_of: DateTime<Utc>,
}

impl Message {
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Confirmation(_) => MessageKind::Confirmation,
            Self::Welcome(_) => MessageKind::Welcome,
            Self::PreferencesLink(_) => MessageKind::PreferencesLink,
            Self::Digest(_) => MessageKind::Digest,
            Self::Alert(_) => MessageKind::Alert,
        }
    }

    /// The payload as stored beside the kind.
    pub fn payload_json(&self) -> String {
        let payload = match self {
            Self::Confirmation(request) => serde_json::to_string(request),
            Self::Welcome(welcome) => serde_json::to_string(welcome),
            Self::PreferencesLink(link) => serde_json::to_string(link),
            Self::Digest(due) => serde_json::to_string(due),
            Self::Alert(alert) => serde_json::to_string(alert),
        };
        payload.expect("message payloads serialize")
    }

    /// A message as stored: its kind and payload. A kind this version does
    /// not know (written by a newer one) or a payload that does not fit it
    /// is an error for that message alone.
    pub fn from_stored(kind: &str, payload: &str) -> Result<Self, String> {
        let payload: serde_json::Value =
            serde_json::from_str(payload).map_err(|e| format!("the {kind} message's payload is not JSON: {e}"))?;
        serde_json::from_value(serde_json::json!({ "kind": kind, "payload": payload }))
            .map_err(|e| format!("cannot read a message of kind '{kind}': {e}"))
    }
}

fn stored_watchlist<S: Serializer>(watchlist: &Watchlist, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&watchlist.to_stored())
}

fn parse_stored_watchlist<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Watchlist, D::Error> {
    Ok(Watchlist::from_stored(&String::deserialize(deserializer)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_message_reads_back_as_it_was_stored() {
        let at = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let messages = [
            Message::Confirmation(ConfirmationRequest { issued_at: at }),
            Message::Welcome(Welcome {}),
            Message::PreferencesLink(PreferencesLink {}),
            Message::Digest(DigestDue {
                since: at,
                confirmed_at: at,
                watchlist: Watchlist::parse_text("NOK, AAPL").unwrap(),
            }),
            Message::Alert(PriceAlert {
                symbol: "NOK".into(),
                price: 5.5,
                previous_close: 5.0,
                change_percent: 10.0,
                direction: "up".into(),
                tier: 2,
                threshold_percent: 5.0,
                as_of: at,
            }),
        ];
        for message in messages {
            let stored = Message::from_stored(message.kind().as_str(), &message.payload_json());
            assert_eq!(stored.as_ref(), Ok(&message));
        }
    }

    #[test]
    fn rows_written_before_the_typed_model_still_read() {
        let confirmation = Message::from_stored("confirmation", r#"{"issued_at":1790000000}"#).unwrap();
        assert_eq!(confirmation.kind(), MessageKind::Confirmation);
        assert_eq!(Message::from_stored("welcome", "{}").unwrap(), Message::Welcome(Welcome {}));
        let digest = r#"{"since":"2026-11-20T10:00:00Z","confirmed_at":"2026-11-19T10:00:00Z","watchlist":"NOK,AAPL"}"#;
        assert!(matches!(Message::from_stored("digest", digest), Ok(Message::Digest(_))));
    }

    #[test]
    fn an_unknown_kind_or_a_broken_payload_is_an_error_not_a_panic() {
        assert!(Message::from_stored("postcard", "{}").unwrap_err().contains("postcard"));
        assert!(Message::from_stored("alert", r#"{"symbol":"NOK"}"#).is_err());
        assert!(Message::from_stored("digest", "not json").is_err());
    }
}
