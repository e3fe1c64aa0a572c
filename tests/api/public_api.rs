use serde_json::json;

use crate::helpers::{TEST_ADMIN_TOKEN, spawn_app};

#[tokio::test]
async fn pushed_quotes_are_served_with_the_change_computed_from_the_previous_close() {
    let app = spawn_app().await;
    let response = app
        .push_quotes(&json!([
            {"symbol": "NOK", "price": 5.5, "previous_close": 5.0, "as_of": "2026-11-20T21:00:00Z", "currency": "usd"},
            {"symbol": "aapl", "price": 190.0, "previous_close": 200.0, "as_of": "2026-11-20T21:00:00Z"},
        ]))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["saved"], 2);

    let response = app.get("/api/quotes?symbols=NOK,AAPL,ZZZZ,%3Cx%3E").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(response.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    let body: serde_json::Value = response.json().await.unwrap();
    let quotes = body["quotes"].as_array().unwrap();
    assert_eq!(quotes.len(), 2);
    let nok = quotes.iter().find(|q| q["symbol"] == "NOK").unwrap();
    assert_eq!(nok["currency"], "USD");
    assert!((nok["change"].as_f64().unwrap() - 0.5).abs() < 1e-9);
    assert!((nok["change_percent"].as_f64().unwrap() - 10.0).abs() < 1e-9);
    let aapl = quotes.iter().find(|q| q["symbol"] == "AAPL").unwrap();
    assert!((aapl["change_percent"].as_f64().unwrap() + 5.0).abs() < 1e-9);
    assert_eq!(body["unknown"], json!(["ZZZZ"]));
    assert_eq!(body["invalid"], json!(["<x>"]));
}

#[tokio::test]
async fn an_older_quote_does_not_replace_a_newer_one() {
    let app = spawn_app().await;
    app.push_quotes(&json!({"symbol": "NOK", "price": 6.0, "previous_close": 5.0, "as_of": "2026-11-20T21:00:00Z"}))
        .await;
    app.push_quotes(&json!({"symbol": "NOK", "price": 4.0, "previous_close": 5.0, "as_of": "2026-11-19T21:00:00Z"}))
        .await;
    let body: serde_json::Value = app.get("/api/quotes?symbols=NOK").await.json().await.unwrap();
    assert_eq!(body["quotes"][0]["price"], 6.0);
}

#[tokio::test]
async fn bad_quotes_are_refused_with_422_naming_the_field_and_none_is_saved() {
    let app = spawn_app().await;
    let good = json!({"symbol": "MSFT", "price": 1.0, "previous_close": 1.0, "as_of": "2026-11-20T21:00:00Z"});
    for (bad, field) in [
        (json!({"symbol": "<b>", "price": 1.0, "previous_close": 1.0, "as_of": "2026-11-20T21:00:00Z"}), "symbol"),
        (json!({"symbol": "NOK", "price": -1.0, "previous_close": 1.0, "as_of": "2026-11-20T21:00:00Z"}), "price"),
        (
            json!({"symbol": "NOK", "price": 1.0, "previous_close": 0.0, "as_of": "2026-11-20T21:00:00Z"}),
            "previous_close",
        ),
        (json!({"symbol": "NOK", "price": 1.0, "previous_close": 1.0, "as_of": "2099-01-01T00:00:00Z"}), "as_of"),
        (
            json!({"symbol": "NOK", "price": 1.0, "previous_close": 1.0, "as_of": "2026-11-20T21:00:00Z", "currency": "dollars"}),
            "currency",
        ),
    ] {
        let response = app.push_quotes(&json!([good, bad])).await;
        assert_eq!(response.status(), 422, "{bad}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["field"], field);
        assert_eq!(error["index"], 1);
    }
    let body: serde_json::Value = app.get("/api/quotes?symbols=MSFT").await.json().await.unwrap();
    assert_eq!(body["unknown"], json!(["MSFT"]), "nothing of a refused push is saved");
}

#[tokio::test]
async fn malformed_admin_json_gets_400_and_no_token_gets_401() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/admin/api/quotes", app.address))
        .bearer_auth(TEST_ADMIN_TOKEN)
        .header("Content-Type", "application/json")
        .body("{\"symbol\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.json::<serde_json::Value>().await.unwrap()["error"].as_str().unwrap().contains("JSON"));
    let response = app.post_admin_json("/admin/api/quotes", &json!({"symbol": "NOK"}), None).await;
    assert_eq!(response.status(), 401);
    let response =
        app.post_admin_json("/admin/api/quotes", &json!({"symbol": "NOK"}), Some("not-the-token-at-all")).await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn the_quotes_api_needs_symbols_and_caps_them() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/quotes").await.status(), 400);
    assert_eq!(app.get("/api/quotes?symbols=").await.status(), 400);
    let many: Vec<String> = (0..51).map(|i| format!("T{i}")).collect();
    assert_eq!(app.get(&format!("/api/quotes?symbols={}", many.join(","))).await.status(), 400);
}

#[tokio::test]
async fn the_stories_api_answers_with_a_list_and_validates_the_limit() {
    let app = spawn_app().await;
    let response = app.get("/api/stories").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_eq!(response.json::<serde_json::Value>().await.unwrap(), json!({"stories": []}));
    for bad in ["0", "51", "ten", "-1"] {
        assert_eq!(app.get(&format!("/api/stories?limit={bad}")).await.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn the_public_api_rounds_the_change_to_the_precision_of_the_price() {
    let app = spawn_app().await;
    app.push_quotes(&json!([
        {"symbol": "NOK", "price": 5.83, "previous_close": 5.49, "as_of": "2026-11-20T21:00:00Z"},
        {"symbol": "XIACF", "price": 0.6812, "previous_close": 0.6754, "as_of": "2026-11-20T21:00:00Z"},
        {"symbol": "PENNY", "price": 0.123456, "previous_close": 0.1, "as_of": "2026-11-20T21:00:00Z"},
    ]))
    .await;
    let listed: serde_json::Value = app.get("/api/quotes?symbols=NOK,XIACF,PENNY").await.json().await.unwrap();
    let quote =
        |symbol: &str| listed["quotes"].as_array().unwrap().iter().find(|q| q["symbol"] == symbol).unwrap().clone();
    assert_eq!((quote("NOK")["change"].clone(), quote("NOK")["change_percent"].clone()), (json!(0.34), json!(6.19)));
    assert_eq!(
        (quote("XIACF")["change"].clone(), quote("XIACF")["change_percent"].clone()),
        (json!(0.0058), json!(0.86))
    );
    assert_eq!(quote("PENNY")["change"], json!(0.0235), "at most four decimals");
}
