//! Price alerts through `tickermail alerts`: one per move, ticker, direction
//! and trading day, again only at a higher tier, and never from stale prices.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::json;

use crate::helpers::spawn_app;

fn minutes_ago(minutes: i64) -> String {
    (Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[tokio::test]
async fn a_move_past_the_threshold_alerts_once_and_again_only_at_a_higher_tier() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("reader@example.com").await;
    app.push_quotes(&json!([
        {"symbol": "NOK", "price": 5.5, "previous_close": 5.0, "as_of": minutes_ago(1)},
        {"symbol": "AAPL", "price": 240.0, "previous_close": 200.0, "as_of": minutes_ago(120)},
    ]))
    .await;

    let output = app.run_command(&["alerts", "--dry-run"]).await;
    assert!(output.contains("dry run: 1 alerts due, from 1 fresh quotes"), "a stale AAPL never alerts: {output}");
    let output = app.run_command(&["alerts"]).await;
    assert!(output.contains("alerts: 1 due, 1 queued, 1 sent, 0 failed"), "{output}");
    let alert = app.smtp.wait_for_mails_to("reader@example.com", 3, Duration::from_secs(10)).await.pop().unwrap();
    assert_eq!(alert.header("Subject").as_deref(), Some("NOK is up 10.0% today: 5.50"));
    assert!(alert.header("List-Unsubscribe").unwrap().starts_with(&format!("<{}/unsubscribe/", app.address)));
    assert_eq!(alert.header("List-Id").as_deref(), Some("Stock News alerts <alerts.stocknews.example>"));
    let text = alert.text();
    assert!(text.contains("Previous close: 5.00") && text.contains("Change:         +10.00%"), "{text}");
    assert!(text.contains("2 x your threshold of 5%"), "{text}");

    let output = app.run_command(&["alerts"]).await;
    assert!(output.contains("alerts: 0 due"), "the same move does not alert twice: {output}");

    app.push_quotes(&json!({"symbol": "NOK", "price": 5.6, "previous_close": 5.0, "as_of": minutes_ago(0)})).await;
    let output = app.run_command(&["alerts"]).await;
    assert!(output.contains("alerts: 0 due"), "12% is still the second tier: {output}");
    app.push_quotes(&json!({"symbol": "NOK", "price": 5.8, "previous_close": 5.0, "as_of": minutes_ago(0)})).await;
    let output = app.run_command(&["alerts"]).await;
    assert!(output.contains("alerts: 1 due, 1 queued, 1 sent"), "16% reaches the third tier: {output}");
    let alert = app.smtp.wait_for_mails_to("reader@example.com", 4, Duration::from_secs(10)).await.pop().unwrap();
    assert_eq!(alert.header("Subject").as_deref(), Some("NOK is up 16.0% today: 5.80"));
}

#[tokio::test]
async fn an_unsubscribed_reader_gets_no_alert() {
    let app = spawn_app().await;
    let welcome = app.sign_up_and_confirm("leaver@example.com").await;
    let token = app.token_from(&welcome, "unsubscribe");
    assert_eq!(app.post_one_click_unsubscribe(&token).await.status(), 200);
    app.push_quotes(&json!({"symbol": "NOK", "price": 4.0, "previous_close": 5.0, "as_of": minutes_ago(1)})).await;
    let output = app.run_command(&["alerts"]).await;
    assert!(output.contains("alerts: 0 due"), "{output}");
}

#[tokio::test]
async fn a_move_made_before_the_reader_followed_the_ticker_does_not_alert_them() {
    let app = spawn_app().await;
    app.push_quotes(&json!([
        {"symbol": "NOK", "price": 5.5, "previous_close": 5.0, "as_of": minutes_ago(2)},
        {"symbol": "MSFT", "price": 368.0, "previous_close": 400.0, "as_of": minutes_ago(2)},
    ]))
    .await;
    let welcome = app.sign_up_and_confirm("late@example.com").await;
    let token = app.token_from(&welcome, "preferences");
    let saved = app
        .post_preferences(&token, "tickers=NOK+AAPL+MSFT&alert_threshold=5&digest_frequency=daily&alerts_enabled=on")
        .await;
    assert_eq!(saved.status(), 200);
    let output = app.run_command(&["alerts"]).await;
    assert!(output.contains("alerts: 0 due"), "NOK moved before they confirmed, MSFT before they added it: {output}");

    app.push_quotes(&json!({"symbol": "MSFT", "price": 356.0, "previous_close": 400.0, "as_of": minutes_ago(1)})).await;
    let output = app.run_command(&["alerts"]).await;
    assert!(output.contains("alerts: 1 due, 1 queued, 1 sent"), "a further fall to -11% does: {output}");
}
