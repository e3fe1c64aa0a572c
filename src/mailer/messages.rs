//! The transactional emails, rendered from askama templates under
//! `templates/email/` into multipart text + HTML.

use askama::Template;
use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};

/// What every email needs to know about the site it comes from.
#[derive(Debug, Clone)]
pub struct EmailLinks {
    pub site_name: String,
    pub base_url: String,
    pub from: Mailbox,
}

#[derive(Template)]
#[template(path = "email/confirmation.html")]
struct ConfirmationHtml<'a> {
    site_name: &'a str,
    name: &'a str,
    confirm_url: &'a str,
    expires: &'a str,
}

#[derive(Template)]
#[template(path = "email/confirmation.txt")]
struct ConfirmationText<'a> {
    site_name: &'a str,
    name: &'a str,
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

/// A composed message and the Message-ID it carries.
pub struct ComposedEmail {
    pub message: Message,
    pub message_id: String,
}

pub fn confirmation_email(
    links: &EmailLinks,
    to: &str,
    name: &str,
    token: &str,
    expires_at: DateTime<Utc>,
) -> Result<ComposedEmail, String> {
    let confirm_url = format!("{}/confirm/{token}", links.base_url);
    let expires = expires_at.format("%A %-d %B %Y, %H:%M UTC").to_string();
    let html = ConfirmationHtml { site_name: &links.site_name, name, confirm_url: &confirm_url, expires: &expires };
    let text = ConfirmationText { site_name: &links.site_name, name, confirm_url: &confirm_url, expires: &expires };
    compose(links, to, &format!("Confirm your subscription to {}", links.site_name), render(&text)?, render(&html)?)
}

pub fn welcome_email(
    links: &EmailLinks,
    to: &str,
    name: &str,
    manage_token: &str,
    watchlist: &str,
) -> Result<ComposedEmail, String> {
    let preferences_url = format!("{}/preferences/{manage_token}", links.base_url);
    let unsubscribe_url = format!("{}/unsubscribe/{manage_token}", links.base_url);
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
    compose(links, to, &format!("Welcome to {}", links.site_name), render(&text)?, render(&html)?)
}

fn render(template: &impl Template) -> Result<String, String> {
    template.render().map_err(|e| format!("template error: {e}"))
}

fn compose(links: &EmailLinks, to: &str, subject: &str, text: String, html: String) -> Result<ComposedEmail, String> {
    let to: Mailbox = to.parse().map_err(|e| format!("recipient {to:?}: {e}"))?;
    let domain = links.from.email.domain().to_string();
    let message_id = format!("<{}@{domain}>", uuid::Uuid::new_v4().simple());
    let message = Message::builder()
        .from(links.from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(message_id.clone()))
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
        )
        .map_err(|e| format!("cannot build message: {e}"))?;
    Ok(ComposedEmail { message, message_id })
}
