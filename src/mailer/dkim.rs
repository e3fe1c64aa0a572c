//! Optional DKIM signing of every message (`DKIM_SELECTOR`, `DKIM_DOMAIN`,
//! `DKIM_PRIVATE_KEY_FILE`): an RSA key in PKCS#1 PEM, or an Ed25519 key as
//! its 32 bytes in base64. Bulk mail's signature also covers its
//! unsubscribe headers, so they cannot be altered on the way.

use std::fmt;

use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::{ContentTransferEncoding, HeaderName, HeaderValue};
use lettre::message::{Body, Message};

const SIGNED: [&str; 5] = ["From", "To", "Subject", "Date", "Message-ID"];
const SIGNED_IN_BULK: [&str; 3] = ["List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"];

/// Two configurations, as lettre signs a fixed list of headers and
/// transactional mail has no `List-*` headers.
pub struct DkimSigner {
    transactional: DkimConfig,
    bulk: DkimConfig,
    domain: String,
    selector: String,
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DkimSigner {{ domain: {}, selector: {} }}", self.domain, self.selector)
    }
}

/// The key file holds no key we can sign with.
#[derive(Debug, thiserror::Error)]
#[error("not an RSA key in PKCS#1 PEM (BEGIN RSA PRIVATE KEY) or an Ed25519 key in base64: {0}")]
pub struct DkimKeyError(String);

impl DkimSigner {
    /// Reads the key from its file's text; the message says what is wrong.
    pub fn new(selector: &str, domain: &str, key_text: &str) -> Result<Self, DkimKeyError> {
        let key_text = key_text.trim();
        let algorithm =
            if key_text.starts_with("-----BEGIN") { DkimSigningAlgorithm::Rsa } else { DkimSigningAlgorithm::Ed25519 };
        let config = |headers: Vec<&'static str>| -> Result<DkimConfig, DkimKeyError> {
            let key = DkimSigningKey::new(key_text, algorithm).map_err(|e| DkimKeyError(e.to_string()))?;
            let headers = headers.iter().map(|name| HeaderName::new_from_ascii_str(name)).collect();
            let canonicalization = DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            };
            Ok(DkimConfig::new(selector.to_string(), domain.to_string(), key, headers, canonicalization))
        };
        Ok(Self {
            transactional: config(SIGNED.to_vec())?,
            bulk: config(SIGNED.iter().chain(SIGNED_IN_BULK.iter()).copied().collect())?,
            domain: domain.to_string(),
            selector: selector.to_string(),
        })
    }

    /// The DKIM-Signature header of a message with these headers and this
    /// body (without dot-stuffing). lettre signs; it is handed a message of
    /// the same headers and body, so the signature covers exactly what is sent.
    pub fn signature(&self, headers: &[HeaderValue], body: &[u8], bulk: bool) -> HeaderValue {
        let mut builder = Message::builder();
        for header in headers {
            builder = builder.raw_header(header.clone());
        }
        let body = Body::dangerous_pre_encoded(body.to_vec(), ContentTransferEncoding::SevenBit);
        let mut message = builder.body(body).expect("our messages have From and To");
        message.sign(if bulk { &self.bulk } else { &self.transactional });
        message.headers_mut().remove_raw("DKIM-Signature").expect("lettre adds its signature")
    }
}
