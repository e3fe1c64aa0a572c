//! Turns a story as a feed or the CMS gives it into one we store: plain
//! text only (a story's HTML is never trusted), a checked link, a stable
//! guid, and the tickers it is about.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use url::Url;

use super::text::{html_to_text, truncate_chars};
use super::tickers::extract_tickers;
use crate::domain::{Listing, NewStory};

const MAX_TITLE_CHARS: usize = 300;
const MAX_SUMMARY_CHARS: usize = 500;
const MAX_AUTHOR_CHARS: usize = 100;
const MAX_URL_LEN: usize = 2048;
const MAX_GUID_LEN: usize = 500;
pub const MAX_STORY_TICKERS: usize = 50;

/// A story as it arrived; every text field may hold HTML.
#[derive(Debug, Clone, Default)]
pub struct RawStory {
    /// The feed's guid or the CMS's id; the link stands in when there is none.
    pub guid: Option<String>,
    /// A feed URL, or `api`.
    pub source: String,
    pub title: String,
    pub url: String,
    pub author: Option<String>,
    pub summary_html: Option<String>,
    pub body_html: Option<String>,
    /// Tags and categories: hints for ticker extraction, never tickers by themselves.
    pub categories: Vec<String>,
    /// Symbols the sender named explicitly (the CMS push).
    pub tickers: Vec<String>,
    pub published_at: Option<DateTime<Utc>>,
}

/// Why a story cannot be stored, naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidStory {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> InvalidStory {
    InvalidStory { field, message: message.into() }
}

/// Cleans a story. A publication time in the future is taken as now, so a
/// wrong clock cannot pin a story to the top.
pub fn clean_story(raw: RawStory, now: DateTime<Utc>) -> Result<NewStory, InvalidStory> {
    let title = truncate_chars(&html_to_text(&raw.title), MAX_TITLE_CHARS);
    if title.is_empty() {
        return Err(invalid("title", "a story needs a title"));
    }
    let url = clean_url(&raw.url)?;
    let mut explicit = Vec::new();
    for symbol in &raw.tickers {
        let listing = Listing::parse_key(symbol).ok_or_else(|| {
            invalid("tickers", format!("'{}' is not a ticker symbol like NOK or RY.TO", preview(symbol)))
        })?;
        explicit.push(listing);
    }
    let summary_text = raw.summary_html.as_deref().map(html_to_text).unwrap_or_default();
    let body_text = raw.body_html.as_deref().map(html_to_text).unwrap_or_default();
    let hints: Vec<&str> = raw.categories.iter().map(String::as_str).collect();
    let found = extract_tickers(&title, &format!("{summary_text} {body_text}"), &hints);
    let mut tickers: Vec<String> = Vec::new();
    for key in explicit.into_iter().chain(found).map(|listing| listing.key()) {
        if !tickers.contains(&key) && tickers.len() < MAX_STORY_TICKERS {
            tickers.push(key);
        }
    }
    let summary = if summary_text.is_empty() { body_text } else { summary_text };
    let guid = match raw.guid.as_deref().map(str::trim).filter(|g| !g.is_empty()) {
        Some(guid) if guid.len() <= MAX_GUID_LEN => guid.to_string(),
        Some(long) => format!("sha256:{}", hex::encode(Sha256::digest(long.as_bytes()))),
        None => url.clone(),
    };
    let author =
        raw.author.as_deref().map(|a| truncate_chars(&html_to_text(a), MAX_AUTHOR_CHARS)).filter(|a| !a.is_empty());
    Ok(NewStory {
        guid,
        source: raw.source,
        title,
        url,
        author,
        summary: truncate_chars(summary.trim_end_matches("[…]").trim_end(), MAX_SUMMARY_CHARS),
        tickers,
        published_at: raw.published_at.map_or(now, |at| at.min(now)),
    })
}

fn clean_url(raw: &str) -> Result<String, InvalidStory> {
    let raw = raw.trim();
    if raw.len() > MAX_URL_LEN {
        return Err(invalid("url", format!("a link may be at most {MAX_URL_LEN} characters")));
    }
    match Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url.to_string()),
        _ => Err(invalid("url", format!("'{}' is not an http:// or https:// link", preview(raw)))),
    }
}

fn preview(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(title: &str, url: &str) -> RawStory {
        RawStory { title: title.into(), url: url.into(), source: "api".into(), ..RawStory::default() }
    }

    #[test]
    fn html_in_a_story_becomes_plain_text_and_its_tickers_are_found() {
        let story = clean_story(
            RawStory {
                summary_html: Some("<p>Shares of <a href=\"x\">NYSE:&nbsp;NOK</a> rose &amp; fell <script>alert(1)</script>[&#8230;]</p>".into()),
                ..raw("<b>Nokia</b> (NYSE:NOK) &#8217;s deal", "https://news.example/a")
            },
            Utc::now(),
        )
        .unwrap();
        assert_eq!(story.title, "Nokia (NYSE:NOK) ’s deal");
        assert!(!story.summary.contains('<') && !story.summary.contains("alert"), "{}", story.summary);
        assert_eq!(story.tickers, vec!["NOK"]);
        assert_eq!(story.guid, "https://news.example/a");
    }

    #[test]
    fn a_story_without_a_title_or_with_a_script_link_is_refused() {
        assert_eq!(clean_story(raw("  <b></b> ", "https://news.example/a"), Utc::now()).unwrap_err().field, "title");
        assert_eq!(clean_story(raw("T", "javascript:alert(1)"), Utc::now()).unwrap_err().field, "url");
        let bad_ticker = RawStory { tickers: vec!["<x>".into()], ..raw("T", "https://news.example/a") };
        assert_eq!(clean_story(bad_ticker, Utc::now()).unwrap_err().field, "tickers");
    }

    proptest::proptest! {
        #[test]
        fn cleaning_arbitrary_input_never_panics(
            title in ".{0,64}", url in ".{0,64}", html in ".{0,256}", guid in ".{0,600}", ticker in ".{0,12}",
        ) {
            let story = RawStory {
                guid: Some(guid),
                body_html: Some(html.clone()),
                summary_html: Some(html),
                tickers: vec![ticker],
                ..raw(&title, &url)
            };
            if let Ok(clean) = clean_story(story, Utc::now()) {
                proptest::prop_assert!(!clean.title.is_empty() && clean.guid.len() <= MAX_GUID_LEN + 7);
            }
        }
    }

    #[test]
    fn a_story_from_the_future_is_dated_now() {
        let now = Utc::now();
        let story =
            RawStory { published_at: Some(now + chrono::Duration::days(3)), ..raw("T", "https://news.example/a") };
        assert_eq!(clean_story(story, now).unwrap().published_at, now);
    }
}
