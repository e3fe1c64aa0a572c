//! Test sends from the admin API and the CLI: any address, `[TEST]` in the
//! subject, the SMTP server's answer, once per Idempotency-Key.

use chrono::{SecondsFormat, Utc};
use serde_json::json;

use crate::cli::tickermail;
use crate::helpers::{TEST_ADMIN_TOKEN, TEST_SECRET_KEY, TestApp, spawn_app};

impl TestApp {
    pub async fn with_a_story_and_quotes(&self) {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        self.push_quotes(&json!([
            {"symbol": "NOK", "price": 5.5, "previous_close": 5.0, "as_of": now},
            {"symbol": "AAPL", "price": 199.0, "previous_close": 200.0, "as_of": now},
        ]))
        .await;
        let story =
            json!({"title": "Nokia (NYSE:NOK) wins a deal", "url": "https://news.example/nokia", "published_at": now});
        assert_eq!(self.push_story(&story).await.status(), 201);
    }
}

#[tokio::test]
async fn every_kind_of_test_send_reaches_any_address_marked_test() {
    let app = spawn_app().await;
    app.with_a_story_and_quotes().await;
    for (kind, subject_start) in [
        ("digest", "[TEST] Stock News digest, "),
        ("alert", "[TEST] NOK is up 10.0% today"),
        ("confirmation", "[TEST] Confirm your subscription"),
        ("welcome", "[TEST] Welcome to Stock News"),
    ] {
        let to = format!("{kind}@admin.example");
        let response = app.post_test_send(&json!({"to": to, "kind": kind}), None).await;
        assert_eq!(response.status(), 200, "{kind}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["sent"], true);
        let mail = app.smtp.wait_for_mail_to(&to).await;
        assert!(mail.header("Subject").unwrap().starts_with(subject_start), "{kind}: {:?}", mail.header("Subject"));
    }
    let stats: serde_json::Value = app.get_admin_stats(Some(TEST_ADMIN_TOKEN)).await.json().await.unwrap();
    assert_eq!(stats["deliveries"], json!([]), "test sends are not counted: {stats}");
}

#[tokio::test]
async fn a_repeated_idempotency_key_sends_once_and_gets_the_first_answer() {
    let app = spawn_app().await;
    let body = json!({"to": "once@admin.example", "kind": "welcome"});
    let first: serde_json::Value = app.post_test_send(&body, Some("key-1")).await.json().await.unwrap();
    let second = app.post_test_send(&body, Some("key-1")).await;
    assert_eq!(second.status(), 200);
    assert_eq!(second.json::<serde_json::Value>().await.unwrap(), first);
    app.post_test_send(&body, Some("key-2")).await;
    app.smtp.wait_for_mails_to("once@admin.example", 2, std::time::Duration::from_secs(10)).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(app.smtp.mails_to("once@admin.example").len(), 2, "key-1 sent once, key-2 once");
}

#[tokio::test]
async fn a_refused_test_send_answers_with_the_smtp_servers_reply() {
    let app = spawn_app().await;
    app.smtp.refuse_with(Some("451 4.3.0 mailbox busy, try later"));
    let response = app.post_test_send(&json!({"to": "busy@admin.example", "kind": "confirmation"}), None).await;
    assert_eq!(response.status(), 502);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["sent"], false);
    assert!(body["reply"].as_str().unwrap().contains("mailbox busy"), "{body}");
}

#[tokio::test]
async fn a_test_send_with_bad_input_or_nothing_to_show_says_why() {
    let app = spawn_app().await;
    let response = app.post_test_send(&json!({"to": "not an address", "kind": "digest"}), None).await;
    assert_eq!(
        (response.status().as_u16(), response.json::<serde_json::Value>().await.unwrap()["field"].clone()),
        (422, json!("to"))
    );
    let response = app.post_test_send(&json!({"to": "a@admin.example", "kind": "newsletter"}), None).await;
    assert_eq!(response.status(), 422);
    let response = app.post_test_send(&json!({"to": "a@admin.example", "kind": "digest"}), None).await;
    assert_eq!(response.status(), 409, "no stories or quotes yet");
    let unauthorised = app.post_admin_json("/admin/api/test-send", &json!({}), None).await;
    assert_eq!(unauthorised.status(), 401);
}

#[tokio::test]
async fn send_test_from_the_cli_prints_what_was_sent() {
    let app = spawn_app().await;
    app.with_a_story_and_quotes().await;
    let output = tickermail()
        .env("DATABASE_URL", &app.database_url)
        .env("SMTP_URL", format!("smtp://127.0.0.1:{}?tls=none", app.smtp.port))
        .env("SECRET_KEY", TEST_SECRET_KEY)
        .args(["send-test", "--to", "cli@admin.example", "--kind", "digest"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.lines().any(|line| line.starts_with("sent to cli@admin.example: [TEST] ")), "{stdout}");
    app.smtp.wait_for_mail_to("cli@admin.example").await;
}
