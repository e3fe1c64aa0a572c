//! The digest email: bulk mail, so it carries RFC 8058 one-click unsubscribe
//! headers, a `List-Id`, and a visible unsubscribe and preferences link.

use super::Email;

use super::messages::{EmailContent, EmailLinks, render_with_capacity, two_part_templates};
use crate::jobs::digest::{PriceMove, ReaderDigest};
use crate::store::Story;

const MAX_SUBJECT_TITLE_CHARS: usize = 80;

/// A price move as the templates show it.
struct MoveRow {
    /// The whole row, in columns, for the text part.
    text_line: String,
    symbol: String,
    price: String,
    change: String,
    change_percent: String,
    up: bool,
    on_watchlist: bool,
    as_of: String,
}

struct StoryItem<'a> {
    story: &'a Story,
    tickers: String,
    published: String,
}

/// What both parts of a digest show.
struct DigestView<'a> {
    site_name: &'a str,
    name: &'a str,
    date: &'a str,
    preheader: &'a str,
    stories: &'a [StoryItem<'a>],
    moves: &'a [MoveRow],
    preferences_url: &'a str,
    unsubscribe_url: &'a str,
}

two_part_templates!(DigestView, DigestHtml = "email/digest.html", DigestText = "email/digest.txt");

pub fn digest_email(
    links: &EmailLinks,
    to: &str,
    message_id: String,
    name: &str,
    manage_token: &str,
    digest: &ReaderDigest<'_>,
    edition_at: chrono::DateTime<chrono::Utc>,
) -> Result<Email, String> {
    digest_content(links, name, manage_token, digest, edition_at)?.into_message(links, to, message_id)
}

pub fn digest_content(
    links: &EmailLinks,
    name: &str,
    manage_token: &str,
    digest: &ReaderDigest<'_>,
    edition_at: chrono::DateTime<chrono::Utc>,
) -> Result<EmailContent, String> {
    let (preferences_url, unsubscribe_url) = links.manage_urls(manage_token);
    let local_time =
        |at: chrono::DateTime<chrono::Utc>, format: &str| at.with_timezone(&links.time_zone).format(format).to_string();
    let date = local_time(edition_at, "%A %-d %B %Y");
    let stories: Vec<StoryItem> = digest
        .stories
        .iter()
        .map(|story| StoryItem {
            story,
            tickers: story.tickers.join(", "),
            published: local_time(story.published_at, "%-d %b, %H:%M %Z"),
        })
        .collect();
    let moves: Vec<MoveRow> =
        digest.moves.iter().map(|m| move_row(m, &local_time(m.as_of, "%-d %b %H:%M %Z"))).collect();
    let preheader = preheader(digest);
    let view = DigestView {
        site_name: &links.site_name,
        name,
        date: &date,
        preheader: &preheader,
        stories: &stories,
        moves: &moves,
        preferences_url: &preferences_url,
        unsubscribe_url: &unsubscribe_url,
    };
    let headline = match digest.stories.first() {
        Some(top) => top.title.chars().take(MAX_SUBJECT_TITLE_CHARS).collect::<String>(),
        None => "your watchlist".into(),
    };
    let subject = format!("{} digest, {}: {headline}", links.site_name, local_time(edition_at, "%a %-d %b"));
    // Each story shows its title, summary and link in both parts, and the
    // HTML part about 600 bytes of markup around them.
    let story_bytes: usize = digest.stories.iter().map(|s| s.title.len() + s.summary.len() + s.url.len() * 2).sum();
    let text = render_with_capacity(&DigestText(&view), story_bytes + 2048)?;
    let html = render_with_capacity(&DigestHtml(&view), story_bytes + digest.stories.len() * 640 + 6144)?;
    Ok(EmailContent::bulk(subject, text, html, "digest", unsubscribe_url))
}

/// The line a mail client shows after the subject.
fn preheader(digest: &ReaderDigest<'_>) -> String {
    let stories = match digest.stories.len() {
        0 => "No new stories".to_string(),
        1 => "1 new story".to_string(),
        n => format!("{n} new stories"),
    };
    let moves: Vec<String> =
        digest.moves.iter().take(3).map(|m| format!("{} {:+.2}%", m.symbol, m.change_percent)).collect();
    if moves.is_empty() { stories } else { format!("{stories} · {}", moves.join(" · ")) }
}

fn move_row(price_move: &PriceMove, as_of: &str) -> MoveRow {
    let price = match &price_move.currency {
        Some(currency) => format!("{:.2} {currency}", price_move.price),
        None => format!("{:.2}", price_move.price),
    };
    let change = format!("{:+.2}", price_move.change);
    let change_percent = format!("{:+.2}%", price_move.change_percent);
    let marked = format!("{}{}", price_move.symbol, if price_move.on_watchlist { " *" } else { "" });
    MoveRow {
        text_line: format!("{marked:<12} {price:>14} {change:>9} {change_percent:>8}  {as_of}"),
        symbol: price_move.symbol.clone(),
        price,
        change,
        change_percent,
        up: price_move.change >= 0.0,
        on_watchlist: price_move.on_watchlist,
        as_of: as_of.to_string(),
    }
}
