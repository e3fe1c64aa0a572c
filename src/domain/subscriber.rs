//! A reader, and where their subscription stands.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AlertThreshold, DigestFrequency, Watchlist};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum SubscriberStatus {
    Pending,
    Confirmed,
    Unsubscribed,
    Bounced,
}

impl SubscriberStatus {
    pub const ALL: [SubscriberStatus; 4] = [Self::Pending, Self::Confirmed, Self::Unsubscribed, Self::Bounced];

    /// Whether the reader still gets (or is about to get) mail, so there is something to unsubscribe from.
    pub fn is_subscribed(self) -> bool {
        matches!(self, Self::Pending | Self::Confirmed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Unsubscribed => "unsubscribed",
            Self::Bounced => "bounced",
        }
    }
}

impl fmt::Display for SubscriberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SubscriberStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(Self::Pending),
            "confirmed" => Ok(Self::Confirmed),
            "unsubscribed" => Ok(Self::Unsubscribed),
            "bounced" => Ok(Self::Bounced),
            other => Err(format!("unknown subscriber status '{other}'")),
        }
    }
}

/// A reader as the rest of the application sees them.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub status: SubscriberStatus,
    pub watchlist: Watchlist,
    pub alert_threshold: AlertThreshold,
    pub digest_frequency: DigestFrequency,
    pub alerts_enabled: bool,
    /// Changes when a subscription starts again, so links from an earlier
    /// subscription stop working.
    pub token_nonce: String,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
}
