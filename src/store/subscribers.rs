use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::deliveries::queue_message;
use super::subscriber_row::{SubscriberRow, subscriber_columns};
use super::{Store, StoreResult, in_transaction, now, on_reader, on_writer};
use crate::domain::{
    AlertThreshold, ConfirmationRequest, DeliveryStatus, DigestFrequency, Message, PreferencesLink, Subscriber,
    SubscriberEmail, SubscriberName, SubscriberStatus, Watchlist, Welcome,
};
use crate::tokens::new_nonce;

/// A sign-up as the form or API received it, already parsed.
#[derive(Debug, Clone)]
pub struct SignupRecord {
    pub email: SubscriberEmail,
    pub name: SubscriberName,
    pub watchlist: Watchlist,
    pub consent_ip: Option<String>,
    pub consent_user_agent: Option<String>,
    pub consent_source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupOutcome {
    /// New, refreshed or re-subscribing: pending, with a confirmation queued.
    ConfirmationQueued { subscriber_id: Uuid },
    /// Pending and a confirmation went out recently: nothing more is sent.
    RecentlyAsked { subscriber_id: Uuid },
    /// Already confirmed: nothing changes.
    AlreadyConfirmed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmOutcome {
    /// Confirmed now, and a welcome email queued.
    Confirmed,
    /// Confirmed before: their preferences link is emailed to them (unless it
    /// was within the resend interval), never shown to whoever holds the link.
    AlreadyConfirmed {
        preferences_link_queued: bool,
    },
    /// Unsubscribed or bounced since the link was sent.
    NoLongerSubscribed,
    NotFound,
}

#[derive(Debug, Clone)]
pub struct PreferencesUpdate {
    pub name: SubscriberName,
    pub watchlist: Watchlist,
    pub alert_threshold: AlertThreshold,
    pub digest_frequency: DigestFrequency,
    pub alerts_enabled: bool,
}

/// When, from where and how a subscriber gave their consent, once.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct ConsentRecord {
    pub at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub source: String,
}

/// Records one consent inside a transaction: `insert_consent!(executor,
/// subscriber_id, at, ip, user_agent, source)`.
macro_rules! insert_consent {
    ($executor:expr, $subscriber_id:expr, $at:expr, $ip:expr, $user_agent:expr, $source:expr) => {
        sqlx::query(
            "INSERT INTO consents (id, subscriber_id, at, ip, user_agent, source) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::new_v4())
        .bind($subscriber_id)
        .bind($at)
        .bind($ip)
        .bind($user_agent)
        .bind($source)
        .execute($executor)
        .await?
    };
}

impl Store {
    /// Records sign-ups and, in the same transaction, queues their
    /// confirmation emails: new addresses and those that had left become
    /// pending; a pending address is refreshed; a confirmed one is left alone.
    /// A confirmation is queued unless one was sent within `resend_interval`,
    /// or earlier in this slice; queuing one gives the reader a new nonce, so
    /// older links stop working, and suppresses older ones still queued. One
    /// transaction serves the whole slice (see `SignupWriter`).
    pub async fn record_signups(
        &self,
        signups: &[&SignupRecord],
        resend_interval: Duration,
    ) -> StoreResult<Vec<SignupOutcome>> {
        let now = now();
        let resend_cutoff = now - resend_interval;
        let outcomes = in_transaction!(self, |tx| {
            let mut outcomes = Vec::with_capacity(signups.len());
            // The whole slice shares `now`, so a repeat in it would look as if
            // it had just queued its own confirmation.
            let mut asked_in_slice = HashSet::new();
            for signup in signups {
                let may_ask = !asked_in_slice.contains(signup.email.as_str());
                let row: Option<(Uuid, bool)> = sqlx::query_as(
                    "INSERT INTO subscribers (id, email, name, status, tickers, token_nonce, \
                     confirmation_sent_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $9, $4, $5, $6, $6, $6) \
                 ON CONFLICT (email) DO UPDATE SET \
                     token_nonce = CASE WHEN $8 AND (subscribers.status <> $9 \
                         OR subscribers.confirmation_sent_at IS NULL OR subscribers.confirmation_sent_at <= $7) \
                         THEN excluded.token_nonce ELSE subscribers.token_nonce END, \
                     confirmation_sent_at = CASE WHEN $8 AND (subscribers.status <> $9 \
                         OR subscribers.confirmation_sent_at IS NULL OR subscribers.confirmation_sent_at <= $7) \
                         THEN excluded.confirmation_sent_at ELSE subscribers.confirmation_sent_at END, \
                     status = $9, \
                     name = excluded.name, \
                     tickers = excluded.tickers, \
                     confirmed_at = NULL, \
                     unsubscribed_at = NULL, \
                     updated_at = excluded.updated_at \
                 WHERE subscribers.status <> $10 \
                 RETURNING id, token_nonce = $5",
                )
                .bind(Uuid::new_v4())
                .bind(signup.email.as_str())
                .bind(signup.name.as_str())
                .bind(signup.watchlist.to_stored())
                .bind(new_nonce())
                .bind(now)
                .bind(resend_cutoff)
                .bind(may_ask)
                .bind(SubscriberStatus::Pending)
                .bind(SubscriberStatus::Confirmed)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((subscriber_id, _)) = row {
                    insert_consent!(
                        &mut *tx,
                        subscriber_id,
                        now,
                        signup.consent_ip.as_deref(),
                        signup.consent_user_agent.as_deref(),
                        &signup.consent_source
                    );
                }
                outcomes.push(match row {
                    None => SignupOutcome::AlreadyConfirmed,
                    Some((subscriber_id, false)) => SignupOutcome::RecentlyAsked { subscriber_id },
                    Some((subscriber_id, true)) => {
                        asked_in_slice.insert(signup.email.as_str());
                        sqlx::query(
                            "UPDATE deliveries SET status = $3, \
                                 last_error = 'superseded by a newer sign-up', updated_at = $2 \
                             WHERE subscriber_id = $1 AND kind = 'confirmation' AND status = $4",
                        )
                        .bind(subscriber_id)
                        .bind(now)
                        .bind(DeliveryStatus::Suppressed)
                        .bind(DeliveryStatus::Queued)
                        .execute(&mut *tx)
                        .await?;
                        queue_message!(
                            &mut *tx,
                            Some(subscriber_id),
                            signup.email.as_str(),
                            &Message::Confirmation(ConfirmationRequest { issued_at: now }),
                            now
                        );
                        SignupOutcome::ConfirmationQueued { subscriber_id }
                    }
                });
            }
            outcomes
        });
        Ok(outcomes)
    }

    /// Reissues a confirmation to a pending subscriber, at most once per
    /// `resend_interval`. Returns whether one was queued.
    pub async fn resend_confirmation(&self, subscriber_id: Uuid, resend_interval: Duration) -> StoreResult<bool> {
        let now = now();
        let queued = in_transaction!(self, |tx| {
            let email: Option<String> = sqlx::query_scalar(
                "UPDATE subscribers SET confirmation_sent_at = $2, updated_at = $2 \
                 WHERE id = $1 AND status = $4 \
                   AND (confirmation_sent_at IS NULL OR confirmation_sent_at <= $3) \
                 RETURNING email",
            )
            .bind(subscriber_id)
            .bind(now)
            .bind(now - resend_interval)
            .bind(SubscriberStatus::Pending)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(email) = &email {
                queue_message!(
                    &mut *tx,
                    Some(subscriber_id),
                    email,
                    &Message::Confirmation(ConfirmationRequest { issued_at: now }),
                    now
                );
            }
            email.is_some()
        });
        Ok(queued)
    }

    /// Confirms a pending subscriber and queues their welcome email, if their
    /// nonce is still the one the link was made with (checked here, so a
    /// sign-up committing meanwhile cannot be confirmed by an older link).
    /// One confirmed already is emailed their preferences link instead, at
    /// most once per `resend_interval`.
    pub async fn confirm_subscriber(
        &self,
        subscriber_id: Uuid,
        token_nonce: &str,
        resend_interval: Duration,
    ) -> StoreResult<ConfirmOutcome> {
        let now = now();
        let outcome = in_transaction!(self, |tx| {
            let confirmed: Option<String> = sqlx::query_scalar(
                "UPDATE subscribers SET status = $4, confirmed_at = $3, updated_at = $3 \
                 WHERE id = $1 AND status = $5 AND token_nonce = $2 RETURNING email",
            )
            .bind(subscriber_id)
            .bind(token_nonce)
            .bind(now)
            .bind(SubscriberStatus::Confirmed)
            .bind(SubscriberStatus::Pending)
            .fetch_optional(&mut *tx)
            .await?;
            let link_due: Option<String> = match confirmed {
                Some(_) => None,
                None => {
                    sqlx::query_scalar(
                        "UPDATE subscribers SET preferences_link_sent_at = $3 \
                         WHERE id = $1 AND token_nonce = $2 AND status = $5 \
                           AND (preferences_link_sent_at IS NULL OR preferences_link_sent_at <= $4) \
                         RETURNING email",
                    )
                    .bind(subscriber_id)
                    .bind(token_nonce)
                    .bind(now)
                    .bind(now - resend_interval)
                    .bind(SubscriberStatus::Confirmed)
                    .fetch_optional(&mut *tx)
                    .await?
                }
            };
            if let Some(email) = &confirmed {
                queue_message!(&mut *tx, Some(subscriber_id), email, &Message::Welcome(Welcome {}), now);
                ConfirmOutcome::Confirmed
            } else if let Some(email) = &link_due {
                queue_message!(
                    &mut *tx,
                    Some(subscriber_id),
                    email,
                    &Message::PreferencesLink(PreferencesLink {}),
                    now
                );
                ConfirmOutcome::AlreadyConfirmed { preferences_link_queued: true }
            } else {
                let status: Option<SubscriberStatus> =
                    sqlx::query_scalar("SELECT status FROM subscribers WHERE id = $1 AND token_nonce = $2")
                        .bind(subscriber_id)
                        .bind(token_nonce)
                        .fetch_optional(&mut *tx)
                        .await?;
                match status {
                    None => ConfirmOutcome::NotFound,
                    Some(SubscriberStatus::Confirmed) => {
                        ConfirmOutcome::AlreadyConfirmed { preferences_link_queued: false }
                    }
                    Some(_) => ConfirmOutcome::NoLongerSubscribed,
                }
            }
        });
        Ok(outcome)
    }

    /// Unsubscribes at once and suppresses anything still queued for them.
    /// Returns false when they had already left.
    pub async fn unsubscribe(&self, subscriber_id: Uuid) -> StoreResult<bool> {
        let now = now();
        let changed = in_transaction!(self, |tx| {
            let changed = sqlx::query(
                "UPDATE subscribers SET status = $3, unsubscribed_at = $2, updated_at = $2 \
                 WHERE id = $1 AND status IN ($4, $5)",
            )
            .bind(subscriber_id)
            .bind(now)
            .bind(SubscriberStatus::Unsubscribed)
            .bind(SubscriberStatus::Pending)
            .bind(SubscriberStatus::Confirmed)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            sqlx::query(
                "UPDATE deliveries SET status = $3, last_error = 'unsubscribed', updated_at = $2 \
                 WHERE subscriber_id = $1 AND status = $4",
            )
            .bind(subscriber_id)
            .bind(now)
            .bind(DeliveryStatus::Suppressed)
            .bind(DeliveryStatus::Queued)
            .execute(&mut *tx)
            .await?;
            changed
        });
        Ok(changed)
    }

    /// Saves a subscriber's preferences. Returns false when they are no longer
    /// subscribed (unsubscribed or bounced).
    pub async fn update_preferences(&self, subscriber_id: Uuid, update: &PreferencesUpdate) -> StoreResult<bool> {
        let result = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE subscribers SET name = $2, tickers = $3, alert_threshold_pct = $4, \
                     digest_frequency = $5, alerts_enabled = $6, updated_at = $7 \
                 WHERE id = $1 AND status IN ($8, $9)",
            )
            .bind(subscriber_id)
            .bind(update.name.as_str())
            .bind(update.watchlist.to_stored())
            .bind(update.alert_threshold.percent())
            .bind(update.digest_frequency.as_str())
            .bind(update.alerts_enabled)
            .bind(now())
            .bind(SubscriberStatus::Pending)
            .bind(SubscriberStatus::Confirmed)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(result == 1)
    }

    pub async fn subscriber(&self, subscriber_id: Uuid) -> StoreResult<Option<Subscriber>> {
        let row: Option<SubscriberRow> = on_reader!(self, |pool| {
            sqlx::query_as(concat!("SELECT ", subscriber_columns!(), " FROM subscribers WHERE id = $1"))
                .bind(subscriber_id)
                .fetch_optional(pool)
                .await
        })?;
        row.map(Subscriber::try_from).transpose()
    }

    pub async fn subscriber_by_email(&self, email: &SubscriberEmail) -> StoreResult<Option<Subscriber>> {
        let row: Option<SubscriberRow> = on_reader!(self, |pool| {
            sqlx::query_as(concat!("SELECT ", subscriber_columns!(), " FROM subscribers WHERE email = $1"))
                .bind(email.as_str())
                .fetch_optional(pool)
                .await
        })?;
        row.map(Subscriber::try_from).transpose()
    }

    /// Every consent a subscriber gave, newest first.
    pub async fn consents(&self, subscriber_id: Uuid) -> StoreResult<Vec<ConsentRecord>> {
        let records = on_reader!(self, |pool| {
            sqlx::query_as(
                "SELECT at, ip, user_agent, source FROM consents WHERE subscriber_id = $1 ORDER BY at DESC, id",
            )
            .bind(subscriber_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(records)
    }

    /// Number of subscribers in each status.
    pub async fn subscriber_counts(&self) -> StoreResult<Vec<(SubscriberStatus, i64)>> {
        let counts = on_reader!(self, |pool| {
            sqlx::query_as("SELECT status, COUNT(*) FROM subscribers GROUP BY status ORDER BY status")
                .fetch_all(pool)
                .await
        })?;
        Ok(counts)
    }
}
