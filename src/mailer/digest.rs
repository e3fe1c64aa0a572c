//! The digest email: bulk mail, so it carries RFC 8058 one-click unsubscribe
//! headers, a `List-Id`, and a visible unsubscribe and preferences link.
//!
//! Most of a digest is the same for every reader of an edition: its stories
//! and the rows of its price table. `DigestEdition` renders those once (and
//! puts the stories in wire form once); each reader's message is then the
//! few lines about them around those pieces.

use std::borrow::Cow;
use std::collections::HashMap;

use askama::Template;

use super::Email;
use super::messages::{
    ComposeError, EmailContent, EmailLinks, bulk_email_in_pieces, render_with_capacity, two_part_templates,
};
use super::wire::{self, EncodedLines, Piece};
use crate::domain::{EditionContent, PriceMove, ReaderDigest, Story};

const MAX_SUBJECT_TITLE_CHARS: usize = 80;

/// Stands for a story in a rendered digest, where its block is put in.
const STORY_MARK: &str = "\u{1}";

/// A price move as the templates show it.
#[derive(Debug, Clone)]
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

#[derive(Template)]
#[template(path = "email/digest_story.html")]
struct StoryHtml<'a> {
    story: &'a Story,
    tickers: &'a str,
    published: &'a str,
}

#[derive(Template)]
#[template(path = "email/digest_story.txt")]
struct StoryText<'a> {
    story: &'a Story,
    tickers: &'a str,
    published: &'a str,
}

/// One story as every digest shows it: rendered, and in wire form.
#[derive(Debug, Clone)]
struct StoryBlock {
    html: String,
    text: String,
    html_wire: EncodedLines,
    text_wire: EncodedLines,
}

impl StoryBlock {
    fn new(links: &EmailLinks, story: &Story) -> Result<Self, ComposeError> {
        let tickers = story.tickers.join(", ");
        let published = local_time(links, story.published_at, "%-d %b, %H:%M %Z");
        let line_ended = |mut block: String| {
            if !block.ends_with('\n') {
                block.push('\n');
            }
            block
        };
        let capacity = story.title.len() + story.summary.len() + story.url.len() * 2 + 128;
        let html = line_ended(render_with_capacity(
            &StoryHtml { story, tickers: &tickers, published: &published },
            capacity + 640,
        )?);
        let text =
            line_ended(render_with_capacity(&StoryText { story, tickers: &tickers, published: &published }, capacity)?);
        Ok(Self {
            html_wire: EncodedLines::new(&html, wire::write_html_7bit),
            text_wire: EncodedLines::new(&text, wire::write_7bit),
            html,
            text,
        })
    }
}

/// What the digests of one edition share, rendered once: its dates, its
/// stories, and the rows of its price table.
#[derive(Debug, Clone)]
pub struct DigestEdition {
    date: String,
    subject_date: String,
    stories: HashMap<uuid::Uuid, StoryBlock>,
    /// By symbol (one quote per symbol in an edition's snapshot): the row
    /// off the watchlist, and on it.
    moves: HashMap<String, [MoveRow; 2]>,
}

impl DigestEdition {
    /// Renders what every reader of `content` is shown alike. A story that
    /// cannot be rendered is left out here and rendered with each digest
    /// (which then reports the error).
    pub fn new(links: &EmailLinks, content: &EditionContent) -> Self {
        let mut edition = Self::dated(links, content.created_at);
        edition.stories = content
            .stories
            .iter()
            .filter_map(|story| StoryBlock::new(links, story).ok().map(|block| (story.id, block)))
            .collect();
        edition.moves = content
            .quotes
            .iter()
            .map(|quote| {
                let rows =
                    [false, true].map(|on_watchlist| move_row(links, &PriceMove::from_quote(quote, on_watchlist)));
                (quote.symbol.clone(), rows)
            })
            .collect();
        edition
    }

    /// Only the dates: stories and moves are rendered with each digest.
    fn dated(links: &EmailLinks, created_at: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            date: local_time(links, created_at, "%A %-d %B %Y"),
            subject_date: local_time(links, created_at, "%a %-d %b"),
            stories: HashMap::new(),
            moves: HashMap::new(),
        }
    }

    fn story(&self, links: &EmailLinks, story: &Story) -> Result<Cow<'_, StoryBlock>, ComposeError> {
        match self.stories.get(&story.id) {
            Some(block) => Ok(Cow::Borrowed(block)),
            None => StoryBlock::new(links, story).map(Cow::Owned),
        }
    }

    fn move_row(&self, links: &EmailLinks, price_move: &PriceMove) -> Cow<'_, MoveRow> {
        match self.moves.get(&price_move.symbol).map(|rows| &rows[usize::from(price_move.on_watchlist)]) {
            // The edition's rows come from the same quotes the moves do.
            Some(row) => Cow::Borrowed(row),
            None => Cow::Owned(move_row(links, price_move)),
        }
    }
}

/// What both parts of a digest show.
struct DigestView<'a> {
    site_name: &'a str,
    name: &'a str,
    date: &'a str,
    preheader: &'a str,
    /// Each story's block, already rendered.
    stories_html: &'a [&'a str],
    stories_text: &'a [&'a str],
    moves: &'a [&'a MoveRow],
    preferences_url: &'a str,
    unsubscribe_url: &'a str,
}

two_part_templates!(DigestView, DigestHtml = "email/digest.html", DigestText = "email/digest.txt");

/// A digest as sent by the worker, from its edition's shared parts.
pub fn digest_email(
    links: &EmailLinks,
    edition: &DigestEdition,
    to: &str,
    message_id: String,
    name: &str,
    manage_token: &str,
    digest: &ReaderDigest<'_>,
) -> Result<Email, ComposeError> {
    let blocks = digest.stories.iter().map(|story| edition.story(links, story)).collect::<Result<Vec<_>, _>>()?;
    let marks = vec![STORY_MARK; blocks.len()];
    let marked = render(links, edition, name, manage_token, digest, &marks, &marks)?;
    let text = splice(&marked.text, blocks.iter().map(|block| &block.text_wire));
    let html = splice(&marked.html, blocks.iter().map(|block| &block.html_wire));
    if let (Some(text), Some(html)) = (text, html) {
        return bulk_email_in_pieces(
            links,
            to,
            message_id,
            &marked.subject,
            "digest",
            &marked.unsubscribe_url,
            &text,
            &html,
        );
    }
    // A mark turned up elsewhere too (in a name, say): the whole digest, rendered as it is.
    render_whole(links, edition, name, manage_token, digest, &blocks)?
        .into_content()
        .into_message(links, to, message_id)
}

/// A digest as a preview or test send shows it.
pub fn digest_content(
    links: &EmailLinks,
    name: &str,
    manage_token: &str,
    digest: &ReaderDigest<'_>,
    edition_at: chrono::DateTime<chrono::Utc>,
) -> Result<EmailContent, ComposeError> {
    let edition = DigestEdition::dated(links, edition_at);
    let blocks = digest.stories.iter().map(|story| edition.story(links, story)).collect::<Result<Vec<_>, _>>()?;
    Ok(render_whole(links, &edition, name, manage_token, digest, &blocks)?.into_content())
}

/// A digest with its stories' blocks rendered in place.
fn render_whole(
    links: &EmailLinks,
    edition: &DigestEdition,
    name: &str,
    manage_token: &str,
    digest: &ReaderDigest<'_>,
    blocks: &[Cow<'_, StoryBlock>],
) -> Result<RenderedDigest, ComposeError> {
    let html: Vec<&str> = blocks.iter().map(|block| block.html.as_str()).collect();
    let text: Vec<&str> = blocks.iter().map(|block| block.text.as_str()).collect();
    render(links, edition, name, manage_token, digest, &html, &text)
}

/// One reader's digest, rendered.
struct RenderedDigest {
    subject: String,
    text: String,
    html: String,
    unsubscribe_url: String,
}

impl RenderedDigest {
    fn into_content(self) -> EmailContent {
        EmailContent::bulk(self.subject, self.text, self.html, "digest", self.unsubscribe_url)
    }
}

fn render(
    links: &EmailLinks,
    edition: &DigestEdition,
    name: &str,
    manage_token: &str,
    digest: &ReaderDigest<'_>,
    stories_html: &[&str],
    stories_text: &[&str],
) -> Result<RenderedDigest, ComposeError> {
    let (preferences_url, unsubscribe_url) = links.manage_urls(manage_token);
    let moves: Vec<Cow<'_, MoveRow>> = digest.moves.iter().map(|m| edition.move_row(links, m)).collect();
    let moves: Vec<&MoveRow> = moves.iter().map(|row| row.as_ref()).collect();
    let preheader = preheader(digest);
    let view = DigestView {
        site_name: &links.site_name,
        name,
        date: &edition.date,
        preheader: &preheader,
        stories_html,
        stories_text,
        moves: &moves,
        preferences_url: &preferences_url,
        unsubscribe_url: &unsubscribe_url,
    };
    let headline = match digest.stories.first() {
        Some(top) => top.title.chars().take(MAX_SUBJECT_TITLE_CHARS).collect::<String>(),
        None => "your watchlist".into(),
    };
    let subject = format!("{} digest, {}: {headline}", links.site_name, edition.subject_date);
    let story_bytes = |blocks: &[&str]| blocks.iter().map(|block| block.len()).sum::<usize>();
    let text = render_with_capacity(&DigestText(&view), story_bytes(stories_text) + 2048)?;
    let html = render_with_capacity(&DigestHtml(&view), story_bytes(stories_html) + 6144)?;
    Ok(RenderedDigest { subject, text, html, unsubscribe_url })
}

/// A rendered part with a mark for each block, as pieces: the text around
/// the marks, and the blocks in wire form. `None` when the marks are not
/// one per block, or a block would not start a line.
fn splice<'a>(marked: &'a str, blocks: impl ExactSizeIterator<Item = &'a EncodedLines>) -> Option<Vec<Piece<'a>>> {
    let mut pieces = Vec::with_capacity(blocks.len() * 2 + 1);
    let mut texts = marked.split(STORY_MARK);
    for block in blocks {
        let text = texts.next()?;
        if !text.is_empty() && !text.ends_with('\n') {
            return None;
        }
        pieces.push(Piece::Text(text));
        pieces.push(Piece::Encoded(block));
    }
    pieces.push(Piece::Text(texts.next()?));
    texts.next().is_none().then_some(pieces)
}

fn local_time(links: &EmailLinks, at: chrono::DateTime<chrono::Utc>, format: &str) -> String {
    at.with_timezone(&links.time_zone).format(format).to_string()
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

fn move_row(links: &EmailLinks, price_move: &PriceMove) -> MoveRow {
    let as_of = local_time(links, price_move.as_of, "%-d %b %H:%M %Z");
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
        as_of,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DigestDue, StoredQuote, compose};

    fn links() -> EmailLinks {
        EmailLinks {
            site_name: "Stock News".into(),
            base_url: "https://news.example".into(),
            from: "Stock News <news@news.example>".parse().unwrap(),
            time_zone: chrono_tz::America::New_York,
            dkim: None,
        }
    }

    fn content() -> EditionContent {
        let now = chrono::Utc::now();
        let story = |i: usize, summary: &str| Story {
            id: uuid::Uuid::new_v4(),
            guid: format!("s{i}"),
            source: "api".into(),
            title: format!("Story {i} <b>&</b> ★"),
            url: format!("https://news.example/{i}?a=1&b=2"),
            author: i.is_multiple_of(2).then(|| "Jane Doe".to_string()),
            summary: summary.into(),
            tickers: vec!["NOK".into(), "AAPL".into()],
            published_at: now - chrono::Duration::minutes(i as i64),
            hidden: false,
            created_at: now - chrono::Duration::minutes(i as i64),
        };
        EditionContent {
            created_at: now,
            stories: vec![
                story(1, "A summary with = signs and € that is long. ".repeat(30).trim()),
                story(2, ""),
                story(3, ".starts with a dot"),
            ],
            quotes: vec![StoredQuote {
                symbol: "NOK".into(),
                price: 5.5,
                previous_close: 5.0,
                currency: Some("USD".into()),
                as_of: now,
                source: "api".into(),
                suspect: false,
            }],
        }
    }

    /// The message without what differs from one build to the next (the
    /// MIME boundary and the Date header).
    fn comparable(email: &Email) -> String {
        let eml = String::from_utf8(email.to_eml()).unwrap();
        let boundary = eml.split("boundary=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        eml.replace(&boundary, "BOUNDARY")
            .lines()
            .filter(|line| !line.starts_with("Date:"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_digest_from_the_editions_shared_parts_is_the_digest_rendered_whole() {
        let links = links();
        let content = content();
        let edition = DigestEdition::new(&links, &content);
        let since = content.created_at - chrono::Duration::days(1);
        for name in ["Reader", "Zoë \u{1} Marks", ""] {
            for watchlist in ["NOK", "MSFT"] {
                let due = DigestDue {
                    since,
                    confirmed_at: since,
                    watchlist: crate::domain::Watchlist::parse_text(watchlist).unwrap(),
                };
                let digest = compose(&content, &due);
                let fast =
                    digest_email(&links, &edition, "r@example.com", "<1@x>".into(), name, "tok", &digest).unwrap();
                let whole = digest_content(&links, name, "tok", &digest, content.created_at)
                    .unwrap()
                    .into_message(&links, "r@example.com", "<1@x>".into())
                    .unwrap();
                assert_eq!(comparable(&fast), comparable(&whole), "name {name:?}, watchlist {watchlist}");
            }
        }
    }
}
