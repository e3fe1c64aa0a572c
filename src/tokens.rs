//! Links in emails carry tokens derived with an HMAC of the server secret, so
//! nothing secret is stored and a token cannot be forged or guessed (160 bits).
//!
//! - A confirmation token names the subscriber and when it was issued; it
//!   expires after the configured time.
//! - A manage token (unsubscribe and preferences) names the subscriber and
//!   their `token_nonce`; it lasts as long as the subscription.

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

    pub fn confirmation_token(&self, subscriber_id: Uuid, issued_at: DateTime<Utc>) -> String {
        let id = subscriber_id.simple().to_string();
        let issued = issued_at.timestamp().to_string();
        let signature = self.sign(&[b"confirm", id.as_bytes(), issued.as_bytes()]);
        format!("{id}.{issued}.{signature}")
    }

    /// Checks a confirmation token's MAC; expiry is the caller's decision.
    pub fn parse_confirmation_token(&self, token: &str) -> Option<ConfirmationClaim> {
        let mut parts = token.split('.');
        let (id, issued, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !self.verify(&[b"confirm", id.as_bytes(), issued.as_bytes()], signature) {
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
        let token = key("k1").confirmation_token(id, issued);
        let claim = key("k1").parse_confirmation_token(&token).unwrap();
        assert_eq!(claim, ConfirmationClaim { subscriber_id: id, issued_at: issued });
    }

    #[test]
    fn a_token_signed_with_another_key_or_tampered_with_is_rejected() {
        let id = Uuid::new_v4();
        let token = key("k1").confirmation_token(id, Utc::now());
        assert!(key("k2").parse_confirmation_token(&token).is_none());
        let later = token.replacen('.', ".9", 1);
        assert!(key("k1").parse_confirmation_token(&later).is_none());
        for junk in ["", ".", "..", "a.b.c", "a.b.c.d", &format!("{token}.x")] {
            assert!(key("k1").parse_confirmation_token(junk).is_none(), "{junk:?}");
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
}
