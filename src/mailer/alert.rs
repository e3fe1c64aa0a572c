//! The price alert email: bulk mail like the digest, one move per message.

use super::messages::{ComposeError, EmailContent, EmailLinks, render, two_part_templates};
use crate::domain::PriceAlert;

/// What both parts of an alert show.
struct AlertView<'a> {
    site_name: &'a str,
    name: &'a str,
    headline: &'a str,
    alert: &'a PriceAlert,
    price: String,
    previous_close: String,
    change_percent: String,
    as_of: String,
    up: bool,
    preferences_url: &'a str,
    unsubscribe_url: &'a str,
}

two_part_templates!(AlertView, AlertHtml = "email/alert.html", AlertText = "email/alert.txt");

pub fn alert_content(
    links: &EmailLinks,
    name: &str,
    manage_token: &str,
    alert: &PriceAlert,
) -> Result<EmailContent, ComposeError> {
    let (preferences_url, unsubscribe_url) = links.manage_urls(manage_token);
    let headline = format!("{} is {} {:.1}% today", alert.symbol, alert.direction, alert.change_percent.abs());
    let as_of = alert.as_of.with_timezone(&links.time_zone).format("%-d %b %Y, %H:%M %Z").to_string();
    let view = AlertView {
        site_name: &links.site_name,
        name,
        headline: &headline,
        alert,
        price: format!("{:.2}", alert.price),
        previous_close: format!("{:.2}", alert.previous_close),
        change_percent: format!("{:+.2}%", alert.change_percent),
        as_of,
        up: alert.direction == "up",
        preferences_url: &preferences_url,
        unsubscribe_url: &unsubscribe_url,
    };
    let subject = format!("{headline}: {}", view.price);
    let (text, html) = (render(&AlertText(&view))?, render(&AlertHtml(&view))?);
    Ok(EmailContent::bulk(subject, text, html, "alerts", unsubscribe_url))
}
