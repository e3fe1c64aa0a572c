//! The one way this application makes outgoing HTTP requests.

use std::time::Duration;

/// A client with a timeout and at most five redirects. rustls is built
/// without a default crypto provider (ring is the one every other crate here
/// uses), so the provider is installed first.
pub fn client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("tickermail/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client with rustls and ring can always be built")
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
