//! The one way this application makes outgoing HTTP requests.

use std::net::IpAddr;
use std::time::Duration;

use url::Url;

/// The most redirects one request follows.
pub const MAX_REDIRECTS: usize = 5;

/// A client with a timeout and at most five redirects.
pub fn client(timeout: Duration) -> reqwest::Client {
    build(builder(timeout).redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS)))
}

/// A client's settings before its redirect policy. rustls is built without a
/// default crypto provider (ring is the one every other crate here uses), so
/// the provider is installed first.
pub fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("tickermail/", env!("CARGO_PKG_VERSION")))
}

pub fn build(builder: reqwest::ClientBuilder) -> reqwest::Client {
    builder.build().expect("an HTTP client with rustls and ring can always be built")
}

/// Why a redirect from `from` to `to`, whose host has `addresses`, is not
/// followed: to anything but http(s), from https to http, or (unless
/// `allow_private`) to an address inside a network rather than on the internet.
pub fn redirect_refusal(from: &Url, to: &Url, addresses: &[IpAddr], allow_private: bool) -> Option<String> {
    if !matches!(to.scheme(), "http" | "https") {
        return Some("only http and https are followed".into());
    }
    if from.scheme() == "https" && to.scheme() == "http" {
        return Some("it goes from https to plain http".into());
    }
    if allow_private {
        return None;
    }
    addresses.iter().find_map(|address| {
        private_kind(*address).map(|kind| format!("{address} is {kind} address (FEED_ALLOW_PRIVATE=true allows it)"))
    })
}

/// What kind of non-public address `address` is, if it is one.
fn private_kind(address: IpAddr) -> Option<&'static str> {
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback")
            } else if v4.is_link_local() {
                Some("a link-local")
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Some("a private")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || a == 0 {
                Some("a reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("a reserved")
            } else {
                None
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body could not be read: {0}")]
    Read(#[from] reqwest::Error),
}

/// Reads a response body, refusing it as soon as it passes `max_bytes`
/// (a declared length is checked before anything is read).
pub async fn read_capped(mut response: reqwest::Response, max_bytes: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|length| length > max_bytes as u64) {
        return Err(BodyError::TooLarge(max_bytes));
    }
    let mut body = Vec::new();
    // Without the URL: a provider's may carry an API key.
    while let Some(chunk) = response.chunk().await.map_err(reqwest::Error::without_url)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(BodyError::TooLarge(max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Retry-After` as seconds (the HTTP-date form is rare from these APIs and
/// is treated as absent).
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(from: &str, to: &str, address: &str, allow_private: bool) -> Option<String> {
        let (from, to) = (Url::parse(from).unwrap(), Url::parse(to).unwrap());
        redirect_refusal(&from, &to, &[address.parse().unwrap()], allow_private)
    }

    #[test]
    fn a_redirect_into_the_network_or_down_to_plain_http_is_refused() {
        let public = "93.184.215.14";
        assert_eq!(refusal("https://news.example/feed", "https://cdn.example/feed", public, false), None);
        assert_eq!(refusal("http://news.example/feed", "https://news.example/feed", public, false), None);
        for (address, kind) in [
            ("127.0.0.1", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("10.0.0.5", "private"),
            ("172.16.3.4", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "private"),
            ("fd00::1", "private"),
            ("0.0.0.0", "reserved"),
            ("::", "reserved"),
        ] {
            let refused = refusal("https://news.example/feed", "https://internal.example/", address, false);
            assert!(refused.as_deref().is_some_and(|r| r.contains(kind)), "{address}: {refused:?}");
            assert_eq!(refusal("https://news.example/feed", "https://internal.example/", address, true), None);
        }
        let down = refusal("https://news.example/feed", "http://news.example/feed", public, true);
        assert!(down.is_some_and(|r| r.contains("https to plain http")));
        let other = refusal("https://news.example/feed", "file:///etc/passwd", public, true);
        assert!(other.is_some_and(|r| r.contains("only http and https")));
    }
}
