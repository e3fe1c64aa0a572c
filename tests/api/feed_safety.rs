//! Feeds that would make the poller reach inside the network or hoard:
//! redirects to private addresses, feeds of endless items, and entries whose
//! first link is a script.

use chrono::{Duration, Utc};

use crate::helpers::{RawDb, fresh_database_url};
use crate::replay::{Recorded, ReplayServer};
use crate::sources::{ingest, store_at};

const RSS: &str = "application/rss+xml; charset=UTF-8";

#[tokio::test]
async fn a_feed_that_redirects_to_a_private_address_is_refused_unless_feed_allow_private_is_set() {
    let feeds = ReplayServer::start().await;
    let moved = feeds.url("/moved/");
    feeds.route("/feed/", Recorded::new(301, "text/plain", "").with_header("Location", &moved));
    feeds.route("/moved/", Recorded::fixture(200, RSS, "wp_feed.xml"));
    let database = fresh_database_url().await;

    let (code, output) = ingest(&database, &[("FEED_URLS", feeds.url("/feed/"))], &["--feeds"]).await;
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains(&format!(
            "/feed/: failed: refused a redirect to {moved}: 127.0.0.1 is a loopback address (FEED_ALLOW_PRIVATE=true allows it)"
        )),
        "{output}"
    );
    assert!(feeds.requests_to("/moved/").is_empty(), "the private address is never asked");
    assert!(store_at(&database).await.recent_stories(10).await.unwrap().is_empty());

    let envs = [("FEED_URLS", feeds.url("/feed/")), ("FEED_ALLOW_PRIVATE", "true".to_string())];
    let (code, output) = ingest(&database, &envs, &["--feeds"]).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("/feed/: 2 new"), "{output}");
}

/// An RSS feed of `count` items, the oldest first (so the first items are not the newest).
fn feed_of(count: usize) -> String {
    let now = Utc::now();
    let items: String = (0..count)
        .rev()
        .map(|age| {
            let published = (now - Duration::minutes(age as i64)).to_rfc2822();
            format!(
                "<item><title>Story {age} about (NYSE:NOK)</title><link>https://stocknews.example/story-{age}/</link>\
                 <guid isPermaLink=\"false\">https://stocknews.example/?p={age}</guid><pubDate>{published}</pubDate>\
                 <description>Story {age}.</description></item>"
            )
        })
        .collect();
    format!("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Many</title>{items}</channel></rss>")
}

#[tokio::test]
async fn a_feed_with_more_items_than_feed_max_items_has_only_its_newest_that_many_stored() {
    let feeds = ReplayServer::start().await;
    feeds.route("/many/", Recorded::new(200, RSS, feed_of(1000)));

    let database = fresh_database_url().await;
    let (code, output) = ingest(&database, &[("FEED_URLS", feeds.url("/many/"))], &["--feeds"]).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("200 new, 0 updated, 0 unchanged, 0 skipped, 800 past FEED_MAX_ITEMS left out"),
        "{output}"
    );
    assert_eq!(RawDb::connect(&database).await.fetch_i64("SELECT COUNT(*) FROM stories").await, 200);

    let database = fresh_database_url().await;
    let envs = [("FEED_URLS", feeds.url("/many/")), ("FEED_MAX_ITEMS", "50".to_string())];
    let (code, output) = ingest(&database, &envs, &["--feeds"]).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("50 new"), "{output}");
    let mut titles = RawDb::connect(&database).await.fetch_strings("SELECT title FROM stories").await;
    titles.sort_by_key(|t| t.split(' ').nth(1).unwrap().parse::<u32>().unwrap());
    assert_eq!(titles.len(), 50);
    assert_eq!((titles[0].as_str(), titles[49].as_str()), ("Story 0 about (NYSE:NOK)", "Story 49 about (NYSE:NOK)"));
}

#[tokio::test]
async fn an_atom_entry_whose_first_link_is_unsafe_is_stored_with_its_web_link() {
    let feeds = ReplayServer::start().await;
    feeds.route("/atom/", Recorded::fixture(200, "application/atom+xml", "atom_unsafe_first_link.xml"));
    let database = fresh_database_url().await;

    let (code, output) = ingest(&database, &[("FEED_URLS", feeds.url("/atom/"))], &["--feeds"]).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("1 new, 0 updated, 0 unchanged, 1 skipped"),
        "an entry with no web link at all is skipped: {output}"
    );
    let stories = store_at(&database).await.recent_stories(10).await.unwrap();
    assert_eq!(stories.len(), 1);
    assert_eq!(stories[0].url, "https://stocknews.example/2026/06/09/nokia-wins-a-patent-deal/");
}
