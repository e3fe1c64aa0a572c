//! The feed poller: RSS 2.0 and Atom (a WordPress `/feed/` above all),
//! fetched with a conditional GET, a timeout, a size cap and few redirects,
//! parsed by feed-rs, and upserted by guid (or link) so a second poll of the
//! same feed stores nothing new. A feed that fails in any way is logged and
//! recorded with its error; the others carry on.
//!
//! The admin chose a feed's URL, so it may be on the local network (an
//! internal CMS); where it redirects to was chosen by whoever answers it,
//! so each redirect is checked before it is followed, and the connection
//! goes to the very addresses that were checked.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use reqwest::header::{ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION};
use url::{Host, Url};

use super::http::{self, BodyError};
use super::stories::{RawStory, clean_story};
use crate::store::{FeedState, Store, StoreError, StoryUpsert};

pub struct FeedPoller {
    timeout: Duration,
    /// Follows no redirects by itself: each is checked first.
    client: reqwest::Client,
    max_bytes: usize,
    max_items: usize,
    allow_private: bool,
}

/// What one poll of one feed did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedOutcome {
    /// 304: nothing changed since the last poll.
    NotModified,
    Polled {
        inserted: usize,
        updated: usize,
        unchanged: usize,
        skipped: usize,
        /// The oldest items beyond `FEED_MAX_ITEMS`, not taken.
        left_out: usize,
    },
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct FeedReport {
    pub url: String,
    pub outcome: FeedOutcome,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("could not fetch: {0}")]
    Fetch(String),
    #[error("refused a redirect to {to}: {reason}")]
    Redirect { to: String, reason: String },
    #[error("HTTP {0}")]
    Status(u16),
    #[error("{0}")]
    Body(#[from] BodyError),
    #[error("not a feed: {0}")]
    Parse(String),
    #[error("the feed parser crashed on this feed")]
    ParserPanicked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FeedPoller {
    pub fn new(timeout: Duration, max_bytes: usize, max_items: usize, allow_private: bool) -> Self {
        let client = http::build(http::builder(timeout).redirect(reqwest::redirect::Policy::none()));
        Self { timeout, client, max_bytes, max_items, allow_private }
    }

    /// Polls each feed in turn; one feed's failure does not stop the others.
    pub async fn poll_all(&self, store: &Store, urls: &[url::Url]) -> Vec<FeedReport> {
        let mut reports = Vec::with_capacity(urls.len());
        for url in urls {
            let url = url.as_str();
            let outcome = match self.poll(store, url).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    tracing::warn!(feed = %url, %error, "feed poll failed");
                    FeedOutcome::Failed(error.to_string())
                }
            };
            reports.push(FeedReport { url: url.to_string(), outcome });
        }
        reports
    }

    #[tracing::instrument(name = "feed.poll", skip(self, store))]
    async fn poll(&self, store: &Store, url: &str) -> Result<FeedOutcome, FeedError> {
        let previous = store.feed_state(url).await?.unwrap_or_default();
        let fetched = self.fetch(url, &previous).await;
        let (body, validators) = match fetched {
            Ok(Some(fetched)) => fetched,
            Ok(None) => {
                store.save_feed_state(url, &previous, None).await?;
                return Ok(FeedOutcome::NotModified);
            }
            Err(error) => {
                store.save_feed_state(url, &previous, Some(&error.to_string())).await?;
                return Err(error);
            }
        };
        let (entries, left_out) = match parse_feed(body, url.to_string(), self.max_items).await {
            Ok(parsed) => parsed,
            Err(error) => {
                store.save_feed_state(url, &previous, Some(&error.to_string())).await?;
                return Err(error);
            }
        };
        let (mut inserted, mut updated, mut unchanged, mut skipped) = (0, 0, 0, 0);
        let now = crate::store::now();
        for entry in entries {
            match clean_story(entry, now) {
                Ok(story) => match store.upsert_story(&story).await?.0 {
                    StoryUpsert::Inserted => inserted += 1,
                    StoryUpsert::Updated => updated += 1,
                    StoryUpsert::Unchanged => unchanged += 1,
                },
                Err(invalid) => {
                    tracing::info!(feed = %url, %invalid, "feed item skipped");
                    skipped += 1;
                }
            }
        }
        store.save_feed_state(url, &validators, None).await?;
        tracing::info!(inserted, updated, unchanged, skipped, left_out, "feed polled");
        Ok(FeedOutcome::Polled { inserted, updated, unchanged, skipped, left_out })
    }

    /// The feed's body and validators, or `None` when it has not changed.
    async fn fetch(&self, url: &str, previous: &FeedState) -> Result<Option<(Vec<u8>, FeedState)>, FeedError> {
        let response = self.get_following_checked_redirects(url, previous).await?;
        match response.status() {
            StatusCode::NOT_MODIFIED => return Ok(None),
            status if !status.is_success() => return Err(FeedError::Status(status.as_u16())),
            _ => {}
        }
        let validators = validators(response.headers());
        let body = http::read_capped(response, self.max_bytes).await?;
        Ok(Some((body, validators)))
    }
}

impl FeedPoller {
    /// GETs `url` (conditionally), following up to five redirects, each
    /// only after [`http::redirect_refusal`] has passed its target's addresses.
    async fn get_following_checked_redirects(
        &self,
        url: &str,
        previous: &FeedState,
    ) -> Result<reqwest::Response, FeedError> {
        let mut url = Url::parse(url).map_err(|e| FeedError::Fetch(e.to_string()))?;
        let mut client = self.client.clone();
        for _ in 0..=http::MAX_REDIRECTS {
            let mut request = client.get(url.clone());
            if let Some(etag) = &previous.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(last_modified) = &previous.last_modified {
                request = request.header(IF_MODIFIED_SINCE, last_modified);
            }
            let response = request.send().await.map_err(|e| FeedError::Fetch(e.to_string()))?;
            if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
                return Ok(response);
            }
            let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok());
            let next = location
                .and_then(|location| url.join(location).ok())
                .ok_or_else(|| FeedError::Fetch(format!("HTTP {} without a usable Location", response.status())))?;
            let refused = |reason: String| FeedError::Redirect { to: next.to_string(), reason };
            let addresses = match next.host() {
                Some(Host::Ipv4(v4)) => vec![v4.into()],
                Some(Host::Ipv6(v6)) => vec![v6.into()],
                Some(Host::Domain(domain)) => {
                    let port = next.port_or_known_default().unwrap_or(80);
                    let found = tokio::net::lookup_host((domain, port))
                        .await
                        .map_err(|e| refused(format!("its host does not resolve: {e}")))?;
                    found.map(|address| address.ip()).collect()
                }
                None => return Err(refused("it has no host".into())),
            };
            if let Some(reason) = http::redirect_refusal(&url, &next, &addresses, self.allow_private) {
                return Err(refused(reason));
            }
            // The next hop connects to the addresses just checked, not to a fresh (rebindable) lookup.
            client = match next.host() {
                Some(Host::Domain(domain)) => {
                    let port = next.port_or_known_default().unwrap_or(80);
                    let pinned: Vec<std::net::SocketAddr> = addresses.iter().map(|ip| (*ip, port).into()).collect();
                    http::build(
                        http::builder(self.timeout)
                            .redirect(reqwest::redirect::Policy::none())
                            .resolve_to_addrs(domain, &pinned),
                    )
                }
                _ => self.client.clone(),
            };
            url = next;
        }
        Err(FeedError::Fetch(format!("more than {} redirects", http::MAX_REDIRECTS)))
    }
}

fn validators(headers: &HeaderMap) -> FeedState {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| v.len() <= 256).map(str::to_string);
    FeedState { etag: header(ETAG), last_modified: header(LAST_MODIFIED) }
}

/// Parses a feed's raw bytes (feed-rs decodes by the XML prolog) into the
/// raw stories of its newest `max_items` entries, and how many older ones
/// were left out. The parser runs on a blocking thread, where a panic on
/// hostile input is caught and becomes an error.
pub async fn parse_feed(body: Vec<u8>, source: String, max_items: usize) -> Result<(Vec<RawStory>, usize), FeedError> {
    let parsed = tokio::task::spawn_blocking(move || {
        // An empty generated id lets a missing guid fall back to the story's link.
        let parser = feed_rs::parser::Builder::new().id_generator(|_, _, _| String::new()).build();
        parser.parse(body.as_slice()).map(|mut feed| {
            let left_out = feed.entries.len().saturating_sub(max_items);
            if left_out > 0 {
                // Feeds are usually newest first, but not all are: the dates decide (undated ones last).
                feed.entries.sort_by_key(|e| std::cmp::Reverse(e.published.or(e.updated)));
                feed.entries.truncate(max_items);
            }
            (raw_stories(feed, &source), left_out)
        })
    })
    .await;
    match parsed {
        Ok(Ok(parsed)) => Ok(parsed),
        Ok(Err(error)) => Err(FeedError::Parse(error.to_string())),
        Err(_) => Err(FeedError::ParserPanicked),
    }
}

fn raw_stories(feed: feed_rs::model::Feed, source: &str) -> Vec<RawStory> {
    feed.entries
        .into_iter()
        .map(|entry| RawStory {
            url: story_link(&entry.links),
            guid: Some(entry.id).filter(|id| !id.is_empty()),
            source: source.to_string(),
            title: entry.title.map(|t| t.content).unwrap_or_default(),
            author: entry.authors.into_iter().find_map(|a| a.name),
            summary_html: entry.summary.map(|s| s.content),
            body_html: entry.content.and_then(|c| c.body),
            categories: entry.categories.into_iter().map(|c| c.term).collect(),
            tickers: Vec::new(),
            published_at: entry.published.or(entry.updated).map(|at| at.with_timezone(&Utc)),
        })
        .collect()
}

/// Comment pages and comment feeds are links too; the story's own is one
/// without a target. Of those, the first web link (an entry may put a
/// `javascript:` or `data:` one first), else the first, to be refused by name.
fn story_link(links: &[feed_rs::model::Link]) -> String {
    let own = || links.iter().filter(|l| l.target.is_none() && l.rel.as_deref().is_none_or(|rel| rel == "alternate"));
    own()
        .find(|l| Url::parse(&l.href).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
        .or_else(|| own().next())
        .map(|l| l.href.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn fixture_stories(name: &str) -> Vec<crate::domain::NewStory> {
        let body = crate::sources::quotes::fixture(name);
        let (raw, _) = parse_feed(body, "https://stocknews.example/feed/".into(), 200).await.unwrap();
        raw.into_iter().map(|r| clean_story(r, Utc::now()).unwrap()).collect()
    }

    #[tokio::test]
    async fn a_wordpress_feed_gives_clean_stories_with_their_tickers() {
        let stories = fixture_stories("wp_feed.xml").await;
        assert_eq!(stories.len(), 2);
        let nokia = &stories[0];
        assert_eq!(nokia.guid, "https://stocknews.example/?p=4821");
        assert_eq!(nokia.title, "Nokia Oyj (ADR) (NYSE:NOK) and Xiaomi ink Patent And Equipment Deal");
        assert!(nokia.url.ends_with("and-equipment-deal/"), "{}", nokia.url);
        assert_eq!(nokia.author.as_deref(), Some("Jane Doe"));
        assert_eq!(nokia.published_at.to_rfc3339(), "2026-06-09T20:41:33+00:00");
        assert_eq!(nokia.tickers, vec!["NOK", "1810.HK", "XIACF"]);
        assert!(!nokia.summary.contains('<') && !nokia.summary.contains("&#"), "{}", nokia.summary);
        assert!(!stories[1].tickers.contains(&"US".to_string()));
    }

    #[tokio::test]
    async fn an_atom_feed_gives_the_same_story() {
        let stories = fixture_stories("atom_feed.xml").await;
        assert_eq!(stories[0].guid, "https://stocknews.example/?p=4821");
        assert!(stories[0].tickers.starts_with(&["NOK".to_string()]));
    }

    proptest::proptest! {
        #[test]
        fn parsing_a_damaged_feed_never_panics_out_of_the_parser(
            which in 0usize..2, at in 0usize..8192, cut in 0usize..256, junk in ".{0,32}",
        ) {
            let mut body = crate::sources::quotes::fixture(["wp_feed.xml", "atom_feed.xml"][which]);
            let at = at.min(body.len());
            let end = (at + cut).min(body.len());
            body.splice(at..end, junk.into_bytes());
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            if let Ok((stories, _)) = runtime.block_on(parse_feed(body, "x".into(), 200)) {
                for story in stories {
                    let _ = clean_story(story, Utc::now());
                }
            }
        }
    }

    #[tokio::test]
    async fn hostile_feeds_are_errors_not_crashes() {
        for body in [
            &b"not xml at all"[..],
            b"<rss version=\"2.0\"><channel><item><title>unclosed",
            b"\xff\xfe\x00<\x00r\x00s\x00s",
            "<rss version=\"2.0\"><channel><item><title>t</title><author>jane@example.com\u{ff08}Jane Doe\u{ff09}</author></item></channel></rss>".as_bytes(),
        ] {
            let _ = parse_feed(body.to_vec(), "x".into(), 200).await;
        }
        assert!(parse_feed(b"not xml at all".to_vec(), "x".into(), 200).await.is_err());
    }
}
