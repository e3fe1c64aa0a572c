use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use tickermail::domain::{SubscriberEmail, SubscriberStatus};

use crate::helpers::{spawn_app, spawn_app_with, urlencode};

#[tokio::test]
async fn the_signup_page_offers_the_form_with_a_honeypot() {
    let app = spawn_app().await;
    let response = app.get_signup_page().await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("Sign up to get our latest stock alerts"));
    for field in ["name=\"email\"", "name=\"name\"", "name=\"tickers\"", "name=\"website\""] {
        assert!(page.contains(field), "form lacks {field}");
    }
}

#[tokio::test]
async fn a_form_signup_shows_the_thank_you_page_and_stores_a_pending_subscriber() {
    let app = spawn_app().await;
    let response = app.post_subscriptions_form("email=Ann%40Example.COM&name=Ann&tickers=nok%2C+aapl").await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Check your inbox"));
    let email = SubscriberEmail::parse("Ann@example.com").unwrap();
    let subscriber = app.store.subscriber_by_email(&email).await.unwrap().expect("stored");
    assert_eq!(subscriber.status, SubscriberStatus::Pending);
    assert_eq!(subscriber.name, "Ann");
    assert_eq!(subscriber.watchlist.to_stored(), "NOK,AAPL");
}

#[tokio::test]
async fn a_json_signup_is_accepted_with_202() {
    let app = spawn_app().await;
    let response = app
        .post_subscriptions_json(&json!({"email": "bo@example.com", "name": "Bo", "tickers": ["MSFT", "brk.b"]}))
        .await;
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "pending_confirmation");
    let subscriber =
        app.store.subscriber_by_email(&SubscriberEmail::parse("bo@example.com").unwrap()).await.unwrap().unwrap();
    assert_eq!(subscriber.watchlist.to_stored(), "MSFT,BRK.B");
}

#[tokio::test]
async fn a_signup_records_the_consent() {
    let app = spawn_app().await;
    let response = app
        .post_subscriptions_form_with_headers(
            "email=cy%40example.com",
            &[("User-Agent", "ConsentTest/1.0"), ("Origin", "https://blog.example.org")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let cy = app.store.subscriber_by_email(&SubscriberEmail::parse("cy@example.com").unwrap()).await.unwrap();
    let consents = app.store.consents(cy.unwrap().id).await.unwrap();
    let [consent] = &consents[..] else { panic!("{consents:?}") };
    assert_eq!(consent.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(consent.user_agent.as_deref(), Some("ConsentTest/1.0"));
    assert_eq!(consent.source, "embedded form at https://blog.example.org");
}

#[tokio::test]
async fn invalid_fields_are_rejected_with_422_and_a_message_naming_the_problem() {
    let app = spawn_app().await;
    let fifty_one: Vec<String> = (0..51).map(|i| format!("T{i}")).collect();
    let cases = [
        (json!({"email": ""}), "email"),
        (json!({}), "email"),
        (json!({"email": "not-an-email"}), "email"),
        (json!({"email": "ann@"}), "email"),
        (json!({"email": "ann@example.com\r\nBcc: x@evil.example"}), "email"),
        (json!({"email": "an\u{0}n@example.com"}), "email"),
        (json!({"email": format!("{}@example.com", "a".repeat(250))}), "email"),
        (json!({"email": "ann@example.com", "name": "x".repeat(101)}), "name"),
        (json!({"email": "ann@example.com", "tickers": ["<script>"]}), "tickers"),
        (json!({"email": "ann@example.com", "tickers": fifty_one}), "tickers"),
        (json!({"email": "ann@example.com", "tickers": "NOK, DROP'TABLE--"}), "tickers"),
    ];
    for (body, field) in cases {
        let response = app.post_subscriptions_json(&body).await;
        assert_eq!(response.status(), 422, "{body}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["field"], field, "{body}");
        assert!(error["error"].as_str().unwrap().len() > 10, "{body}: no message");
    }
    assert_eq!(app.store.subscriber_counts().await.unwrap(), vec![]);
}

#[tokio::test]
async fn an_invalid_form_post_shows_the_form_again_with_the_error_and_the_values() {
    let app = spawn_app().await;
    let response = app.post_subscriptions_form("email=ann%40&name=Ann&tickers=NOK").await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains("not a valid email address"), "{page}");
    assert!(page.contains("value=\"ann@\""));
    assert!(page.contains("value=\"NOK\""));
}

#[tokio::test]
async fn values_echoed_into_the_form_are_escaped() {
    let app = spawn_app().await;
    let response = app.post_subscriptions_form(&format!("email={}", urlencode("\"><script>alert(1)</script>"))).await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script>alert(1)"));
}

#[tokio::test]
async fn malformed_bodies_get_400_and_unknown_content_types_415() {
    let app = spawn_app().await;
    let response = app.post_subscriptions_raw("application/json", "{\"email\": ").await;
    assert_eq!(response.status(), 400);
    let response = app.post_subscriptions_raw("application/json", "{\"email\": 42}").await;
    assert_eq!(response.status(), 400);
    let response = app.post_subscriptions_raw("text/plain", "email=ann@example.com").await;
    assert_eq!(response.status(), 415);
    let response = app.post_subscriptions_form("email=%ZZ%FF&name=%C3%28").await;
    assert!(response.status().is_client_error(), "{}", response.status());
}

#[tokio::test]
async fn a_body_over_16_kib_is_refused_with_413() {
    let app = spawn_app().await;
    let body = format!("email=ann%40example.com&name={}", "a".repeat(17 * 1024));
    let response = app.post_subscriptions_form(&body).await;
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn a_filled_honeypot_looks_like_success_but_stores_and_sends_nothing() {
    let app = spawn_app().await;
    let response = app.post_subscriptions_form("email=bot%40example.com&website=http%3A%2F%2Fspam.example").await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Check your inbox"));
    let response = app.post_subscriptions_form("email=not-even-valid&website=spam").await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.store.subscriber_counts().await.unwrap(), vec![]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.smtp.mails().is_empty());
}

#[tokio::test]
async fn too_many_signups_from_one_ip_get_429_with_retry_after() {
    let app = spawn_app_with(&[("SIGNUP_LIMIT_PER_HOUR", "2")]).await;
    for i in 0..2 {
        let response = app.post_subscriptions_form(&format!("email=r{i}%40example.com")).await;
        assert_eq!(response.status(), 200);
    }
    let response = app.post_subscriptions_form("email=r3%40example.com").await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let response = app.post_subscriptions_json(&json!({"email": "r4@example.com"})).await;
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn the_response_is_the_same_for_new_pending_and_confirmed_addresses() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("known@example.com").await;
    let new = app.post_subscriptions_json(&json!({"email": "new@example.com"})).await;
    let pending = app.post_subscriptions_json(&json!({"email": "new@example.com"})).await;
    let confirmed = app.post_subscriptions_json(&json!({"email": "known@example.com"})).await;
    let bodies = [new, pending, confirmed].map(|r| r.status());
    assert_eq!(bodies, [reqwest::StatusCode::ACCEPTED; 3]);
}

#[tokio::test]
async fn a_repeated_signup_within_the_resend_interval_sends_one_confirmation() {
    let app = spawn_app().await;
    app.sign_up("twice@example.com").await;
    let response = app.post_subscriptions_form("email=twice%40example.com&name=Again").await;
    assert_eq!(response.status(), 200);
    app.wait_until_outbox_idle().await;
    assert_eq!(app.smtp.mails_to("twice@example.com").len(), 1);
}

#[tokio::test]
async fn a_repeated_signup_after_the_resend_interval_sends_a_new_confirmation() {
    let app = spawn_app_with(&[("CONFIRMATION_RESEND_SECONDS", "0")]).await;
    app.sign_up("again@example.com").await;
    app.post_subscriptions_form("email=again%40example.com").await;
    app.smtp.wait_for_mails_to("again@example.com", 2, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_signup_of_a_confirmed_address_changes_nothing_and_sends_nothing() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("done@example.com").await;
    let response = app.post_subscriptions_form("email=done%40example.com&name=Mallory&tickers=GME").await;
    assert_eq!(response.status(), 200);
    app.wait_until_outbox_idle().await;
    assert_eq!(app.smtp.mails_to("done@example.com").len(), 2);
    let subscriber =
        app.store.subscriber_by_email(&SubscriberEmail::parse("done@example.com").unwrap()).await.unwrap().unwrap();
    assert_eq!(subscriber.status, SubscriberStatus::Confirmed);
    assert_eq!(subscriber.name, "Ann");
}

#[tokio::test]
async fn two_hundred_concurrent_signups_give_no_5xx_and_one_subscriber_per_address() {
    let app = spawn_app().await;
    let requests = (0..200).map(|i| {
        let email = if i % 2 == 0 { "same@example.com".to_string() } else { format!("user{i}@example.com") };
        let app = &app;
        async move { app.post_subscriptions_form(&format!("email={}", urlencode(&email))).await.status() }
    });
    let statuses = futures_util::future::join_all(requests).await;
    let distinct: HashSet<u16> = statuses.iter().map(|s| s.as_u16()).collect();
    assert_eq!(distinct, HashSet::from([200]));
    let counts = app.store.subscriber_counts().await.unwrap();
    assert_eq!(counts, vec![(SubscriberStatus::Pending, 101)]);
    app.wait_until_outbox_idle().await;
    assert_eq!(app.smtp.mails_to("same@example.com").len(), 1);
}

#[tokio::test]
async fn addresses_the_mailer_cannot_send_or_that_could_deceive_a_reader_are_refused_with_422() {
    let app = spawn_app().await;
    for bad in [
        "\"a>b\"@x.com",
        "lit@[127.0.0.1]",
        "ann\u{200B}@example.com",
        "ann@exa\u{200D}mple.com",
        "ann@example.com\u{202E}",
        "\u{FEFF}ann@example.com",
        "an\u{AD}n@example.com",
        "ann@bü\u{AD}cher.example",
        "ann\u{2066}@example.com",
        "ann\u{3164}@example.com",
        "jörg@example.com",
        "ann@exam_ple.com",
    ] {
        let response = app.post_subscriptions_form(&format!("email={}", urlencode(bad))).await;
        assert_eq!(response.status(), 422, "{bad:?}");
        assert!(response.text().await.unwrap().contains("email address"), "{bad:?}: no message");
        let response = app.post_subscriptions_json(&json!({ "email": bad })).await;
        assert_eq!(response.status(), 422, "{bad:?}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["field"], "email", "{bad:?}");
    }
    assert_eq!(app.store.subscriber_counts().await.unwrap(), vec![]);
}

#[tokio::test]
async fn an_international_domain_is_accepted_and_stored_and_mailed_as_punycode() {
    let app = spawn_app().await;
    let response = app.post_subscriptions_form(&format!("email={}", urlencode("Ann@Bücher.example"))).await;
    assert_eq!(response.status(), 200);
    let found = app.store.find_subscribers("", None, "", 10).await.unwrap();
    let emails: Vec<&str> = found.iter().map(|s| s.email.as_str()).collect();
    assert_eq!(emails, ["ann@xn--bcher-kva.example"]);
    app.smtp.wait_for_mail_to("ann@xn--bcher-kva.example").await;
}

#[tokio::test]
async fn signing_up_in_other_letter_case_after_leaving_does_not_make_a_second_reader() {
    let app = spawn_app().await;
    let welcome = app.sign_up_and_confirm("ann@x.com").await;
    let token = app.token_from(&welcome, "unsubscribe");
    assert_eq!(app.post_one_click_unsubscribe(&token).await.status(), 200);
    let response = app.post_subscriptions_form("email=ANN%40X.COM").await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.store.subscriber_counts().await.unwrap(), vec![(SubscriberStatus::Pending, 1)]);
    let mails = app.smtp.wait_for_mails_to("ann@x.com", 3, Duration::from_secs(10)).await;
    assert!(mails[2].header("Subject").unwrap().starts_with("Confirm"), "the one reader is asked again");
}

#[tokio::test]
async fn twenty_concurrent_identical_signups_send_one_confirmation() {
    let app = spawn_app().await;
    // Other sign-ups first keep the writer busy, so the identical ones queue
    // up behind them and land in one batch.
    let others = (0..50).map(|i| format!("email=other{i}%40example.com"));
    let bodies: Vec<String> = others.chain((0..20).map(|_| "email=rush%40example.com".to_string())).collect();
    let requests = bodies.iter().map(|body| app.post_subscriptions_form(body));
    let statuses = futures_util::future::join_all(requests).await;
    assert!(statuses.iter().all(|r| r.status() == 200));
    assert_eq!(app.store.subscriber_counts().await.unwrap(), vec![(SubscriberStatus::Pending, 51)]);
    app.wait_until_outbox_idle().await;
    assert_eq!(app.smtp.mails_to("rush@example.com").len(), 1);
    // The sink alone could miss a second one the worker suppressed.
    let rush = app.store.subscriber_by_email(&SubscriberEmail::parse("rush@example.com").unwrap()).await.unwrap();
    let queued = app.store.subscriber_history(rush.unwrap().id).await.unwrap();
    assert_eq!(queued.len(), 1, "one confirmation queued: {queued:?}");
}

#[tokio::test]
async fn the_name_typed_beside_an_unconfirmed_address_is_not_mailed_to_it() {
    let app = spawn_app().await;
    let body = "email=stranger%40example.com&name=Hello+Click+http%3A%2F%2Fevil.example+now";
    assert_eq!(app.post_subscriptions_form(body).await.status(), 200);
    let confirmation = app.smtp.wait_for_mail_to("stranger@example.com").await;
    for part in [confirmation.text(), confirmation.html()] {
        assert!(!part.contains("evil.example") && !part.contains("Click"), "{part}");
    }
    let token = app.token_from(&confirmation, "confirm");
    assert_eq!(app.post_confirm(&token).await.status(), 200);
    let welcome = app.smtp.wait_for_mails_to("stranger@example.com", 2, std::time::Duration::from_secs(10)).await;
    assert!(welcome[1].text().contains("Hello Click"), "the welcome greets them by name, once they confirmed");
}
