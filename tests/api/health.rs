use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn health_answers_200_while_the_process_runs() {
    let app = spawn_app().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn ready_answers_200_when_the_database_is_reachable() {
    let app = spawn_app().await;
    let response = app.get("/ready").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn ready_answers_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.store.close().await;
    let response = app.get("/ready").await;
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/", "/health", "/no-such-page", "/confirm/nonsense", "/unsubscribe/x.y"] {
        let response = app.get(path).await;
        let headers = response.headers();
        for name in ["content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options"] {
            assert!(headers.contains_key(name), "{path} lacks {name}");
        }
        assert_eq!(headers["referrer-policy"], "no-referrer");
    }
}

#[tokio::test]
async fn strict_transport_security_is_sent_when_the_base_url_is_https_and_not_otherwise() {
    let paths = ["/", "/health", "/no-such-page", "/admin/login", "/admin/api/stats"];
    let https = spawn_app_with(&[("BASE_URL", "https://news.example")]).await;
    for path in paths {
        let response = https.get(path).await;
        let hsts = response.headers().get("strict-transport-security");
        assert_eq!(hsts.map(|v| v.to_str().unwrap()), Some("max-age=31536000"), "{path}");
    }
    let http = spawn_app_with(&[("BASE_URL", "http://news.example")]).await;
    for path in paths {
        assert!(!http.get(path).await.headers().contains_key("strict-transport-security"), "{path}");
    }
}

#[tokio::test]
async fn an_unknown_page_is_a_404_page() {
    let app = spawn_app().await;
    let response = app.get("/wp-admin").await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("Page not found"));
}

#[tokio::test]
async fn the_admin_api_refuses_requests_without_the_admin_token() {
    let app = spawn_app().await;
    assert_eq!(app.get_admin_stats(None).await.status(), 401);
    assert_eq!(app.get_admin_stats(Some("wrong-token-wrong-token")).await.status(), 401);
    let response = app.get_admin_stats(Some(crate::helpers::TEST_ADMIN_TOKEN)).await;
    assert_eq!(response.status(), 200);
}
