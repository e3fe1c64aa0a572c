//! The delivery invariants where features meet: several messages for one
//! reader in one batch, a slow relay against the lease, replies that must not
//! bounce a reader, an edition that protects the list, run-nows at once,
//! stories of a digest that never went out, messages that cannot be read,
//! and a server that stops in the middle of an edition.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tickermail::domain::{DeliveryStatus, SubscriberEmail, SubscriberStatus};
use tickermail::store::Store;

use crate::cli::tickermail;
use crate::digest::now_rfc3339;
use crate::helpers::{RawDb, TEST_SECRET_KEY, TestApp, fresh_database_url, spawn_app, spawn_app_with};

impl TestApp {
    /// Waits until the outbox has nothing queued or in flight, for up to `timeout`.
    pub async fn wait_until_outbox_idle_for(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let counts = self.store.delivery_counts().await.unwrap();
            if counts.iter().all(|c| c.status != DeliveryStatus::Queued && c.status != DeliveryStatus::Sending) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "outbox did not drain: {counts:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn subscriber_status(&self, email: &str) -> SubscriberStatus {
        let email = SubscriberEmail::parse(email).unwrap();
        self.store.subscriber_by_email(&email).await.unwrap().expect("the reader exists").status
    }

    /// The edition as the admin API lists it.
    async fn listed_edition(&self, id: &str) -> serde_json::Value {
        let listed = self.admin_get_json("/admin/api/editions").await;
        listed["editions"].as_array().unwrap().iter().find(|e| e["id"] == id).expect("the edition is listed").clone()
    }

    /// Waits until edition `id` is paused with nothing on the wire, and returns it as listed.
    async fn wait_until_paused(&self, id: &str) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let edition = self.listed_edition(id).await;
            if edition["state"] == "paused" && edition["progress"]["sending"] == 0 {
                return edition;
            }
            assert!(tokio::time::Instant::now() < deadline, "the edition did not pause: {edition}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `count` confirmed readers `{prefix}N@example.com` following NOK, and a story new to them.
    async fn readers_with_a_story(&self, count: u32, prefix: &str) {
        let yesterday = Utc::now() - chrono::Duration::days(1);
        self.store.seed_confirmed_subscribers(count, prefix, "example.com", "NOK", yesterday).await.unwrap();
        self.with_a_story("Nokia (NYSE:NOK) wins a deal", "https://news.example/nokia", &now_rfc3339()).await;
    }
}

/// What a run now of the daily digest posts.
fn daily_digest() -> serde_json::Value {
    json!({ "frequency": "daily" })
}

fn minutes_ago(minutes: i64) -> String {
    (Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339()
}

/// How many messages each recipient got.
fn messages_per_recipient(app: &TestApp) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for mail in app.smtp.mails() {
        for to in mail.to {
            *counts.entry(to).or_default() += 1;
        }
    }
    counts
}

#[tokio::test]
async fn a_reader_whose_three_tickers_move_at_once_gets_every_alert() {
    let app = spawn_app().await;
    let welcome = app.sign_up_and_confirm("movers@example.com").await;
    let token = app.token_from(&welcome, "preferences");
    let saved = app
        .post_preferences(&token, "tickers=NOK+AAPL+MSFT&alert_threshold=5&digest_frequency=daily&alerts_enabled=on")
        .await;
    assert_eq!(saved.status(), 200);
    app.push_quotes(&json!([
        {"symbol": "NOK", "price": 5.5, "previous_close": 5.0, "as_of": minutes_ago(1)},
        {"symbol": "AAPL", "price": 180.0, "previous_close": 200.0, "as_of": minutes_ago(1)},
        {"symbol": "MSFT", "price": 440.0, "previous_close": 400.0, "as_of": minutes_ago(1)},
    ]))
    .await;

    // The three alerts are queued together, so one worker claims them in one batch.
    let output = app.run_command(&["alerts"]).await;
    assert!(output.contains("alerts: 3 due, 3 queued, 3 sent, 0 failed"), "{output}");
    let mails = app.smtp.wait_for_mails_to("movers@example.com", 5, Duration::from_secs(10)).await;
    let mut subjects: Vec<String> = mails[2..].iter().map(|m| m.header("Subject").unwrap()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        ["AAPL is down 10.0% today: 180.00", "MSFT is up 10.0% today: 440.00", "NOK is up 10.0% today: 5.50"]
    );
}

#[tokio::test]
async fn a_slow_relay_gets_each_message_once_although_the_edition_outlasts_the_lease() {
    let app = spawn_app_with(&[
        ("SEND_CONCURRENCY", "2"),
        ("SEND_LEASE_SECONDS", "12"),
        ("SMTP_TIMEOUT_SECONDS", "1"),
        ("DIGEST_STORY_SETTLE_SECONDS", "0"),
    ])
    .await;
    app.smtp.delay_each_message(Duration::from_millis(250));
    app.readers_with_a_story(180, "slow").await;
    assert_eq!(app.create_edition(&daily_digest(), None).await.status(), 201);

    // 180 messages at 250 ms over 2 sessions take 22 s: well past the
    // lease of those claimed first and still waiting for a session.
    app.wait_until_outbox_idle_for(Duration::from_secs(90)).await;
    let counts = messages_per_recipient(&app);
    assert_eq!(counts.len(), 180);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
}

#[tokio::test]
async fn a_relay_refusal_or_a_full_mailbox_fails_or_retries_the_message_but_never_bounces_the_reader() {
    let app = spawn_app().await;
    app.smtp.reply_to_recipients_containing("relay@", "550 5.7.1 Relaying denied");
    app.smtp.reply_to_recipients_containing("full@", "552 5.2.2 Mailbox full");
    app.smtp.reply_to_recipients_containing("gone@", "550 5.1.1 no such user");
    for email in ["relay@example.com", "full@example.com", "gone@example.com"] {
        assert_eq!(app.post_subscriptions_form(&format!("email={email}")).await.status(), 200);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.smtp.accept_all_recipients();
    app.smtp.wait_for_mail_to("full@example.com").await;
    app.wait_until_outbox_idle().await;

    assert_eq!(app.subscriber_status("relay@example.com").await, SubscriberStatus::Pending, "a policy refusal");
    assert_eq!(app.subscriber_status("full@example.com").await, SubscriberStatus::Pending, "retried, then delivered");
    assert_eq!(
        app.subscriber_status("gone@example.com").await,
        SubscriberStatus::Bounced,
        "the mailbox does not exist"
    );
    assert!(app.smtp.mails_to("relay@example.com").is_empty(), "failed for good, not retried");
}

#[tokio::test]
async fn an_edition_pauses_itself_after_a_run_of_relay_refusals_and_says_why() {
    let app = spawn_app_with(&[
        ("EDITION_PAUSE_REFUSALS_IN_A_ROW", "3"),
        ("SEND_RATE", "10"),
        ("DIGEST_STORY_SETTLE_SECONDS", "0"),
    ])
    .await;
    app.readers_with_a_story(30, "refused").await;
    app.smtp.reply_to_recipients_containing("refused", "550 5.7.1 Relaying denied");
    let response = app.create_edition(&daily_digest(), None).await;
    assert_eq!(response.status(), 201);
    let id = response.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    let edition = app.wait_until_paused(&id).await;
    let reason = edition["state_reason"].as_str().unwrap();
    assert!(reason.contains("3 policy, relay or authentication refusals in a row"), "{reason}");
    assert!(reason.contains("Relaying denied"), "{reason}");
    assert!(edition["progress"]["queued"].as_i64().unwrap() > 10, "most of the list waits: {edition}");
    assert_eq!(app.subscriber_status("refused1@example.com").await, SubscriberStatus::Confirmed);
    let pages = app.log_in_as_admin().await;
    let page = pages.get_text(&format!("/admin/editions/{id}")).await;
    assert!(page.contains("Paused: paused itself after 3 policy"), "{page}");
}

#[tokio::test]
async fn an_edition_pauses_itself_when_too_many_of_its_addresses_do_not_exist() {
    let app = spawn_app_with(&[
        ("EDITION_PAUSE_MIN_ATTEMPTS", "10"),
        ("EDITION_PAUSE_FAILURE_PERCENT", "20"),
        ("SEND_RATE", "10"),
        ("DIGEST_STORY_SETTLE_SECONDS", "0"),
    ])
    .await;
    app.readers_with_a_story(40, "reader").await;
    // reader1, reader3, reader10–19 and reader30–39 do not exist: over half the list.
    for dead in ["reader1", "reader3"] {
        app.smtp.reply_to_recipients_containing(dead, "550 5.1.1 no such user");
    }
    let response = app.create_edition(&daily_digest(), None).await;
    let id = response.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();

    let edition = app.wait_until_paused(&id).await;
    assert!(edition["state_reason"].as_str().unwrap().contains("failed for good"), "{edition}");
    assert!(edition["progress"]["queued"].as_i64().unwrap() > 0, "it stopped before the end: {edition}");
}

#[tokio::test]
async fn a_cancel_stops_the_messages_already_claimed_and_waiting_for_a_session() {
    let app = spawn_app_with(&[("SEND_CONCURRENCY", "1"), ("DIGEST_STORY_SETTLE_SECONDS", "0")]).await;
    app.smtp.delay_each_message(Duration::from_millis(400));
    app.readers_with_a_story(30, "reader").await;
    let created = app.create_edition(&daily_digest(), None).await.json::<serde_json::Value>().await.unwrap();
    let id = created["id"].as_str().unwrap().parse().unwrap();
    while app.smtp.mails().len() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.post_edition_action(id, "cancel").await.status(), 200);
    let at_cancel = app.smtp.mails().len();
    app.wait_until_outbox_idle_for(Duration::from_secs(30)).await;
    // The one on the wire finishes, and those whose gate read the state in the second before.
    let after = app.smtp.mails().len() - at_cancel;
    assert!(after <= 4, "{after} messages went out after the cancel");
    let listed = app.listed_edition(&id.to_string()).await;
    assert_eq!(listed["progress"]["sent"].as_i64().unwrap() as usize, app.smtp.mails().len(), "{listed}");
    assert_eq!(listed["progress"]["suppressed"].as_i64().unwrap() as usize, 30 - app.smtp.mails().len(), "{listed}");
}

#[tokio::test]
async fn readers_who_leave_while_their_digest_waits_for_a_slow_relay_get_nothing() {
    let app = spawn_app_with(&[("SEND_CONCURRENCY", "1"), ("DIGEST_STORY_SETTLE_SECONDS", "0")]).await;
    app.smtp.delay_each_message(Duration::from_millis(400));
    app.readers_with_a_story(24, "reader").await;
    assert_eq!(app.create_edition(&daily_digest(), None).await.status(), 201);
    while app.smtp.mails().len() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mailed: Vec<String> = app.smtp.mails().iter().flat_map(|m| m.to.clone()).collect();
    let mut left = Vec::new();
    for n in 1..=24 {
        let email = format!("reader{n}@example.com");
        if mailed.contains(&email) {
            continue;
        }
        let reader = app.store.subscriber_by_email(&SubscriberEmail::parse(&email).unwrap()).await.unwrap().unwrap();
        if n % 2 == 0 {
            app.store.unsubscribe(reader.id).await.unwrap();
        } else {
            app.store.erase_subscriber(reader.id).await.unwrap();
        }
        left.push(email);
    }
    let at_leaving = app.smtp.mails().len();
    app.wait_until_outbox_idle_for(Duration::from_secs(30)).await;
    // What was on the wire, and what was claimed in the last seconds (its reader read freshly), still goes.
    let after: Vec<String> = app.smtp.mails()[at_leaving..].iter().flat_map(|m| m.to.clone()).collect();
    assert!(after.len() <= 8, "{} of the {} who left were mailed: {after:?}", after.len(), left.len());
    let mut db = RawDb::connect(&app.database_url).await;
    let reasons = db.fetch_strings("SELECT DISTINCT last_error FROM deliveries WHERE status = 'suppressed'").await;
    for reason in &reasons {
        assert!(
            ["unsubscribed", "subscriber is unsubscribed now", "the subscriber was erased"].contains(&reason.as_str()),
            "{reasons:?}"
        );
    }
}

#[tokio::test]
async fn three_run_nows_at_once_make_one_edition_and_each_reader_gets_one_digest() {
    let app = spawn_app_with(&[("DIGEST_STORY_SETTLE_SECONDS", "0")]).await;
    app.readers_with_a_story(50, "reader").await;
    let daily = daily_digest();
    let (a, b, c) = tokio::join!(
        app.create_edition(&daily, None),
        app.create_edition(&daily, None),
        app.create_edition(&daily, None)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16(), c.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409]);
    app.wait_until_outbox_idle_for(Duration::from_secs(30)).await;
    let counts = messages_per_recipient(&app);
    assert_eq!(counts.len(), 50);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}

#[tokio::test]
async fn a_run_now_repeated_with_its_idempotency_key_gets_the_first_answer_and_makes_nothing() {
    let app = spawn_app_with(&[("DIGEST_STORY_SETTLE_SECONDS", "0")]).await;
    app.readers_with_a_story(3, "reader").await;
    let first = app.create_edition(&daily_digest(), Some("run-1")).await;
    assert_eq!(first.status(), 201);
    let first: serde_json::Value = first.json().await.unwrap();
    app.wait_until_outbox_idle().await;
    let again = app.create_edition(&daily_digest(), Some("run-1")).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), first);
    let editions = app.admin_get_json("/admin/api/editions").await;
    assert_eq!(editions["editions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_stories_of_a_cancelled_digest_reach_its_readers_in_the_next_one() {
    let app = spawn_app_with(&[("DIGEST_STORY_SETTLE_SECONDS", "0")]).await;
    app.readers_with_a_story(5, "reader").await;
    app.smtp.refuse_with(Some("451 4.3.0 try again later"));
    let first = app.create_edition(&daily_digest(), None).await.json::<serde_json::Value>().await.unwrap();
    let id = first["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(app.post_edition_action(id, "cancel").await.status(), 200);
    app.smtp.refuse_with(None);
    app.wait_until_outbox_idle().await;
    assert!(app.smtp.mails().is_empty(), "the cancelled edition sent nothing");

    let second = app.create_edition(&daily_digest(), None).await;
    assert_eq!(second.status(), 201);
    assert_eq!(second.json::<serde_json::Value>().await.unwrap()["recipients"], 5);
    app.wait_until_outbox_idle().await;
    let counts = messages_per_recipient(&app);
    assert_eq!(counts.len(), 5);
    assert!(app.smtp.mails().iter().all(|m| m.text().contains("Nokia (NYSE:NOK) wins a deal")));

    let third = app.create_edition(&daily_digest(), None).await.json::<serde_json::Value>().await.unwrap();
    assert_eq!(third["recipients"], 0, "and once only: {third}");
}

#[tokio::test]
async fn a_message_that_cannot_be_read_fails_alone_and_the_rest_of_its_batch_goes_out() {
    let app = spawn_app().await;
    app.sign_up("fine@example.com").await;
    let reader = app.store.subscriber_by_email(&SubscriberEmail::parse("fine@example.com").unwrap()).await.unwrap();
    let reader = reader.unwrap().id;
    // A kind written by a newer version and a damaged payload, queued with a good confirmation.
    let mut db = RawDb::connect(&app.database_url).await;
    let issued = format!(r#"{{"issued_at": {}}}"#, Utc::now().timestamp());
    for (kind, payload) in [("postcard", "{}"), ("alert", r#"{"symbol": 1}"#), ("confirmation", issued.as_str())] {
        db.insert_delivery(kind, reader, "fine@example.com", payload).await;
    }
    app.smtp.wait_for_mails_to("fine@example.com", 2, Duration::from_secs(10)).await;
    app.wait_until_outbox_idle().await;
    let failed = db.fetch_strings("SELECT kind || ': ' || last_error FROM deliveries WHERE status = 'failed'").await;
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().any(|e| e.starts_with("postcard: ") && e.contains("postcard")), "{failed:?}");
    assert!(failed.iter().any(|e| e.starts_with("alert: ")), "{failed:?}");
}

#[tokio::test]
async fn ready_answers_once_the_delivery_worker_runs() {
    let app = spawn_app().await;
    let response = app.get("/ready").await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// A seeded database with `readers` confirmed readers, one story, and a digest edition queued for them.
async fn edition_queued(readers: u32) -> String {
    let database = crate::digest_delivery::edition_ready(readers).await;
    let store = Store::connect(&database).await.unwrap();
    let rules = tickermail::jobs::digest::DigestRules { send_empty: false, story_settle: Duration::ZERO };
    let run = tickermail::jobs::digest::manual_run(tickermail::domain::DigestFrequency::Daily, Utc::now(), rules);
    store.create_digest_edition(&run).await.unwrap();
    store.close().await;
    database
}

#[tokio::test]
async fn a_server_told_to_stop_finishes_what_is_on_the_wire_and_puts_back_the_rest_without_using_an_attempt() {
    let smtp = crate::smtp_sink::SmtpSink::start().await;
    smtp.delay_each_message(Duration::from_millis(700));
    let database = edition_queued(20).await;
    let mut server = tickermail()
        .env("DATABASE_URL", &database)
        .env("SMTP_URL", format!("smtp://127.0.0.1:{}?tls=none", smtp.port))
        .env("SECRET_KEY", TEST_SECRET_KEY)
        .env("SEND_CONCURRENCY", "1")
        .env("WORKER_POLL_MS", "100")
        .env("BIND", "127.0.0.1:0")
        .env("DIGEST_SCHEDULE", "off")
        .env("WEEKLY_DIGEST_SCHEDULE", "off")
        .env("ALERT_SCHEDULE", "off")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while smtp.mails().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the server sent nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopping = tokio::time::Instant::now();
    let pid = server.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let exited = tokio::time::timeout(Duration::from_secs(10), server.wait()).await.expect("it stops").unwrap();
    assert!(exited.success(), "{exited:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "it did not wait for the whole batch: {:?}",
        stopping.elapsed()
    );

    let store = Store::connect(&database).await.unwrap();
    let counts = store.delivery_counts().await.unwrap();
    let count = |status| counts.iter().filter(|c| c.status == status).map(|c| c.count).sum::<i64>();
    assert_eq!(count(DeliveryStatus::Sending), 0, "nothing is left claimed: {counts:?}");
    assert_eq!(count(DeliveryStatus::Sent) as usize, smtp.mails().len(), "what went out is recorded: {counts:?}");
    assert_eq!(count(DeliveryStatus::Queued) + count(DeliveryStatus::Sent), 20, "{counts:?}");
    let mut db = RawDb::connect(&database).await;
    let used =
        db.fetch_i64("SELECT CAST(COALESCE(MAX(attempts), 0) AS BIGINT) FROM deliveries WHERE status = 'queued'").await;
    assert_eq!(used, 0, "putting back does not use an attempt");
}

#[tokio::test]
async fn a_delivery_whose_attempts_all_ended_without_an_outcome_fails_instead_of_going_round_again() {
    let database = fresh_database_url().await;
    let store = Store::connect(&database).await.unwrap();
    store.migrate().await.unwrap();
    crate::store::queue_confirmations(&store, 1).await;
    for attempt in 1..=2 {
        let claimed = store.claim_due_deliveries(10, Duration::from_millis(200), 2).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].attempts, attempt);
        // The worker "crashed" on it: no outcome, the lease runs out.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(store.claim_due_deliveries(10, Duration::from_millis(200), 2).await.unwrap().is_empty());
    let counts = store.delivery_counts().await.unwrap();
    assert_eq!(counts.iter().find(|c| c.status == DeliveryStatus::Failed).map(|c| c.count), Some(1), "{counts:?}");
    let mut db = RawDb::connect(&database).await;
    let errors = db.fetch_strings("SELECT last_error FROM deliveries").await;
    assert!(errors[0].starts_with("gave up after 2 attempts"), "{errors:?}");
}
