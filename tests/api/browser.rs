//! The sign-up form in a real browser: headless Chromium driven over
//! WebDriver. Needs `CHROMEDRIVER` (the path of a chromedriver binary);
//! `.ci/run` installs Debian's chromium and chromium-driver and runs it with
//! `cargo test --test api browser -- --ignored`.

use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;
use tokio::process::Command;

use tickermail::domain::SubscriberEmail;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TEST_ADMIN_EMAIL, TEST_ADMIN_PASSWORD, spawn_app};

async fn start_chromedriver() -> (tokio::process::Child, u16) {
    let driver = std::env::var("CHROMEDRIVER").expect("CHROMEDRIVER must name the chromedriver binary");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {driver}: {e}"));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return (child, port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start listening on port {port}");
}

async fn open_browser(chromedriver_port: u16) -> fantoccini::Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=390,844"
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{chromedriver_port}"))
        .await
        .expect("connect to chromedriver")
}

/// Waits for the page after a click: the old page's `h1` may still be there
/// for a moment after the click returns.
async fn wait_for_heading(browser: &fantoccini::Client, expected: &str) {
    let mut heading = String::new();
    for _ in 0..100 {
        if let Ok(element) = browser.find(Locator::Css("h1")).await {
            heading = element.text().await.unwrap_or_default();
            if heading == expected {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page's heading is {heading:?}, not {expected:?}");
}

/// Serves one page, as another site would, on its own port (another origin).
async fn serve_other_site(page: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = vec![0u8; 4096];
            let _ = stream.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    address
}

#[tokio::test]
#[ignore = "needs CHROMEDRIVER; run by .ci/run"]
async fn a_reader_fills_in_the_signup_form_in_a_browser_and_sees_the_thank_you_page() {
    let app = spawn_app().await;
    let (_driver, port) = start_chromedriver().await;
    let browser = open_browser(port).await;

    browser.goto(&format!("{}/", app.address)).await.unwrap();
    browser.find(Locator::Css("#email")).await.unwrap().send_keys("browser@example.com").await.unwrap();
    browser.find(Locator::Css("#name")).await.unwrap().send_keys("Bea").await.unwrap();
    browser.find(Locator::Css("#tickers")).await.unwrap().send_keys("NOK, AAPL").await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_for_heading(&browser, "Check your inbox").await;
    assert!(browser.current_url().await.unwrap().as_str().ends_with("/subscriptions"));

    let confirmation = app.smtp.wait_for_mail_to("browser@example.com").await;
    let token = app.token_from(&confirmation, "confirm");
    browser.goto(&format!("{}/confirm/{token}", app.address)).await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_for_heading(&browser, "You are subscribed").await;
    browser.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs CHROMEDRIVER; run by .ci/run"]
async fn the_form_embedded_on_another_site_posts_across_origins_and_lands_on_the_thank_you_page() {
    let app = spawn_app().await;
    let embed = format!(
        r#"<!DOCTYPE html><html><body><h1>Our blog</h1>
        <form method="post" action="{}/subscriptions">
          <input id="email" name="email" type="email">
          <input name="website" type="text" tabindex="-1" style="position:absolute;left:-10000px">
          <button type="submit">Sign up</button>
        </form></body></html>"#,
        app.address
    );
    let other_site = serve_other_site(embed).await;
    let (_driver, port) = start_chromedriver().await;
    let browser = open_browser(port).await;

    browser.goto(&format!("{other_site}/")).await.unwrap();
    browser.find(Locator::Css("#email")).await.unwrap().send_keys("embedded@example.com").await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    browser.wait().for_url(&url::Url::parse(&format!("{}/subscriptions", app.address)).unwrap()).await.unwrap();
    let heading = browser.find(Locator::Css("h1")).await.unwrap().text().await.unwrap();
    assert_eq!(heading, "Check your inbox");
    app.smtp.wait_for_mail_to("embedded@example.com").await;
    let reader = app.store.subscriber_by_email(&SubscriberEmail::parse("embedded@example.com").unwrap()).await.unwrap();
    let consents = app.store.consents(reader.unwrap().id).await.unwrap();
    assert_eq!(consents[0].source, format!("embedded form at {other_site}"));
    browser.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs CHROMEDRIVER; run by .ci/run"]
async fn an_admin_logs_in_previews_the_digest_and_sends_a_test_copy_in_a_browser() {
    let app = spawn_app().await;
    app.with_a_story_and_quotes().await;
    let (_driver, port) = start_chromedriver().await;
    let browser = open_browser(port).await;

    browser.goto(&format!("{}/admin/test-send", app.address)).await.unwrap();
    wait_for_heading(&browser, "Admin login").await;
    browser.find(Locator::Css("#email")).await.unwrap().send_keys(TEST_ADMIN_EMAIL).await.unwrap();
    browser.find(Locator::Css("#password")).await.unwrap().send_keys(TEST_ADMIN_PASSWORD).await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_for_heading(&browser, "Test send").await;

    browser.find(Locator::Css("#to")).await.unwrap().send_keys("me@admin.example").await.unwrap();
    browser.find(Locator::Css("main button[type=submit]")).await.unwrap().click().await.unwrap();
    let outcome = browser.wait().for_element(Locator::Css("#outcome")).await.unwrap().text().await.unwrap();
    assert!(outcome.starts_with("Accepted by the mail server"), "{outcome}");
    let mail = app.smtp.wait_for_mail_to("me@admin.example").await;
    assert!(mail.header("Subject").unwrap().starts_with("[TEST] Stock News digest"));

    browser.goto(&format!("{}/admin/preview", app.address)).await.unwrap();
    wait_for_heading(&browser, "Preview").await;
    let text_part = browser.find(Locator::Css("#text-part")).await.unwrap().text().await.unwrap();
    assert!(text_part.contains("Nokia (NYSE:NOK) wins a deal"), "{text_part}");
    browser.enter_frame(0).await.unwrap();
    let html_part = browser.wait().for_element(Locator::Css("body")).await.unwrap().text().await.unwrap();
    assert!(html_part.contains("Nokia (NYSE:NOK) wins a deal"), "the framed HTML part shows: {html_part}");
    browser.close().await.unwrap();
}
