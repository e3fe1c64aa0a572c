//! The transactional emails, rendered from askama templates under
//! `templates/email/` into multipart text + HTML.

use askama::Template;
use chrono::{DateTime, Utc};
use lettre::message::header::{self, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes};

use super::Email;
use super::email::Content;
use super::wire::Piece;

/// Why an email could not be made from its parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    #[error("template error: {0}")]
    Template(String),
    #[error("header {0}")]
    Header(String),
    #[error("recipient {0}")]
    Recipient(String),
}

/// What every email needs to know about the site it comes from.
#[derive(Debug, Clone)]
pub struct EmailLinks {
    pub site_name: String,
    pub base_url: String,
    pub from: Mailbox,
    /// Dates in emails are shown in the site's time zone.
    pub time_zone: chrono_tz::Tz,
    pub dkim: Option<std::sync::Arc<super::DkimSigner>>,
}

impl EmailLinks {
    /// The domain of our Message-IDs: the sender's.
    pub fn message_domain(&self) -> &str {
        self.from.email.domain()
    }

    /// The preferences and unsubscribe pages of the reader `manage_token` belongs to.
    pub fn manage_urls(&self, manage_token: &str) -> (String, String) {
        (
            format!("{}/preferences/{manage_token}", self.base_url),
            format!("{}/unsubscribe/{manage_token}", self.base_url),
        )
    }

    /// The Message-ID of the email for `unique` (a delivery): the same on every
    /// attempt, so a receiver can recognise a repeat after a crash.
    /// `Store::mark_deliveries_sent` records it in the same form.
    pub fn message_id(&self, unique: uuid::Uuid) -> String {
        format!("<{}@{}>", unique.simple(), self.message_domain())
    }
}

#[derive(Template)]
#[template(path = "email/confirmation.html")]
struct ConfirmationHtml<'a> {
    site_name: &'a str,
    confirm_url: &'a str,
    expires: &'a str,
}

#[derive(Template)]
#[template(path = "email/confirmation.txt")]
struct ConfirmationText<'a> {
    site_name: &'a str,
    confirm_url: &'a str,
    expires: &'a str,
}

#[derive(Template)]
#[template(path = "email/welcome.html")]
struct WelcomeHtml<'a> {
    site_name: &'a str,
    name: &'a str,
    preferences_url: &'a str,
    unsubscribe_url: &'a str,
    watchlist: &'a str,
}

#[derive(Template)]
#[template(path = "email/welcome.txt")]
struct WelcomeText<'a> {
    site_name: &'a str,
    name: &'a str,
    preferences_url: &'a str,
    unsubscribe_url: &'a str,
    watchlist: &'a str,
}

/// What both parts of the preferences-link email show.
struct PreferencesLinkView<'a> {
    site_name: &'a str,
    name: &'a str,
    preferences_url: &'a str,
    unsubscribe_url: &'a str,
}

two_part_templates!(
    PreferencesLinkView,
    PreferencesLinkHtml = "email/preferences_link.html",
    PreferencesLinkText = "email/preferences_link.txt"
);

/// An email before it is addressed: what a preview shows, and what a message is made of.
#[derive(Debug, Clone)]
pub struct EmailContent {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Bulk mail (digests, alerts): its list and the reader's unsubscribe URL.
    list: Option<(&'static str, String)>,
}

impl EmailContent {
    pub(super) fn bulk(
        subject: String,
        text: String,
        html: String,
        list: &'static str,
        unsubscribe_url: String,
    ) -> Self {
        Self { subject, text, html, list: Some((list, unsubscribe_url)) }
    }

    pub fn into_message(self, links: &EmailLinks, to: &str, message_id: String) -> Result<Email, ComposeError> {
        let headers = match &self.list {
            Some((list, unsubscribe_url)) => Some(bulk_headers(links, list, unsubscribe_url)?),
            None => None,
        };
        compose_with_headers(
            links,
            to,
            message_id,
            &self.subject,
            headers,
            &[Piece::Text(&self.text)],
            &[Piece::Text(&self.html)],
        )
    }
}

/// The double opt-in email. It greets nobody by name: the name is whatever
/// was typed beside an address nobody has confirmed yet.
pub fn confirmation_content(
    links: &EmailLinks,
    token: &str,
    expires_at: DateTime<Utc>,
) -> Result<EmailContent, ComposeError> {
    let confirm_url = format!("{}/confirm/{token}", links.base_url);
    let expires = expires_at.format("%A %-d %B %Y, %H:%M UTC").to_string();
    let html = ConfirmationHtml { site_name: &links.site_name, confirm_url: &confirm_url, expires: &expires };
    let text = ConfirmationText { site_name: &links.site_name, confirm_url: &confirm_url, expires: &expires };
    Ok(EmailContent {
        subject: format!("Confirm your subscription to {}", links.site_name),
        text: render(&text)?,
        html: render(&html)?,
        list: None,
    })
}

pub fn welcome_content(
    links: &EmailLinks,
    name: &str,
    manage_token: &str,
    watchlist: &str,
) -> Result<EmailContent, ComposeError> {
    let (preferences_url, unsubscribe_url) = links.manage_urls(manage_token);
    let html = WelcomeHtml {
        site_name: &links.site_name,
        name,
        preferences_url: &preferences_url,
        unsubscribe_url: &unsubscribe_url,
        watchlist,
    };
    let text = WelcomeText {
        site_name: &links.site_name,
        name,
        preferences_url: &preferences_url,
        unsubscribe_url: &unsubscribe_url,
        watchlist,
    };
    Ok(EmailContent {
        subject: format!("Welcome to {}", links.site_name),
        text: render(&text)?,
        html: render(&html)?,
        list: None,
    })
}

/// A confirmed reader's preferences link, sent when their confirmation link
/// is used again (transactional: no one-click header).
pub fn preferences_link_content(
    links: &EmailLinks,
    name: &str,
    manage_token: &str,
) -> Result<EmailContent, ComposeError> {
    let (preferences_url, unsubscribe_url) = links.manage_urls(manage_token);
    let view = PreferencesLinkView {
        site_name: &links.site_name,
        name,
        preferences_url: &preferences_url,
        unsubscribe_url: &unsubscribe_url,
    };
    Ok(EmailContent {
        subject: format!("Your {} preferences", links.site_name),
        text: render(&PreferencesLinkText(&view))?,
        html: render(&PreferencesLinkHtml(&view))?,
        list: None,
    })
}

/// The HTML and text templates of one email over one view: each reads the
/// view's fields through `Deref`, so both parts are filled from one value.
macro_rules! two_part_templates {
    ($view:ident, $html:ident = $html_path:literal, $text:ident = $text_path:literal) => {
        #[derive(askama::Template)]
        #[template(path = $html_path)]
        struct $html<'a>(&'a $view<'a>);

        #[derive(askama::Template)]
        #[template(path = $text_path)]
        struct $text<'a>(&'a $view<'a>);

        impl<'a> std::ops::Deref for $html<'a> {
            type Target = $view<'a>;
            fn deref(&self) -> &Self::Target {
                self.0
            }
        }

        impl<'a> std::ops::Deref for $text<'a> {
            type Target = $view<'a>;
            fn deref(&self) -> &Self::Target {
                self.0
            }
        }
    };
}
pub(super) use two_part_templates;

/// The headers of bulk mail (digests, alerts): RFC 8058 one-click
/// unsubscribe, and a `List-Id` per list (`Stock News digest
/// <digest.news.example>`, RFC 2919) so readers can filter each.
fn bulk_headers(links: &EmailLinks, list: &str, unsubscribe_url: &str) -> Result<Vec<HeaderValue>, ComposeError> {
    let header = |name: &str, value: String| {
        HeaderName::new_from_ascii(name.to_string())
            .map(|name| HeaderValue::new(name, value))
            .map_err(|e| ComposeError::Header(format!("{name}: {e}")))
    };
    let phrase: String =
        links.site_name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == ' ' || *c == '-').collect();
    Ok(vec![
        header("List-Unsubscribe", format!("<{unsubscribe_url}>"))?,
        header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into())?,
        header("List-Id", format!("{} {list} <{list}.{}>", phrase.trim(), links.message_domain()))?,
    ])
}

pub(super) fn render(template: &impl Template) -> Result<String, ComposeError> {
    render_with_capacity(template, 0)
}

/// Renders into a string of `capacity` bytes to start with, so a long email
/// is not copied over and over as it grows.
pub(super) fn render_with_capacity(template: &impl Template, capacity: usize) -> Result<String, ComposeError> {
    let mut rendered = String::with_capacity(capacity);
    template.render_into(&mut rendered).map_err(|e| ComposeError::Template(e.to_string()))?;
    Ok(rendered)
}

/// Bulk mail (the digest) whose parts come in pieces, some encoded beforehand.
#[allow(clippy::too_many_arguments)]
pub(super) fn bulk_email_in_pieces(
    links: &EmailLinks,
    to: &str,
    message_id: String,
    subject: &str,
    list: &str,
    unsubscribe_url: &str,
    text: &[Piece<'_>],
    html: &[Piece<'_>],
) -> Result<Email, ComposeError> {
    let headers = bulk_headers(links, list, unsubscribe_url)?;
    compose_with_headers(links, to, message_id, subject, Some(headers), text, html)
}

/// A multipart text + HTML message; bulk mail (digests, alerts) with its
/// `List-*` headers.
fn compose_with_headers(
    links: &EmailLinks,
    to: &str,
    message_id: String,
    subject: &str,
    bulk_headers: Option<Vec<HeaderValue>>,
    text: &[Piece<'_>],
    html: &[Piece<'_>],
) -> Result<Email, ComposeError> {
    let to: Mailbox = to.parse().map_err(|e| ComposeError::Recipient(format!("{to:?}: {e}")))?;
    let bulk = bulk_headers.is_some();
    let subject = subject.to_string();
    let mut headers = vec![
        header::From::from(Mailboxes::from(links.from.clone())).display(),
        header::To::from(Mailboxes::from(to.clone())).display(),
        header::Subject::from(subject.clone()).display(),
        header::Date::now().display(),
        header::MessageId::from(message_id).display(),
    ];
    headers.extend(bulk_headers.into_iter().flatten());
    let content = Content { envelope_from: &links.from.email, envelope_to: &to.email, subject, headers, text, html };
    Ok(Email::multipart_alternative(content, links.dkim.as_deref().map(|signer| (signer, bulk))))
}
