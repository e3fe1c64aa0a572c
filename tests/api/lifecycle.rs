use std::time::Duration;

use chrono::Utc;
use secrecy::SecretString;
use tickermail::domain::{SubscriberEmail, SubscriberStatus};
use tickermail::tokens::TokenKey;

use crate::helpers::{TEST_SECRET_KEY, spawn_app};

#[tokio::test]
async fn a_reader_signs_up_confirms_edits_preferences_and_unsubscribes_with_one_click() {
    let app = spawn_app().await;

    let confirmation = app.sign_up("reader@example.com").await;
    assert_eq!(confirmation.from, "news@stocknews.example");
    assert_eq!(confirmation.header("Subject").unwrap(), "Confirm your subscription to Stock News");
    assert!(confirmation.header("Content-Type").unwrap().starts_with("multipart/alternative"));
    assert!(confirmation.text().starts_with("Hello,"), "nobody is greeted by a name not yet confirmed");
    assert!(confirmation.html().contains("Confirm my subscription"));
    assert!(confirmation.header("List-Unsubscribe-Post").is_none(), "transactional mail has no one-click header");
    let message_id = confirmation.header("Message-ID").unwrap();
    assert!(message_id.starts_with('<') && message_id.ends_with("@stocknews.example>"), "{message_id}");
    let confirm_token = app.token_from(&confirmation, "confirm");

    // Opening the link (or a mail scanner prefetching it) changes nothing.
    let page = app.get_confirm(&confirm_token).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Confirm my subscription"));
    let email = SubscriberEmail::parse("reader@example.com").unwrap();
    assert_eq!(app.store.subscriber_by_email(&email).await.unwrap().unwrap().status, SubscriberStatus::Pending);

    let confirmed = app.post_confirm(&confirm_token).await;
    assert_eq!(confirmed.status(), 200);
    assert!(confirmed.text().await.unwrap().contains("/preferences/"));
    assert_eq!(app.store.subscriber_by_email(&email).await.unwrap().unwrap().status, SubscriberStatus::Confirmed);

    let welcome = app.smtp.wait_for_mails_to("reader@example.com", 2, Duration::from_secs(10)).await.pop().unwrap();
    assert_eq!(welcome.header("Subject").unwrap(), "Welcome to Stock News");
    assert!(welcome.text().contains("NOK, AAPL"));
    let manage_token = app.token_from(&welcome, "preferences");
    assert_eq!(app.token_from(&welcome, "unsubscribe"), manage_token);

    let preferences = app.get_preferences(&manage_token).await;
    assert_eq!(preferences.status(), 200);
    assert!(preferences.text().await.unwrap().contains("value=\"NOK, AAPL\""));
    let saved = app
        .post_preferences(&manage_token, "name=Annie&tickers=msft+tsla&alert_threshold=2.5&digest_frequency=weekly")
        .await;
    assert_eq!(saved.status(), 200);
    let reloaded = app.get_preferences(&manage_token).await.text().await.unwrap();
    assert!(reloaded.contains("value=\"Annie\""));
    assert!(reloaded.contains("value=\"MSFT, TSLA\""));
    assert!(reloaded.contains("value=\"2.5\""));
    assert!(reloaded.contains("value=\"weekly\" selected"));
    assert!(!reloaded.contains("checked"), "alerts were switched off");

    let page = app.get_unsubscribe(&manage_token).await;
    assert_eq!(page.status(), 200);
    assert_eq!(app.store.subscriber_by_email(&email).await.unwrap().unwrap().status, SubscriberStatus::Confirmed);
    let unsubscribed = app.post_one_click_unsubscribe(&manage_token).await;
    assert_eq!(unsubscribed.status(), 200);
    assert_eq!(app.store.subscriber_by_email(&email).await.unwrap().unwrap().status, SubscriberStatus::Unsubscribed);
    // Repeating it is harmless.
    assert_eq!(app.post_one_click_unsubscribe(&manage_token).await.status(), 200);
}

#[tokio::test]
async fn invalid_preferences_are_refused_with_422_and_nothing_is_saved() {
    let app = spawn_app().await;
    let welcome = app.sign_up_and_confirm("prefs@example.com").await;
    let token = app.token_from(&welcome, "preferences");
    for body in [
        "tickers=NOK&alert_threshold=0&digest_frequency=daily",
        "tickers=NOK&alert_threshold=abc&digest_frequency=daily",
        "tickers=%3Cb%3E&alert_threshold=5&digest_frequency=daily",
        "tickers=NOK&alert_threshold=5&digest_frequency=hourly",
    ] {
        let response = app.post_preferences(&token, body).await;
        assert_eq!(response.status(), 422, "{body}");
    }
    let page = app.get_preferences(&token).await.text().await.unwrap();
    assert!(page.contains("value=\"NOK, AAPL\""));
    assert!(page.contains("value=\"5\""));
}

#[tokio::test]
async fn re_subscribing_after_unsubscribing_needs_a_new_confirmation_and_old_links_stop_working() {
    let app = spawn_app().await;
    let welcome = app.sign_up_and_confirm("back@example.com").await;
    let old_token = app.token_from(&welcome, "unsubscribe");
    assert_eq!(app.post_one_click_unsubscribe(&old_token).await.status(), 200);

    let response = app.post_subscriptions_form("email=back%40example.com").await;
    assert_eq!(response.status(), 200);
    let mails = app.smtp.wait_for_mails_to("back@example.com", 3, Duration::from_secs(10)).await;
    assert!(mails[2].header("Subject").unwrap().starts_with("Confirm"));
    let email = SubscriberEmail::parse("back@example.com").unwrap();
    assert_eq!(app.store.subscriber_by_email(&email).await.unwrap().unwrap().status, SubscriberStatus::Pending);
    assert_eq!(app.get_preferences(&old_token).await.status(), 404);
}

#[tokio::test]
async fn an_expired_confirmation_link_offers_to_send_a_new_one() {
    let app = spawn_app().await;
    app.sign_up("late@example.com").await;
    let subscriber =
        app.store.subscriber_by_email(&SubscriberEmail::parse("late@example.com").unwrap()).await.unwrap().unwrap();
    let key = TokenKey::new(SecretString::from(TEST_SECRET_KEY));
    let expired =
        key.confirmation_token(subscriber.id, &subscriber.token_nonce, Utc::now() - chrono::Duration::days(8));

    let page = app.get_confirm(&expired).await;
    assert_eq!(page.status(), 410);
    assert!(page.text().await.unwrap().contains("Send me a new link"));
    assert_eq!(app.post_confirm(&expired).await.status(), 410);
    assert_eq!(subscriber.status, SubscriberStatus::Pending);

    // The first confirmation went out just now, so the resend waits for the interval.
    assert_eq!(app.post_resend_confirmation(&expired).await.status(), 200);
    app.wait_until_outbox_idle().await;
    assert_eq!(app.smtp.mails_to("late@example.com").len(), 1);
}

#[tokio::test]
async fn an_expired_link_resends_a_confirmation_once_the_interval_has_passed() {
    let app = crate::helpers::spawn_app_with(&[("CONFIRMATION_RESEND_SECONDS", "0")]).await;
    app.sign_up("later@example.com").await;
    let subscriber =
        app.store.subscriber_by_email(&SubscriberEmail::parse("later@example.com").unwrap()).await.unwrap().unwrap();
    let key = TokenKey::new(SecretString::from(TEST_SECRET_KEY));
    let expired =
        key.confirmation_token(subscriber.id, &subscriber.token_nonce, Utc::now() - chrono::Duration::days(8));
    assert_eq!(app.post_resend_confirmation(&expired).await.status(), 200);
    let mails = app.smtp.wait_for_mails_to("later@example.com", 2, Duration::from_secs(10)).await;
    let fresh = app.token_from(&mails[1], "confirm");
    assert_eq!(app.post_confirm(&fresh).await.status(), 200);
}

#[tokio::test]
async fn forged_or_mangled_tokens_get_a_404_page_and_change_nothing() {
    let app = spawn_app().await;
    let welcome = app.sign_up_and_confirm("victim@example.com").await;
    let token = app.token_from(&welcome, "unsubscribe");
    let (id, signature) = token.split_once('.').unwrap();
    let flipped = format!("{id}.{}", signature.chars().rev().collect::<String>());
    let forged_by_other_key = TokenKey::new(SecretString::from("another-secret-another-secret-0000"))
        .manage_token(uuid::Uuid::parse_str(id).unwrap(), "nonce");
    for bad in [flipped.as_str(), forged_by_other_key.as_str(), id, "x", "%00", "a.b.c.d.e", &"f".repeat(500)] {
        assert_eq!(app.post_one_click_unsubscribe(bad).await.status(), 404, "{bad}");
        assert_eq!(app.get_preferences(bad).await.status(), 404, "{bad}");
        assert_eq!(app.post_confirm(bad).await.status(), 404, "{bad}");
    }
    let email = SubscriberEmail::parse("victim@example.com").unwrap();
    assert_eq!(app.store.subscriber_by_email(&email).await.unwrap().unwrap().status, SubscriberStatus::Confirmed);
}

#[tokio::test]
async fn confirming_again_emails_the_preferences_link_instead_of_showing_it() {
    let app = spawn_app().await;
    let confirmation = app.sign_up("twice@example.com").await;
    let token = app.token_from(&confirmation, "confirm");
    let first = app.post_confirm(&token).await;
    assert_eq!(first.status(), 200);
    assert!(first.text().await.unwrap().contains("/preferences/"), "the one who confirms gets the link");

    // Whoever holds the old link later does not see the reader's preferences link.
    let again = app.post_confirm(&token).await;
    assert_eq!(again.status(), 200);
    let page = again.text().await.unwrap();
    assert!(page.contains("already confirmed") && page.contains("emailed you a link to your preferences"), "{page}");
    assert!(!page.contains("/preferences/"), "{page}");
    let mails = app.smtp.wait_for_mails_to("twice@example.com", 3, Duration::from_secs(10)).await;
    let link =
        mails.iter().find(|m| m.header("Subject").unwrap().contains("preferences")).expect("a preferences email");
    assert!(link.header("List-Unsubscribe-Post").is_none(), "transactional mail has no one-click header");
    let manage_token = app.token_from(link, "preferences");
    assert_eq!(app.get_preferences(&manage_token).await.status(), 200);

    // At most one such email per resend interval.
    assert_eq!(app.post_confirm(&token).await.status(), 200);
    app.wait_until_outbox_idle().await;
    let kinds: Vec<String> =
        app.smtp.mails_to("twice@example.com").iter().map(|m| m.header("Subject").unwrap().to_string()).collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

#[tokio::test]
async fn a_confirmation_link_from_before_a_later_signup_no_longer_confirms() {
    let app = crate::helpers::spawn_app_with(&[("CONFIRMATION_RESEND_SECONDS", "0")]).await;
    let first = app.sign_up("again@example.com").await;
    let old = app.token_from(&first, "confirm");
    assert_eq!(app.post_subscriptions_form("email=again%40example.com").await.status(), 200);
    let mails = app.smtp.wait_for_mails_to("again@example.com", 2, Duration::from_secs(10)).await;
    let new = app.token_from(&mails[1], "confirm");
    assert_eq!(app.get_confirm(&old).await.status(), 404);
    assert_eq!(app.post_confirm(&old).await.status(), 404);
    let email = SubscriberEmail::parse("again@example.com").unwrap();
    assert_eq!(app.store.subscriber_by_email(&email).await.unwrap().unwrap().status, SubscriberStatus::Pending);
    assert_eq!(app.post_confirm(&new).await.status(), 200);
}

#[tokio::test]
async fn a_confirmation_link_from_before_an_unsubscribe_does_not_confirm_the_sign_up_after_it() {
    let app = spawn_app().await;
    let first = app.sign_up("back@example.com").await;
    let old = app.token_from(&first, "confirm");
    let email = SubscriberEmail::parse("back@example.com").unwrap();
    let id = app.store.subscriber_by_email(&email).await.unwrap().unwrap().id;
    assert!(app.store.unsubscribe(id).await.unwrap());
    assert_eq!(app.post_confirm(&old).await.status(), 409);

    assert_eq!(app.post_subscriptions_form("email=back%40example.com").await.status(), 200);
    let mails = app.smtp.wait_for_mails_to("back@example.com", 2, Duration::from_secs(10)).await;
    let new = app.token_from(&mails[1], "confirm");
    assert_eq!(app.post_confirm(&old).await.status(), 404);
    assert_eq!(app.store.subscriber_by_email(&email).await.unwrap().unwrap().status, SubscriberStatus::Pending);
    assert_eq!(app.post_confirm(&new).await.status(), 200);
}

#[tokio::test]
async fn a_confirmation_link_does_not_resubscribe_someone_who_unsubscribed() {
    let app = spawn_app().await;
    let confirmation = app.sign_up("gone@example.com").await;
    let confirm_token = app.token_from(&confirmation, "confirm");
    let welcome_token = {
        assert_eq!(app.post_confirm(&confirm_token).await.status(), 200);
        let mails = app.smtp.wait_for_mails_to("gone@example.com", 2, Duration::from_secs(10)).await;
        app.token_from(&mails[1], "unsubscribe")
    };
    assert_eq!(app.post_one_click_unsubscribe(&welcome_token).await.status(), 200);
    assert_eq!(app.post_confirm(&confirm_token).await.status(), 409);
    let email = SubscriberEmail::parse("gone@example.com").unwrap();
    assert_eq!(app.store.subscriber_by_email(&email).await.unwrap().unwrap().status, SubscriberStatus::Unsubscribed);
}
