//! Stories and quotes coming in: feeds and providers served by a replay
//! server in their real formats, polled by `tickermail ingest` and by the
//! running application's schedule.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tickermail::domain::NewStory;
use tickermail::store::Store;

use crate::cli::tickermail;
use crate::helpers::{fresh_database_url, spawn_app_with};
use crate::replay::{Recorded, ReplayServer};

const RSS: &str = "application/rss+xml; charset=UTF-8";

pub async fn ingest(database_url: &str, envs: &[(&str, String)], args: &[&str]) -> (Option<i32>, String) {
    let mut command = tickermail();
    command.env("DATABASE_URL", database_url).arg("ingest").args(args);
    for (name, value) in envs {
        command.env(name, value);
    }
    let output = command.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (output.status.code(), String::from_utf8(output.stdout).unwrap() + &stderr)
}

pub async fn store_at(database_url: &str) -> Store {
    let store = Store::connect(database_url).await.unwrap();
    store.migrate().await.unwrap();
    store
}

#[tokio::test]
async fn a_feed_polled_twice_stores_its_stories_once_and_asks_conditionally_the_second_time() {
    let feeds = ReplayServer::start().await;
    feeds.route("/feed/", Recorded::fixture(200, RSS, "wp_feed.xml").with_header("ETag", "\"v1\""));
    let database = fresh_database_url().await;
    let envs = [("FEED_URLS", feeds.url("/feed/"))];

    let (code, output) = ingest(&database, &envs, &["--feeds"]).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("2 new, 0 updated, 0 unchanged, 0 skipped"), "{output}");

    let (code, output) = ingest(&database, &envs, &["--feeds"]).await;
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("not modified"), "{output}");
    assert_eq!(feeds.requests_to("/feed/")[1].header("If-None-Match"), Some("\"v1\""));

    let stories = store_at(&database).await.recent_stories(10).await.unwrap();
    assert_eq!(stories.len(), 2);
    assert_eq!(stories[0].tickers, vec!["NOK", "1810.HK", "XIACF"]);
}

#[tokio::test]
async fn an_edited_story_is_updated_in_place_by_the_scheduled_poll() {
    let feeds = ReplayServer::start().await;
    feeds.route("/feed/", Recorded::fixture(200, RSS, "wp_feed.xml"));
    let feed_url = feeds.url("/feed/");
    let app = spawn_app_with(&[("FEED_URLS", &feed_url), ("FEED_POLL_SECONDS", "1")]).await;
    let titles = || async {
        let body: serde_json::Value = app.get("/api/stories").await.json().await.unwrap();
        body["stories"].as_array().unwrap().iter().map(|s| s["title"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen = titles().await;
        if seen.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen.len(), 2, "the scheduled poll stored the feed's stories");

    let edited = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wp_feed.xml"))
        .unwrap()
        .replace("Lifts Dividend", "Raises Dividend");
    feeds.route("/feed/", Recorded::new(200, RSS, edited));
    for _ in 0..50 {
        seen = titles().await;
        if seen.iter().any(|t| t.contains("Raises Dividend")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.contains(&"Royal Bank of Canada (TSX:RY) Raises Dividend; Vodafone (LON:VOD) Slips".to_string()),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_broken_feed_is_reported_and_skipped_while_the_others_are_stored() {
    let feeds = ReplayServer::start().await;
    feeds.route("/good/", Recorded::fixture(200, RSS, "wp_feed.xml"));
    feeds.route("/garbage/", Recorded::new(200, RSS, "<rss version=\"2.0\"><channel><item><title>cut off"));
    feeds.route("/down/", Recorded::new(503, "text/html", "<h1>maintenance</h1>"));
    feeds.route("/huge/", Recorded::new(200, RSS, vec![b' '; 300_000]));
    let database = fresh_database_url().await;
    let urls = ["/garbage/", "/down/", "/huge/", "/good/"].map(|p| feeds.url(p)).join(",");
    let envs = [("FEED_URLS", urls), ("FEED_MAX_BYTES", "200000".to_string())];

    let (code, output) = ingest(&database, &envs, &["--feeds"]).await;
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("/garbage/: failed: not a feed"), "{output}");
    assert!(output.contains("/down/: failed: HTTP 503"), "{output}");
    assert!(output.contains("/huge/: failed: the body is larger than 200000 bytes"), "{output}");
    assert!(output.contains("/good/: 2 new"), "{output}");
    assert_eq!(store_at(&database).await.recent_stories(10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn each_symbol_is_quoted_by_the_first_provider_that_can_and_failures_say_why() {
    let providers = ReplayServer::start().await;
    let json = "application/json";
    providers.route("/v8/finance/chart/NOK", Recorded::fixture(200, json, "yahoo_chart_NOK_5d.json"));
    providers.route("/v8/finance/chart/VOD.L", Recorded::fixture(429, "text/plain", "yahoo_429.txt"));
    providers.route("/api/v1/quote", Recorded::fixture(200, json, "finnhub_unknown_symbol.json"));
    providers.route_with_param(
        "/api/v1/quote",
        "symbol",
        "VOD.L",
        Recorded::fixture(403, json, "finnhub_no_access.json"),
    );
    providers.route("/query", Recorded::fixture(200, json, "av_rate_limit_daily.json"));
    providers.route_with_param("/query", "symbol", "VOD.LON", Recorded::fixture(200, json, "av_global_quote_NOK.json"));
    providers.route_with_param("/query", "symbol", "XIACF", Recorded::fixture(200, json, "av_unknown_symbol.json"));
    providers.route("/q/l/", Recorded::fixture(200, "text/csv", "stooq_quote.csv"));
    providers.route("/q/d/l/", Recorded::fixture(200, "text/csv", "stooq_history_nok.us.csv"));

    let database = fresh_database_url().await;
    let store = store_at(&database).await;
    store
        .upsert_story(&NewStory {
            guid: "g1".into(),
            source: "api".into(),
            title: "Movers".into(),
            url: "https://news.example/movers".into(),
            author: None,
            summary: String::new(),
            tickers: ["NOK", "VOD.L", "XIACF", "ZZZZ"].map(String::from).to_vec(),
            published_at: Utc::now(),
        })
        .await
        .unwrap();
    let envs = [
        ("QUOTE_PROVIDERS", "yahoo,finnhub,alphavantage,stooq".to_string()),
        ("FINNHUB_API_KEY", "finnhub-key".to_string()),
        ("ALPHAVANTAGE_API_KEY", "av-key".to_string()),
        ("YAHOO_BASE_URL", providers.base_url.clone()),
        ("FINNHUB_BASE_URL", providers.url("/api/v1")),
        ("ALPHAVANTAGE_BASE_URL", providers.base_url.clone()),
        ("STOOQ_BASE_URL", providers.base_url.clone()),
    ];

    let (code, output) = ingest(&database, &envs, &["--quotes"]).await;
    assert_eq!(code, Some(1), "ZZZZ cannot be quoted: {output}");
    assert!(output.contains("quotes: 3 stored, 1 failed"), "{output}");
    assert!(output.contains("NOK: from yahoo"), "{output}");
    assert!(output.contains("VOD.L: from alphavantage"), "{output}");
    assert!(output.contains("XIACF: from stooq"), "{output}");
    assert!(output.contains("ZZZZ: yahoo: rate limited"), "yahoo rests after its 429: {output}");
    assert!(output.contains("finnhub: unknown symbol"), "{output}");
    assert!(!output.contains("finnhub-key") && !output.contains("av-key"), "keys never printed: {output}");
    assert_eq!(providers.requests_to("/api/v1/quote")[0].header("X-Finnhub-Token"), Some("finnhub-key"));

    let quotes = store.latest_quotes(&["NOK".to_string(), "XIACF".to_string()]).await.unwrap();
    assert_eq!((quotes[0].price, quotes[0].previous_close, quotes[0].source.as_str()), (5.83, 5.78, "yahoo"));
    assert_eq!((quotes[1].price, quotes[1].previous_close, quotes[1].source.as_str()), (6.97, 5.78, "stooq"));
}

#[tokio::test]
async fn a_pushed_story_is_stored_with_its_tickers_and_pushing_it_again_updates_it() {
    let app = spawn_app_with(&[]).await;
    let story = json!({
        "guid": "cms-42",
        "title": "Nokia (NYSE:NOK) <script>alert(1)</script>wins",
        "url": "https://news.example/nokia",
        "published_at": "2026-11-20T12:00:00Z",
        "author": "Jane",
        "html": "<p>Also $AAPL, worth $1 billion &amp; more (CEO) (2026).</p>",
        "tickers": ["RY.TO"],
    });
    let response = app.push_story(&story).await;
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["outcome"], "inserted");
    assert_eq!(body["story"]["tickers"], json!(["RY.TO", "NOK", "AAPL"]));
    assert_eq!(body["story"]["title"], "Nokia (NYSE:NOK) wins");
    assert_eq!(body["story"]["summary"], "Also $AAPL, worth $1 billion & more (CEO) (2026).");

    let response = app.push_story(&story).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["outcome"], "unchanged");
    let mut edited = story.clone();
    edited["title"] = json!("Nokia (NYSE:NOK) wins big");
    let response = app.push_story(&edited).await;
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["outcome"], "updated");

    let listed: serde_json::Value = app.get("/api/stories").await.json().await.unwrap();
    assert_eq!(listed["stories"].as_array().unwrap().len(), 1);
    assert_eq!(listed["stories"][0]["title"], "Nokia (NYSE:NOK) wins big");
}

#[tokio::test]
async fn a_story_push_is_refused_without_the_token_or_with_bad_fields() {
    let app = spawn_app_with(&[]).await;
    let good = json!({"title": "T", "url": "https://news.example/t", "published_at": "2026-11-20T12:00:00Z"});
    assert_eq!(app.post_admin_json("/admin/api/stories", &good, None).await.status(), 401);
    assert_eq!(app.post_admin_json("/admin/api/stories", &good, Some("wrong-token-0123456789")).await.status(), 401);
    for (field, value, expected_field) in [
        ("url", json!("javascript:alert(1)"), "url"),
        ("title", json!("<p> </p>"), "title"),
        ("tickers", json!(["NOK", "not a ticker"]), "tickers"),
    ] {
        let mut bad = good.clone();
        bad[field] = value;
        let response = app.push_story(&bad).await;
        assert_eq!(response.status(), 422, "{field}");
        assert_eq!(response.json::<serde_json::Value>().await.unwrap()["field"], expected_field);
    }
    for bad in [json!({"title": "T"}), json!({"title": "T", "url": "https://x.example", "published_at": "yesterday"})] {
        assert_eq!(app.push_story(&bad).await.status(), 400);
    }
}

#[tokio::test]
async fn a_hidden_story_stays_out_of_the_public_list_and_digests_until_shown_again() {
    let app = spawn_app_with(&[("DIGEST_STORY_SETTLE_SECONDS", "0")]).await;
    app.sign_up_and_confirm("reader@example.com").await;
    let published_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let story =
        json!({"title": "Nokia (NYSE:NOK) wins", "url": "https://news.example/n", "published_at": published_at});
    let pushed: serde_json::Value = app.push_story(&story).await.json().await.unwrap();
    let id = pushed["story"]["id"].as_str().unwrap().to_string();
    let readers_due = || async {
        let preview = app.create_edition(&json!({"dry_run": true}), None).await;
        preview.json::<serde_json::Value>().await.unwrap()["recipients"].as_i64().unwrap()
    };
    assert_eq!(readers_due().await, 1);

    let hide = app.post_story_action(&id, "hide").await;
    assert_eq!(hide.status(), 200);
    let public: serde_json::Value = app.get("/api/stories").await.json().await.unwrap();
    assert_eq!(public["stories"], json!([]));
    let listed: serde_json::Value = app.admin_get_json("/admin/api/stories").await;
    assert_eq!(listed["stories"][0]["hidden"], true);
    assert_eq!(readers_due().await, 0, "a hidden story makes no digest");

    let show = app.post_story_action(&id, "show").await;
    assert_eq!(show.status(), 200);
    assert_eq!(readers_due().await, 1);
    let missing = uuid::Uuid::new_v4();
    let response = app.post_story_action(missing, "hide").await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_providers_error_text_cannot_forge_lines_or_drive_the_terminal() {
    let providers = ReplayServer::start().await;
    let hostile = r#"{"chart":{"result":null,"error":{"code":"Bad Request","description":"gone\u001b[2J\nquotes: 99 stored, 0 failed"}}}"#;
    providers.route("/v8/finance/chart/NOK", Recorded::new(200, "application/json", hostile));
    let database = fresh_database_url().await;
    let store = store_at(&database).await;
    let story = NewStory {
        guid: "g1".into(),
        source: "api".into(),
        title: "Nokia".into(),
        url: "https://news.example/nokia".into(),
        author: None,
        summary: String::new(),
        tickers: vec!["NOK".into()],
        published_at: Utc::now(),
    };
    store.upsert_story(&story).await.unwrap();
    let envs = [("QUOTE_PROVIDERS", "yahoo".to_string()), ("YAHOO_BASE_URL", providers.base_url.clone())];
    let (_, output) = ingest(&database, &envs, &["--quotes"]).await;
    assert!(output.contains("gone"), "{output}");
    assert!(!output.contains('\u{1b}'), "a terminal escape got through: {output:?}");
    assert!(!output.lines().any(|line| line.starts_with("quotes: 99")), "a forged line: {output}");
}
