use std::time::Duration;

use tickermail::domain::{DeliveryStatus, SubscriberEmail, SubscriberStatus};

use crate::helpers::{TEST_ADMIN_TOKEN, spawn_app, spawn_app_with_smtp_port};
use crate::smtp_sink::SmtpSink;

#[tokio::test]
async fn a_signup_succeeds_while_smtp_is_down_and_the_mail_goes_out_when_it_returns() {
    // Find a free port, and leave it closed: SMTP is "down".
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let placeholder = SmtpSink::start().await;
    let app = spawn_app_with_smtp_port(port, &[], placeholder).await;

    let response = app.post_subscriptions_form("email=patient%40example.com").await;
    assert_eq!(response.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let counts = app.store.delivery_counts().await.unwrap();
    assert!(
        counts.iter().all(|c| c.status != DeliveryStatus::Sent && c.status != DeliveryStatus::Failed),
        "{counts:?}"
    );

    let smtp = SmtpSink::start_on(port).await;
    let mails = smtp.wait_for_mails_to("patient@example.com", 1, Duration::from_secs(20)).await;
    assert!(mails[0].header("Subject").unwrap().starts_with("Confirm"));
}

#[tokio::test]
async fn a_temporary_4xx_is_retried_until_the_server_accepts() {
    let app = crate::helpers::spawn_app().await;
    app.smtp.refuse_with(Some("451 4.3.0 try again later"));
    app.post_subscriptions_form("email=retry%40example.com").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(app.smtp.mails().is_empty());
    app.smtp.refuse_with(None);
    app.smtp.wait_for_mails_to("retry@example.com", 1, Duration::from_secs(20)).await;
    // The outcome is recorded just after the server accepted the message.
    app.wait_until_outbox_idle().await;
    let stats: serde_json::Value = app.get_admin_stats(Some(TEST_ADMIN_TOKEN)).await.json().await.unwrap();
    assert_eq!(stats["deliveries"][0]["status"], "sent", "{stats}");
}

#[tokio::test]
async fn a_permanent_5xx_for_a_recipient_fails_the_delivery_and_bounces_the_address_while_others_go_out() {
    let app = crate::helpers::spawn_app().await;
    app.smtp.reject_recipients_containing("nobody");
    app.post_subscriptions_form("email=nobody%40example.com").await;
    app.post_subscriptions_form("email=somebody%40example.com").await;
    app.smtp.wait_for_mail_to("somebody@example.com").await;
    app.wait_until_outbox_idle().await;
    let subscriber =
        app.store.subscriber_by_email(&SubscriberEmail::parse("nobody@example.com").unwrap()).await.unwrap().unwrap();
    assert_eq!(subscriber.status, SubscriberStatus::Bounced);
    let counts = app.store.delivery_counts().await.unwrap();
    let failed: i64 = counts.iter().filter(|c| c.status == DeliveryStatus::Failed).map(|c| c.count).sum();
    let sent: i64 = counts.iter().filter(|c| c.status == DeliveryStatus::Sent).map(|c| c.count).sum();
    assert_eq!((failed, sent), (1, 1), "{counts:?}");
}

#[tokio::test]
async fn the_stats_api_counts_subscribers_and_deliveries_by_status() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("counted@example.com").await;
    app.sign_up("pending@example.com").await;
    app.wait_until_outbox_idle().await;
    let stats: serde_json::Value = app.get_admin_stats(Some(TEST_ADMIN_TOKEN)).await.json().await.unwrap();
    assert_eq!(stats["subscribers"]["confirmed"], 1);
    assert_eq!(stats["subscribers"]["pending"], 1);
    let sent: Vec<(String, i64)> = stats["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "sent")
        .map(|d| (d["kind"].as_str().unwrap().to_string(), d["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(sent, vec![("confirmation".to_string(), 2), ("welcome".to_string(), 1)]);
}

#[tokio::test]
async fn send_rate_spaces_out_the_messages() {
    let app = crate::helpers::spawn_app_with(&[("SEND_RATE", "4")]).await;
    let started = std::time::Instant::now();
    for i in 0..8 {
        assert_eq!(app.post_subscriptions_form(&format!("email=rate{i}%40example.com")).await.status(), 200);
    }
    for i in 0..8 {
        app.smtp.wait_for_mail_to(&format!("rate{i}@example.com")).await;
    }
    // 4 at once (the burst), then one every 250 ms.
    assert!(started.elapsed() >= Duration::from_millis(900), "8 messages at 4/s took {:?}", started.elapsed());
}
