//! Digests: `tickermail digest` creates an edition from the stories and
//! quotes that came in, and each confirmed reader gets what is new to them,
//! once, as bulk mail with one-click unsubscribe.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::json;
use tickermail::domain::DigestFrequency;
use tickermail::jobs::digest::{DigestRules, digest_run};
use tickermail::store::{EditionOutcome, Store};

use crate::cli::tickermail;
use crate::helpers::{TEST_SECRET_KEY, TestApp, spawn_app};
use crate::smtp_sink::ReceivedMail;

impl TestApp {
    /// Runs `tickermail <args>` against this app's database, sending to its SMTP sink.
    pub async fn run_command(&self, args: &[&str]) -> String {
        let output = tickermail()
            .env("DATABASE_URL", &self.database_url)
            .env("SMTP_URL", format!("smtp://127.0.0.1:{}?tls=none", self.smtp.port))
            .env("SECRET_KEY", TEST_SECRET_KEY)
            .env("BASE_URL", &self.address)
            .env("MAIL_FROM", "Stock News <news@stocknews.example>")
            .env("WORKER_POLL_MS", "100")
            .env("DIGEST_STORY_SETTLE_SECONDS", "0")
            .args(args)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        stdout
    }

    /// Pushes a story that must be stored as new.
    pub async fn with_a_story(&self, title: &str, url: &str, published_at: &str) {
        let story = json!({"title": title, "url": url, "published_at": published_at, "summary": "Summary & more."});
        assert_eq!(self.push_story(&story).await.status(), 201);
    }
}

pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[tokio::test]
async fn a_confirmed_reader_gets_new_stories_and_their_watchlist_moves_once() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("reader@example.com").await;
    app.sign_up("pending@example.com").await;
    app.push_quotes(&json!([
        {"symbol": "NOK", "price": 5.5, "previous_close": 5.0, "as_of": now_rfc3339()},
        {"symbol": "MSFT", "price": 380.0, "previous_close": 400.0, "as_of": now_rfc3339()},
    ]))
    .await;
    app.with_a_story("Before you joined (NYSE:NOK)", "https://news.example/old", "2026-01-05T12:00:00Z").await;
    app.with_a_story(
        "Microsoft (NASDAQ:MSFT) says &lt;script&gt;alert(1)&lt;/script&gt; is not a product",
        "https://news.example/msft",
        &now_rfc3339(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.with_a_story("Nokia (NYSE:NOK) wins a deal", "https://news.example/nokia", &now_rfc3339()).await;

    let output = app.run_command(&["digest"]).await;
    assert!(output.contains("1 recipients, 1 sent, 0 failed"), "{output}");

    let digest = app.smtp.wait_for_mails_to("reader@example.com", 3, Duration::from_secs(10)).await.pop().unwrap();
    let subject = digest.header("Subject").unwrap();
    assert!(
        subject.starts_with("Stock News digest, ") && subject.ends_with(": Nokia (NYSE:NOK) wins a deal"),
        "{subject}"
    );
    let unsubscribe = digest.header("List-Unsubscribe").unwrap();
    assert!(unsubscribe.starts_with(&format!("<{}/unsubscribe/", app.address)), "{unsubscribe}");
    assert_eq!(digest.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    assert_eq!(digest.header("List-Id").as_deref(), Some("Stock News digest <digest.stocknews.example>"));
    assert!(digest.header("Message-ID").unwrap().ends_with("@stocknews.example>"));

    let text = digest.text();
    let nokia = text.find("Nokia (NYSE:NOK) wins a deal").expect("the watchlist story");
    let microsoft = text.find("Microsoft (NASDAQ:MSFT)").expect("the other story");
    assert!(nokia < microsoft, "stories about the watchlist come first:\n{text}");
    assert!(!text.contains("Before you joined"), "nothing from before confirming:\n{text}");
    assert!(text.contains("NOK *                  5.50     +0.50  +10.00%"), "{text}");
    assert!(text.contains("MSFT                 380.00    -20.00   -5.00%"), "{text}");
    assert!(text.contains("https://news.example/nokia"));
    let html = digest.html();
    assert!(html.contains("&#60;script&#62;") && !html.contains("<script>"), "a hostile title is escaped:\n{html}");
    assert!(html.contains("Unsubscribe</a>"));

    let output = app.run_command(&["digest"]).await;
    assert!(output.contains("no confirmed reader has anything new; nothing was sent"), "nothing new: {output}");

    let token = unsubscribe.trim_matches(['<', '>']).rsplit('/').next().unwrap().to_string();
    assert_eq!(app.post_one_click_unsubscribe(&token).await.status(), 200);
}

#[tokio::test]
async fn a_dry_run_says_what_would_be_sent_and_sends_nothing() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("reader@example.com").await;
    app.with_a_story("Nokia (NYSE:NOK) wins a deal", "https://news.example/nokia", &now_rfc3339()).await;

    let output = app.run_command(&["digest", "--dry-run"]).await;
    assert!(output.contains("would go to 1 readers"), "{output}");
    assert!(output.contains("Nokia (NYSE:NOK) wins a deal"), "{output}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.smtp.mails_to("reader@example.com").len(), 2, "confirmation and welcome only");

    let output = app.run_command(&["digest", "--weekly"]).await;
    assert!(output.contains("weekly digest: no confirmed reader has anything new"), "a daily reader: {output}");
    let output = app.run_command(&["digest"]).await;
    assert!(output.contains("1 recipients, 1 sent"), "the dry run moved nothing: {output}");
}

#[tokio::test]
async fn two_instances_firing_the_same_slot_make_exactly_one_edition() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("reader@example.com").await;
    app.with_a_story("Nokia (NYSE:NOK) wins a deal", "https://news.example/nokia", &now_rfc3339()).await;
    let other_instance = Store::connect(&app.database_url).await.unwrap();
    let slot = "daily:2026-11-25T22:30Z".to_string();
    let now = tickermail::store::now();
    let rules = DigestRules { send_empty: false, story_settle: Duration::ZERO };
    let run = digest_run(DigestFrequency::Daily, slot, now, rules);

    let (first, second) =
        tokio::join!(app.store.create_digest_edition(&run), other_instance.create_digest_edition(&run));
    let created: Vec<_> = [first.unwrap(), second.unwrap()]
        .into_iter()
        .filter_map(|outcome| match outcome {
            EditionOutcome::Created(created) => Some(created),
            _ => None,
        })
        .collect();
    assert_eq!(created.len(), 1, "one edition per slot");
    assert_eq!(created[0].recipients, 1);
    assert!(
        !matches!(app.store.create_digest_edition(&run).await.unwrap(), EditionOutcome::Created(_)),
        "a restart in the same minute adds nothing"
    );
    app.smtp.wait_for_mails_to("reader@example.com", 3, Duration::from_secs(10)).await;
    app.wait_until_outbox_idle().await;
    assert_eq!(app.smtp.mails_to("reader@example.com").len(), 3, "the digest went out once");
}

#[tokio::test]
async fn with_a_dkim_key_every_message_is_signed_and_bulk_mail_over_its_unsubscribe_headers() {
    let key_file = std::env::temp_dir().join(format!("tickermail-dkim-{}.key", uuid::Uuid::new_v4().simple()));
    // An Ed25519 key: 32 bytes (here 0 to 31) in base64.
    std::fs::write(&key_file, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    let key_path = key_file.to_string_lossy().to_string();
    let app = crate::helpers::spawn_app_with(&[
        ("DKIM_SELECTOR", "mail"),
        ("DKIM_DOMAIN", "stocknews.example"),
        ("DKIM_PRIVATE_KEY_FILE", &key_path),
    ])
    .await;
    let welcome = app.sign_up_and_confirm("reader@example.com").await;
    let signature = welcome.header("DKIM-Signature").expect("the welcome is signed");
    verify_dkim_signature(&welcome, &DKIM_SEED);
    assert!(signature.contains("a=ed25519-sha256") && signature.contains("d=stocknews.example"), "{signature}");
    assert!(signature.contains("s=mail"), "{signature}");
    assert_eq!(signed_headers(&signature), "from:to:subject:date:message-id");

    app.with_a_story("Nokia (NYSE:NOK) wins a deal", "https://news.example/nokia", &now_rfc3339()).await;
    let output = tickermail()
        .env("DATABASE_URL", &app.database_url)
        .env("SMTP_URL", format!("smtp://127.0.0.1:{}?tls=none", app.smtp.port))
        .env("SECRET_KEY", TEST_SECRET_KEY)
        .env("DKIM_SELECTOR", "mail")
        .env("DKIM_DOMAIN", "stocknews.example")
        .env("DKIM_PRIVATE_KEY_FILE", &key_path)
        .env("DIGEST_STORY_SETTLE_SECONDS", "0")
        .arg("digest")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let digest = app.smtp.wait_for_mails_to("reader@example.com", 3, Duration::from_secs(10)).await.pop().unwrap();
    let signature = digest.header("DKIM-Signature").expect("the digest is signed");
    verify_dkim_signature(&digest, &DKIM_SEED);
    assert_eq!(
        signed_headers(&signature),
        "from:to:subject:date:message-id:list-unsubscribe:list-unsubscribe-post:list-id"
    );
}

/// The test's Ed25519 key: the bytes 0 to 31.
const DKIM_SEED: [u8; 32] = {
    let mut seed = [0; 32];
    let mut i = 0;
    while i < 32 {
        seed[i] = i as u8;
        i += 1;
    }
    seed
};

/// Checks an ed25519-sha256 DKIM signature with relaxed/relaxed
/// canonicalization (RFC 6376 §3.4.2, §3.4.4, §3.7; RFC 8463) as a receiver would.
fn verify_dkim_signature(mail: &ReceivedMail, seed: &[u8; 32]) {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use ed25519_dalek::Verifier;
    use sha2::{Digest, Sha256};

    let (head, body) = mail.data.split_once("\r\n\r\n").expect("headers and body");
    let relaxed_value = |value: &str| value.replace("\r\n", "").split_whitespace().collect::<Vec<_>>().join(" ");
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        match fields.last_mut() {
            Some((_, value)) if line.starts_with([' ', '\t']) => value.push_str(line),
            _ => {
                let (name, value) = line.split_once(':').expect("a header field");
                fields.push((name.trim().to_ascii_lowercase(), value.to_string()));
            }
        }
    }
    let field = |name: &str| fields.iter().rev().find(|(n, _)| n == name).map(|(_, v)| relaxed_value(v));
    let signature = field("dkim-signature").expect("signed");
    let tag = |name: &str| {
        signature
            .split(';')
            .find_map(|tag| tag.trim().strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.replace(' ', ""))
    };

    let mut canonical_body: Vec<String> = body
        .split("\r\n")
        .map(|line| line.split([' ', '\t']).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "))
        .collect();
    while canonical_body.last().is_some_and(String::is_empty) {
        canonical_body.pop();
    }
    let canonical_body: String = canonical_body.iter().map(|line| format!("{line}\r\n")).collect();
    let body_hash = STANDARD.encode(Sha256::digest(canonical_body.as_bytes()));
    assert_eq!(tag("bh").as_deref(), Some(body_hash.as_str()), "the body hash matches the body received");

    let mut signed = String::new();
    for name in tag("h").unwrap().split(':') {
        signed.push_str(&format!("{name}:{}\r\n", field(name).unwrap_or_default()));
    }
    let b_value = signature.split(';').map(str::trim).find(|t| t.starts_with("b=")).unwrap();
    signed.push_str(&format!("dkim-signature:{}", signature.replacen(b_value, "b=", 1)));
    let digest = Sha256::digest(signed.as_bytes());
    let bytes: [u8; 64] = STANDARD.decode(tag("b").unwrap()).unwrap().try_into().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(seed).verifying_key();
    key.verify(&digest, &ed25519_dalek::Signature::from_bytes(&bytes)).expect("the signature verifies");
}

/// The `h=` tag of a DKIM-Signature: the headers it covers.
fn signed_headers(signature: &str) -> String {
    signature.split(';').find_map(|tag| tag.trim().strip_prefix("h=")).unwrap_or_default().replace(' ', "")
}

#[tokio::test]
async fn an_admin_runs_a_digest_now_and_watches_its_progress() {
    let app = crate::helpers::spawn_app_with(&[("DIGEST_STORY_SETTLE_SECONDS", "0")]).await;
    app.sign_up_and_confirm("reader@example.com").await;
    app.with_a_story("Nokia (NYSE:NOK) wins a deal", "https://news.example/nokia", &now_rfc3339()).await;

    let preview = app.create_edition(&json!({"dry_run": true}), None).await;
    assert_eq!(preview.status(), 200);
    let preview: serde_json::Value = preview.json().await.unwrap();
    assert_eq!(
        (preview["recipients"].clone(), preview["stories"][0]["title"].clone()),
        (json!(1), json!("Nokia (NYSE:NOK) wins a deal"))
    );

    let created = app.create_edition(&json!({"frequency": "daily"}), None).await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["recipients"], 1);
    let progress_path = format!("/admin/api/editions/{}", created["id"].as_str().unwrap());
    let mut progress = json!(null);
    for _ in 0..100 {
        progress = app.admin_get(&progress_path).await.json().await.unwrap();
        if progress["done"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(progress["deliveries"]["sent"], 1, "{progress}");
    let digest = app.smtp.wait_for_mails_to("reader@example.com", 3, Duration::from_secs(10)).await.pop().unwrap();
    assert!(digest.header("Subject").unwrap().contains("Nokia (NYSE:NOK) wins a deal"));

    let weekly = app.create_edition(&json!({"frequency": "never"}), None).await;
    assert_eq!(weekly.status(), 422);
    assert_eq!(app.admin_get("/admin/api/editions/nope").await.status(), 404);
    assert_eq!(app.post_admin_json("/admin/api/editions", &json!({}), None).await.status(), 401);
}

#[tokio::test]
async fn the_scheduler_sends_the_digest_at_its_slot_without_anyone_asking() {
    // Every minute, in a zone with a half-hour offset: the slot is worked out there.
    let app = crate::helpers::spawn_app_with(&[
        ("DIGEST_STORY_SETTLE_SECONDS", "0"),
        ("DIGEST_SCHEDULE", "* * * * *"),
        ("TIMEZONE", "Asia/Kolkata"),
    ])
    .await;
    app.sign_up_and_confirm("scheduled@example.com").await;
    app.with_a_story("Nokia (NYSE:NOK) wins a deal", "https://news.example/nokia", &now_rfc3339()).await;
    // The check runs at the start of each minute; a story that just missed one is in the next.
    let mails = app.smtp.wait_for_mails_to("scheduled@example.com", 3, Duration::from_secs(130)).await;
    assert!(mails[2].header("Subject").unwrap().contains("Nokia (NYSE:NOK) wins a deal"));
    let editions = app.store.recent_editions(10).await.unwrap();
    assert!(editions.iter().all(|e| e.slot.starts_with("daily:") && e.slot.ends_with('Z')), "{editions:?}");
    assert_eq!(editions.iter().filter(|e| e.recipients == 1).count(), 1, "one edition reached the reader");
}
