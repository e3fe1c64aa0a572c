//! Numbers that cannot be true: prices from providers and pushes must be
//! plausible, a move beyond the sanity bound is kept as suspect and never
//! alerted or mailed, and prices in pence or cents are kept in pounds or rand.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use tickermail::domain::NewStory;
use tickermail::store::Store;

use crate::digest::now_rfc3339;
use crate::helpers::{fresh_database_url, spawn_app, spawn_app_with};
use crate::replay::{Recorded, ReplayServer};
use crate::sources::{ingest, store_at};

/// A database with a recent story mentioning `tickers`, so `tickermail ingest` quotes them.
async fn database_quoting(tickers: &[&str]) -> (String, Store) {
    let database = fresh_database_url().await;
    let store = store_at(&database).await;
    store
        .upsert_story(&NewStory {
            guid: "movers".into(),
            source: "api".into(),
            title: "Movers".into(),
            url: "https://news.example/movers".into(),
            author: None,
            summary: String::new(),
            tickers: tickers.iter().map(|t| t.to_string()).collect(),
            published_at: Utc::now(),
        })
        .await
        .unwrap();
    (database, store)
}

fn yahoo_at(providers: &ReplayServer) -> [(&'static str, String); 2] {
    [("QUOTE_PROVIDERS", "yahoo".to_string()), ("YAHOO_BASE_URL", providers.base_url.clone())]
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

#[tokio::test]
async fn a_pushed_price_that_cannot_be_true_is_refused_naming_its_field_and_index() {
    let app = spawn_app().await;
    let good = json!({"symbol": "NOK", "price": 5.83, "previous_close": 5.78, "as_of": now_rfc3339()});
    for field in ["price", "previous_close"] {
        for value in [
            json!(1e308),
            json!(5e-324),
            json!(0),
            json!(-5.83),
            json!("NaN"),
            json!("inf"),
            json!("-Infinity"),
            json!("5.83"),
            json!(null),
        ] {
            let mut bad = good.clone();
            bad[field] = value.clone();
            let response = app.push_quotes(&json!([good, bad])).await;
            assert_eq!(response.status(), 422, "{field} = {value}");
            let body: Value = response.json().await.unwrap();
            assert_eq!((body["field"].as_str(), body["index"].as_u64()), (Some(field), Some(1)), "{body}");
            assert!(body["error"].as_str().unwrap().contains(field), "{body}");
        }
    }
    let listed: Value = app.get("/api/quotes?symbols=NOK").await.json().await.unwrap();
    assert_eq!(listed["unknown"], json!(["NOK"]), "nothing of a refused push is saved");
}

#[tokio::test]
async fn a_yahoo_price_that_cannot_be_true_is_refused_by_ingest_and_nothing_is_stored() {
    for price in ["1.8e308", "1.7e308", "5e-324"] {
        let providers = ReplayServer::start().await;
        let chart = fixture_text("yahoo_chart_NOK_5d.json")
            .replace("\"regularMarketPrice\":5.83", &format!("\"regularMarketPrice\":{price}"));
        providers.route("/v8/finance/chart/NOK", Recorded::new(200, "application/json", chart));
        let (database, store) = database_quoting(&["NOK"]).await;

        let (code, output) = ingest(&database, &yahoo_at(&providers), &["--quotes"]).await;
        assert_eq!(code, Some(1), "{price}: {output}");
        assert!(output.contains("NOK: yahoo: malformed response"), "{price}: {output}");
        assert!(store.latest_quotes(&["NOK".to_string()]).await.unwrap().is_empty(), "{price}");
    }
}

#[tokio::test]
async fn a_move_beyond_the_sanity_bound_is_kept_as_suspect_and_never_alerted_nor_mailed_and_the_admin_sees_it() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("reader@example.com").await;
    let response = app
        .push_quotes(&json!([
            {"symbol": "NOK", "price": 5.83, "previous_close": 1.2, "as_of": now_rfc3339()},
            {"symbol": "MSFT", "price": 40.0, "previous_close": 400.0, "as_of": now_rfc3339()},
            {"symbol": "AAPL", "price": 250.0, "previous_close": 200.0, "as_of": now_rfc3339()},
        ]))
        .await;
    assert_eq!(response.status(), 200);
    let saved: Value = response.json().await.unwrap();
    let suspect: Vec<bool> = saved["quotes"].as_array().unwrap().iter().map(|q| q["suspect"] == true).collect();
    assert_eq!(suspect, [true, true, false], "+386% and -90% are past the default bound of 300%: {saved}");

    let public: Value = app.get("/api/quotes?symbols=NOK").await.json().await.unwrap();
    assert_eq!(
        (public["quotes"][0]["suspect"].clone(), public["quotes"][0]["change"].clone()),
        (json!(true), Value::Null)
    );

    let output = app.run_command(&["alerts", "--dry-run"]).await;
    assert!(output.contains("dry run: 1 alerts due, from 1 fresh quotes"), "only AAPL may alert: {output}");

    app.with_a_story("Nokia (NYSE:NOK) and Microsoft (NASDAQ:MSFT) soar", "https://news.example/soar", &now_rfc3339())
        .await;
    let output = app.run_command(&["digest"]).await;
    assert!(output.contains("1 recipients, 1 sent"), "{output}");
    let digest = app.smtp.wait_for_mails_to("reader@example.com", 3, Duration::from_secs(10)).await.pop().unwrap();
    let text = digest.text();
    assert!(text.contains("AAPL *"), "{text}");
    assert!(!text.contains("NOK *") && !text.contains("MSFT ") && !text.contains("385"), "{text}");

    let admin = app.log_in_as_admin().await;
    for page in ["/admin", "/admin/stories"] {
        let html = admin.get_text(page).await;
        let nok_row = html.split("<tr>").find(|row| row.contains("<td>NOK</td>")).expect("NOK is listed");
        assert!(nok_row.contains("suspect"), "{page}: {nok_row}");
        let aapl_row = html.split("<tr>").find(|row| row.contains("<td>AAPL</td>")).expect("AAPL is listed");
        assert!(!aapl_row.contains("suspect"), "{page}: {aapl_row}");
    }

    let lenient = spawn_app_with(&[("QUOTE_MAX_MOVE_PERCENT", "1000")]).await;
    let saved: Value = lenient
        .push_quotes(&json!({"symbol": "NOK", "price": 5.83, "previous_close": 1.2, "as_of": now_rfc3339()}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(saved["quotes"][0]["suspect"], false, "the bound is QUOTE_MAX_MOVE_PERCENT: {saved}");
}

#[tokio::test]
async fn a_pushed_quote_in_pence_is_stored_and_mailed_in_pounds() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("reader@example.com").await;
    let response = app
        .push_quotes(&json!([
            {"symbol": "VOD.L", "price": 68.12, "previous_close": 67.54, "currency": "GBp", "as_of": now_rfc3339()},
            {"symbol": "BARC.L", "price": 250.5, "previous_close": 245.0, "currency": "GBX", "as_of": now_rfc3339()},
            {"symbol": "AZN.L", "price": 120.5, "previous_close": 118.0, "currency": "GBP", "as_of": now_rfc3339()},
        ]))
        .await;
    assert_eq!(response.status(), 200);

    let listed: Value = app.get("/api/quotes?symbols=VOD.L,BARC.L,AZN.L").await.json().await.unwrap();
    let quote =
        |symbol: &str| listed["quotes"].as_array().unwrap().iter().find(|q| q["symbol"] == symbol).unwrap().clone();
    let vodafone = quote("VOD.L");
    assert_eq!((vodafone["price"].clone(), vodafone["previous_close"].clone()), (json!(0.6812), json!(0.6754)));
    assert_eq!(vodafone["currency"], "GBP");
    assert_eq!((quote("BARC.L")["price"].clone(), quote("BARC.L")["currency"].clone()), (json!(2.505), json!("GBP")));
    assert_eq!(quote("AZN.L")["price"], json!(120.5), "GBP is pounds already");

    app.with_a_story("Vodafone (LON:VOD) slips", "https://news.example/vod", &now_rfc3339()).await;
    app.run_command(&["digest"]).await;
    let digest = app.smtp.wait_for_mails_to("reader@example.com", 3, Duration::from_secs(10)).await.pop().unwrap();
    let text = digest.text();
    assert!(text.contains("0.68 GBP"), "{text}");
    assert!(!text.contains("68.12"), "{text}");
}

#[tokio::test]
async fn a_yahoo_quote_in_pence_is_stored_in_pounds() {
    let providers = ReplayServer::start().await;
    providers
        .route("/v8/finance/chart/VOD.L", Recorded::fixture(200, "application/json", "yahoo_chart_VOD.L_GBp_5d.json"));
    let (database, store) = database_quoting(&["VOD.L"]).await;

    let (code, output) = ingest(&database, &yahoo_at(&providers), &["--quotes"]).await;
    assert_eq!(code, Some(0), "{output}");
    let quote = store.latest_quotes(&["VOD.L".to_string()]).await.unwrap().remove(0);
    assert_eq!((quote.price, quote.previous_close, quote.currency.as_deref()), (0.6812, 0.6754, Some("GBP")));
}
