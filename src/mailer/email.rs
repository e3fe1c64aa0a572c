//! An email ready to go: its envelope and its content in SMTP wire form,
//! built in one pass from the rendered text and HTML.

use lettre::message::header::{HeaderName, HeaderValue, Headers};
use rand::Rng;

use super::DkimSigner;
use super::wire::{self, Piece, TransferEncoding};

/// One message to one recipient.
#[derive(Debug, Clone)]
pub struct Email {
    pub(super) envelope_from: String,
    pub(super) envelope_to: String,
    subject: String,
    /// The message as SMTP DATA: CRLF line ends, every line that starts with
    /// a dot given a second one (RFC 5321 §4.5.2), ending with the `.` line.
    pub(super) data: Vec<u8>,
}

/// What a message is made of, before it is put on the wire.
pub(super) struct Content<'a> {
    pub envelope_from: &'a lettre::Address,
    pub envelope_to: &'a lettre::Address,
    pub subject: String,
    /// In order; MIME headers are added.
    pub headers: Vec<HeaderValue>,
    /// The text part, in pieces (one, or some encoded beforehand).
    pub text: &'a [Piece<'a>],
    pub html: &'a [Piece<'a>],
}

impl Email {
    /// A multipart/alternative message of a text and an HTML part, signed
    /// when a DKIM signer is given (with `bulk`: over the `List-*` headers too).
    pub(super) fn multipart_alternative(content: Content<'_>, dkim: Option<(&DkimSigner, bool)>) -> Self {
        let boundary: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(40).map(char::from).collect();
        let mut headers = content.headers;
        headers.push(raw_header("MIME-Version", "1.0".into()));
        headers.push(raw_header("Content-Type", format!("multipart/alternative;\r\n boundary=\"{boundary}\"")));
        let length = |pieces: &[Piece<'_>]| pieces.iter().map(Piece::len).sum::<usize>();
        let body_capacity = length(content.text) * 11 / 10 + length(content.html) * 21 / 20 + 1024;
        let write_body = |body: &mut Vec<u8>| {
            push_part(body, &boundary, "text/plain", content.text, wire::write_7bit);
            push_part(body, &boundary, "text/html", content.html, wire::write_html_7bit);
            body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        };
        let mut data = match dkim {
            // The header block first and the body after it, in one buffer.
            None => {
                let header_block = header_block(None, headers);
                let mut data = Vec::with_capacity(header_block.len() + body_capacity);
                data.extend_from_slice(header_block.as_bytes());
                write_body(&mut data);
                data
            }
            // The signature covers the body, so the body comes first.
            Some((signer, bulk)) => {
                let mut body = Vec::with_capacity(body_capacity);
                write_body(&mut body);
                let signature = signer.signature(&headers, &wire::unstuffed(&body), bulk);
                let mut data = header_block(Some(signature), headers).into_bytes();
                data.extend_from_slice(&body);
                data
            }
        };
        data.extend_from_slice(b".\r\n");
        Self {
            envelope_from: content.envelope_from.to_string(),
            envelope_to: content.envelope_to.to_string(),
            subject: content.subject,
            data,
        }
    }

    /// The subject, as given (not encoded).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The message as a file holds it: no dot-stuffing, no `.` line.
    pub fn to_eml(&self) -> Vec<u8> {
        wire::unstuffed(self.data.strip_suffix(b".\r\n").unwrap_or(&self.data))
    }
}

/// One part: 7bit when `write_7bit` can carry the text (and the pieces
/// encoded beforehand have a 7bit form), else quoted-printable.
fn push_part(
    body: &mut Vec<u8>,
    boundary: &str,
    content_type: &str,
    pieces: &[Piece<'_>],
    write_7bit: fn(&mut Vec<u8>, &str) -> bool,
) {
    let start = body.len();
    for encoding in [TransferEncoding::SevenBit, TransferEncoding::QuotedPrintable] {
        body.truncate(start);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: {content_type}; charset=utf-8\r\nContent-Transfer-Encoding: {}\r\n\r\n",
                encoding.header_value()
            )
            .as_bytes(),
        );
        let written = match encoding {
            TransferEncoding::SevenBit => wire::write_pieces_7bit(body, pieces, write_7bit),
            TransferEncoding::QuotedPrintable => {
                wire::write_pieces_quoted_printable(body, pieces);
                true
            }
        };
        if written {
            break;
        }
    }
    body.extend_from_slice(b"\r\n");
}

/// The headers as they go on the wire, with the blank line that ends them.
fn header_block(signature: Option<HeaderValue>, headers: Vec<HeaderValue>) -> String {
    let mut block = Headers::with_capacity(headers.len() + 1);
    for header in signature.into_iter().chain(headers) {
        block.insert_raw(header);
    }
    format!("{block}\r\n")
}

/// A header whose value is plain ASCII we wrote ourselves, already folded.
fn raw_header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::dangerous_new_pre_encoded(HeaderName::new_from_ascii_str(name), value.clone(), value)
}
