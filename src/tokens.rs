//! Links in emails carry tokens derived with an HMAC of the server secret, so
//! nothing secret is stored and a token cannot be forged or guessed (160 bits).
//!
//! - A confirmation token names the subscriber, their `token_nonce` (which a
//!   new sign-up replaces, so older links stop working) and when it was
//!   issued; it expires after the configured time.
//! - A manage token (unsubscribe and preferences) names the subscriber and
//!   their `token_nonce`; it lasts as long as the subscription.
//! - An admin session names its expiry and is tied to the admin's email and
//!   password hash, so changing the password ends every session. A form's CSRF
//!   token is derived from the session (or, on the login form, from a random
//!   value in a cookie), so another site cannot make one.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use uuid::Uuid;

const MAC_BYTES: usize = 20;

#[derive(Clone)]
pub struct TokenKey(SecretString);

/// What a confirmation token says, once its MAC has been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmationClaim {
    pub subscriber_id: Uuid,
    pub issued_at: DateTime<Utc>,
}

impl TokenKey {
    pub fn new(secret: SecretString) -> Self {
        Self(secret)
    }

    fn mac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.0.expose_secret().as_bytes()).expect("HMAC accepts keys of any length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    fn sign(&self, parts: &[&[u8]]) -> String {
        hex::encode(&self.mac(parts).finalize().into_bytes()[..MAC_BYTES])
    }

    fn verify(&self, parts: &[&[u8]], signature_hex: &str) -> bool {
        match hex::decode(signature_hex) {
            Ok(signature) if signature.len() == MAC_BYTES => self.mac(parts).verify_truncated_left(&signature).is_ok(),
            _ => false,
        }
    }

    pub fn confirmation_token(&self, subscriber_id: Uuid, token_nonce: &str, issued_at: DateTime<Utc>) -> String {
        let id = subscriber_id.simple().to_string();
        let issued = issued_at.timestamp().to_string();
        let signature = self.sign(&[b"confirm", id.as_bytes(), token_nonce.as_bytes(), issued.as_bytes()]);
        format!("{id}.{issued}.{signature}")
    }

    /// The subscriber a confirmation token names, before the nonce is checked.
    pub fn confirmation_token_subscriber(token: &str) -> Option<Uuid> {
        Uuid::try_parse(token.split('.').next()?).ok()
    }

    /// Checks a confirmation token's MAC against the subscriber's current
    /// nonce; expiry is the caller's decision.
    pub fn verify_confirmation_token(&self, token: &str, token_nonce: &str) -> Option<ConfirmationClaim> {
        let mut parts = token.split('.');
        let (id, issued, signature) = (parts.next()?, parts.next()?, parts.next()?);
        let signed = [b"confirm".as_slice(), id.as_bytes(), token_nonce.as_bytes(), issued.as_bytes()];
        if parts.next().is_some() || !self.verify(&signed, signature) {
            return None;
        }
        Some(ConfirmationClaim {
            subscriber_id: Uuid::try_parse(id).ok()?,
            issued_at: DateTime::from_timestamp(issued.parse().ok()?, 0)?,
        })
    }

    pub fn manage_token(&self, subscriber_id: Uuid, token_nonce: &str) -> String {
        let id = subscriber_id.simple().to_string();
        let signature = self.sign(&[b"manage", id.as_bytes(), token_nonce.as_bytes()]);
        format!("{id}.{signature}")
    }

    /// The subscriber a manage token names, before the nonce is checked.
    pub fn manage_token_subscriber(token: &str) -> Option<Uuid> {
        let (id, _) = token.split_once('.')?;
        Uuid::try_parse(id).ok()
    }

    pub fn verify_manage_token(&self, token: &str, token_nonce: &str) -> bool {
        match token.split_once('.') {
            Some((id, signature)) => self.verify(&[b"manage", id.as_bytes(), token_nonce.as_bytes()], signature),
            None => false,
        }
    }
}

impl TokenKey {
    pub fn admin_session(&self, email: &str, password_hash: &str, expires_at: DateTime<Utc>) -> String {
        let expires = expires_at.timestamp().to_string();
        let signature = self.sign(&[b"admin-session", email.as_bytes(), password_hash.as_bytes(), expires.as_bytes()]);
        format!("{expires}.{signature}")
    }

    /// Whether `session` was made for this admin and has not expired.
    pub fn verify_admin_session(&self, session: &str, email: &str, password_hash: &str, now: DateTime<Utc>) -> bool {
        let Some((expires, signature)) = session.split_once('.') else {
            return false;
        };
        let unexpired = expires.parse::<i64>().is_ok_and(|expires| expires > now.timestamp());
        unexpired
            && self
                .verify(&[b"admin-session", email.as_bytes(), password_hash.as_bytes(), expires.as_bytes()], signature)
    }

    /// The CSRF token of the forms shown with `session` (a session cookie, or
    /// the login form's random cookie).
    pub fn csrf_token(&self, session: &str) -> String {
        self.sign(&[b"csrf", session.as_bytes()])
    }

    pub fn verify_csrf_token(&self, session: &str, token: &str) -> bool {
        self.verify(&[b"csrf", session.as_bytes()], token)
    }
}

/// A fresh random value for a subscriber's `token_nonce` (128 bits).
pub fn new_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> TokenKey {
        TokenKey::new(SecretString::from(secret.to_string()))
    }

    #[test]
    fn a_confirmation_token_round_trips() {
        let id = Uuid::new_v4();
        let issued = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let token = key("k1").confirmation_token(id, "nonce-a", issued);
        assert_eq!(TokenKey::confirmation_token_subscriber(&token), Some(id));
        let claim = key("k1").verify_confirmation_token(&token, "nonce-a").unwrap();
        assert_eq!(claim, ConfirmationClaim { subscriber_id: id, issued_at: issued });
    }

    #[test]
    fn a_confirmation_token_is_tied_to_the_nonce() {
        let token = key("k1").confirmation_token(Uuid::new_v4(), "nonce-a", Utc::now());
        assert!(key("k1").verify_confirmation_token(&token, "nonce-b").is_none());
    }

    #[test]
    fn a_token_signed_with_another_key_or_tampered_with_is_rejected() {
        let id = Uuid::new_v4();
        let token = key("k1").confirmation_token(id, "n", Utc::now());
        assert!(key("k2").verify_confirmation_token(&token, "n").is_none());
        let later = token.replacen('.', ".9", 1);
        assert!(key("k1").verify_confirmation_token(&later, "n").is_none());
        for junk in ["", ".", "..", "a.b.c", "a.b.c.d", &format!("{token}.x")] {
            assert!(key("k1").verify_confirmation_token(junk, "n").is_none(), "{junk:?}");
        }
    }

    #[test]
    fn a_manage_token_is_tied_to_the_nonce() {
        let id = Uuid::new_v4();
        let token = key("k1").manage_token(id, "nonce-a");
        assert_eq!(TokenKey::manage_token_subscriber(&token), Some(id));
        assert!(key("k1").verify_manage_token(&token, "nonce-a"));
        assert!(!key("k1").verify_manage_token(&token, "nonce-b"));
        assert!(!key("k2").verify_manage_token(&token, "nonce-a"));
    }

    #[test]
    fn an_admin_session_expires_and_ends_when_the_password_changes() {
        let now = Utc::now();
        let session = key("k1").admin_session("admin@example.com", "hash-1", now + chrono::Duration::hours(1));
        assert!(key("k1").verify_admin_session(&session, "admin@example.com", "hash-1", now));
        assert!(!key("k1").verify_admin_session(&session, "admin@example.com", "hash-2", now));
        assert!(!key("k1").verify_admin_session(&session, "other@example.com", "hash-1", now));
        assert!(!key("k2").verify_admin_session(&session, "admin@example.com", "hash-1", now));
        let later = now + chrono::Duration::hours(2);
        assert!(!key("k1").verify_admin_session(&session, "admin@example.com", "hash-1", later));
        let extended = session.replacen(|c: char| c.is_ascii_digit(), "9", 1);
        assert!(!key("k1").verify_admin_session(&extended, "admin@example.com", "hash-1", now));
    }

    #[test]
    fn a_csrf_token_belongs_to_one_session() {
        let token = key("k1").csrf_token("session-a");
        assert!(key("k1").verify_csrf_token("session-a", &token));
        assert!(!key("k1").verify_csrf_token("session-b", &token));
        assert!(!key("k1").verify_csrf_token("session-a", ""));
    }
}
