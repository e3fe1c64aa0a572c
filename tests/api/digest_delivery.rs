//! A digest edition through crashes and outages, with the real binary: kill
//! -9 in the middle and start again, SMTP down for a while, one recipient
//! refused. Every reader gets the digest; duplicates are at most the sends
//! that were in flight.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use tickermail::domain::{NewStory, SubscriberEmail, SubscriberStatus};
use tickermail::store::Store;
use tokio::process::Command;

use crate::cli::tickermail;
use crate::helpers::{TEST_SECRET_KEY, fresh_database_url};
use crate::smtp_sink::SmtpSink;

/// Claimed per batch in these tests: the most that can be sent but not yet recorded when killed.
const BATCH: usize = 20;

/// A database with `readers` confirmed readers and one story new to them.
pub async fn edition_ready(readers: u32) -> String {
    let database = fresh_database_url().await;
    let store = Store::connect(&database).await.unwrap();
    store.migrate().await.unwrap();
    let yesterday = Utc::now() - chrono::Duration::days(1);
    store.seed_confirmed_subscribers(readers, "reader", "example.com", "NOK", yesterday).await.unwrap();
    store
        .upsert_story(&NewStory {
            guid: "story-1".into(),
            source: "api".into(),
            title: "Nokia (NYSE:NOK) wins a deal".into(),
            url: "https://news.example/nokia".into(),
            author: None,
            summary: "A deal.".into(),
            tickers: vec!["NOK".into()],
            published_at: Utc::now(),
        })
        .await
        .unwrap();
    store.close().await;
    database
}

fn tickermail_for(database: &str, smtp_port: u16) -> Command {
    let mut command = tickermail();
    command
        .env("DATABASE_URL", database)
        .env("SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}?tls=none"))
        .env("SECRET_KEY", TEST_SECRET_KEY)
        .env("SEND_BATCH_SIZE", BATCH.to_string())
        .env("SEND_LEASE_SECONDS", "14")
        .env("SMTP_TIMEOUT_SECONDS", "2")
        .env("SEND_RETRY_BASE_SECONDS", "1")
        .env("WORKER_POLL_MS", "100")
        .env("DIGEST_STORY_SETTLE_SECONDS", "0")
        .env("BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    command
}

async fn wait_until(what: &str, timeout: Duration, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn distinct_recipients(smtp: &SmtpSink) -> usize {
    smtp.mails().iter().flat_map(|m| m.to.clone()).collect::<HashSet<_>>().len()
}

#[tokio::test]
async fn a_digest_killed_mid_edition_reaches_every_reader_after_a_restart() {
    let smtp = SmtpSink::start().await;
    let database = edition_ready(300).await;
    let mut digest = tickermail_for(&database, smtp.port).env("SEND_RATE", "100").arg("digest").spawn().unwrap();
    wait_until("100 digests arrived", Duration::from_secs(30), || smtp.mails().len() >= 100).await;
    digest.start_kill().unwrap();
    digest.wait().await.unwrap();
    let before_restart = smtp.mails().len();
    assert!(before_restart < 300, "the kill came too late to test anything");

    let _server = tickermail_for(&database, smtp.port).arg("serve").spawn().unwrap();
    wait_until("every reader has the digest", Duration::from_secs(60), || distinct_recipients(&smtp) == 300).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let duplicates = smtp.mails().len() - 300;
    assert!(duplicates <= BATCH, "{duplicates} duplicates: more than one batch in flight");
    assert!(smtp.mails().iter().all(|m| m.header("Subject").unwrap().contains("digest")));
}

#[tokio::test]
async fn a_digest_sent_while_smtp_is_down_goes_out_when_it_returns() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let database = edition_ready(30).await;
    let digest = tickermail_for(&database, port).arg("digest").spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let smtp = SmtpSink::start_on(port).await;
    let output = tokio::time::timeout(Duration::from_secs(60), digest.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("30 recipients, 30 sent, 0 failed"), "{stdout}");
    assert_eq!(distinct_recipients(&smtp), 30);
    assert_eq!(smtp.mails().len(), 30);
}

#[tokio::test]
async fn a_refused_recipient_is_bounced_and_the_rest_of_the_edition_carries_on() {
    let smtp = SmtpSink::start().await;
    smtp.reject_recipients_containing("reader7@");
    let database = edition_ready(12).await;
    let output = tickermail_for(&database, smtp.port).arg("digest").output().await.unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("12 recipients, 11 sent, 1 failed"), "{stdout}");
    let store = Store::connect(&database).await.unwrap();
    let refused = store.subscriber_by_email(&SubscriberEmail::parse("reader7@example.com").unwrap()).await.unwrap();
    assert_eq!(refused.unwrap().status, SubscriberStatus::Bounced);
}
