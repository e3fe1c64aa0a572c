//! The admin pages: login, sessions, CSRF, and what an admin does there.

use std::time::Duration;

use serde_json::Value;

use crate::cli::tickermail;
use crate::helpers::{
    AdminPages, TEST_ADMIN_EMAIL, TEST_ADMIN_PASSWORD, TestApp, cookie_set_by, set_cookie_header, spawn_app,
    spawn_app_with,
};

/// Every `/admin…` route the application declares, read from its source, so
/// a route added later is checked too: (method, path with sample values).
/// Under `src/web/admin/` routes are declared within the `/admin` scope.
fn declared_admin_routes() -> Vec<(String, String)> {
    let attribute = regex::Regex::new(r#"#\[(get|post|delete|put|patch)\("([^"]*)"\)\]"#).unwrap();
    let placeholder = regex::Regex::new(r"\{(\w+)(?::([\w|]+))?\}").unwrap();
    let web = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src/web"));
    let mut routes = Vec::new();
    let mut folders = vec![web.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let scope = if path.starts_with(web.join("admin")) { "/admin" } else { "" };
            let source = std::fs::read_to_string(&path).unwrap();
            for found in attribute.captures_iter(&source) {
                let declared = format!("{scope}{}", &found[2]);
                if !declared.starts_with("/admin") {
                    continue;
                }
                let sample = placeholder.replace_all(&declared, |p: &regex::Captures| match p.get(2) {
                    Some(choices) => choices.as_str().split('|').next().unwrap().to_string(),
                    None if &p[1] == "action" => "pause".to_string(),
                    None => uuid::Uuid::new_v4().to_string(),
                });
                routes.push((found[1].to_uppercase(), sample.into_owned()));
            }
        }
    }
    routes
}

#[tokio::test]
async fn every_admin_route_refuses_a_visitor_without_credentials() {
    let app = spawn_app().await;
    let routes = declared_admin_routes();
    assert!(routes.len() >= 40, "the route scan found only {routes:?}");
    for known in ["/admin", "/admin/api/test-send", "/admin/subscribers/import", "/admin/preview/html"] {
        assert!(routes.iter().any(|(_, path)| path == known), "{known} is not among {routes:?}");
    }
    for (method, path) in routes.iter().filter(|(_, path)| path != "/admin/login") {
        let response = app
            .client
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", app.address))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("csrf=x")
            .send()
            .await
            .unwrap();
        if path.starts_with("/admin/api/") {
            assert_eq!(response.status(), 401, "{method} {path}");
        } else {
            assert_eq!(response.status(), 303, "{method} {path}");
            let location = response.headers()["location"].to_str().unwrap();
            assert!(location.starts_with("/admin/login"), "{method} {path} → {location}");
        }
    }
    // The scope itself is guarded, not each route: a path it does not know is refused too.
    assert_eq!(app.get("/admin/api/no-such-route").await.status(), 401);
    assert_eq!(app.get("/admin/no-such-page").await.status(), 303);
}

#[tokio::test]
async fn the_right_password_opens_a_session_in_a_strict_http_only_cookie() {
    let app = spawn_app().await;
    let response = app.post_admin_login(TEST_ADMIN_EMAIL, TEST_ADMIN_PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/admin");
    let set_cookie = set_cookie_header(&response, "tickermail_admin").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=43200"] {
        assert!(set_cookie.contains(attribute), "{attribute} missing: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http cannot carry a Secure cookie: {set_cookie}");
    let session = cookie_set_by(&response, "tickermail_admin").unwrap();
    let dashboard = app.admin_session(session).get("/admin").await;
    assert_eq!(dashboard.status(), 200);
    assert!(dashboard.text().await.unwrap().contains("<h1>Dashboard</h1>"));
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_the_site_is_on_https() {
    let app = spawn_app_with(&[("BASE_URL", "https://news.example")]).await;
    let response = app.post_admin_login(TEST_ADMIN_EMAIL, TEST_ADMIN_PASSWORD).await;
    let set_cookie = set_cookie_header(&response, "tickermail_admin").unwrap();
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    let mut answers = Vec::new();
    for (email, password) in
        [(TEST_ADMIN_EMAIL, "wrong-password-123"), ("nobody@stocknews.example", TEST_ADMIN_PASSWORD)]
    {
        let response = app.post_admin_login(email, password).await;
        assert_eq!(response.status(), 401);
        assert!(cookie_set_by(&response, "tickermail_admin").is_none());
        let page = response.text().await.unwrap();
        assert!(page.contains("Wrong email or password."));
        answers.push(page.replace(email, ""));
    }
    assert_eq!(
        answers[0].replace(&crate::helpers::csrf_in(&answers[0]), ""),
        answers[1].replace(&crate::helpers::csrf_in(&answers[1]), "")
    );
}

#[tokio::test]
async fn login_attempts_beyond_the_limit_are_refused_for_a_while() {
    let app = spawn_app_with(&[("ADMIN_LOGIN_ATTEMPTS_PER_MINUTE", "2")]).await;
    for _ in 0..2 {
        assert_eq!(app.post_admin_login(TEST_ADMIN_EMAIL, "wrong-password-123").await.status(), 401);
    }
    let limited = app.post_admin_login(TEST_ADMIN_EMAIL, TEST_ADMIN_PASSWORD).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert!(cookie_set_by(&limited, "tickermail_admin").is_none(), "not even the right password gets in");
}

#[tokio::test]
async fn a_login_without_the_login_forms_token_is_refused() {
    let app = spawn_app().await;
    let body = format!("email={TEST_ADMIN_EMAIL}&password={TEST_ADMIN_PASSWORD}&csrf=00");
    let response = app.post_form("/admin/login", &body).await;
    assert_eq!(response.status(), 403);
    assert!(cookie_set_by(&response, "tickermail_admin").is_none());
}

#[tokio::test]
async fn a_tampered_or_foreign_session_cookie_is_sent_to_the_login_page() {
    let app = spawn_app().await;
    let admin = app.log_in_as_admin().await;
    let other = spawn_app_with(&[("SECRET_KEY", "another-secret-key-0123456789abcdef0123")]).await;
    let foreign = other.admin_session(admin.cookie.clone()).get("/admin").await;
    assert_eq!(foreign.status(), 303);
    let (name, value) = admin.cookie.split_once('=').unwrap();
    let (expires, signature) = value.split_once('.').unwrap();
    let later: i64 = expires.parse::<i64>().unwrap() + 86_400;
    let tampered = app.admin_session(format!("{name}={later}.{signature}"));
    assert_eq!(tampered.get("/admin").await.status(), 303);
}

#[tokio::test]
async fn every_admin_form_without_its_csrf_token_is_refused() {
    let app = spawn_app().await;
    let admin = app.log_in_as_admin().await;
    let (_, login_forms_token) = app.admin_login_form().await;
    let forms = declared_admin_routes()
        .into_iter()
        .filter(|(method, path)| method == "POST" && !path.starts_with("/admin/api/") && path != "/admin/login")
        .collect::<Vec<_>>();
    assert!(forms.len() >= 10, "{forms:?}");
    for (_, path) in &forms {
        for body in [String::new(), "csrf=".into(), format!("csrf={login_forms_token}")] {
            let response = admin.post_raw(path, &body).await;
            assert_eq!(response.status(), 403, "POST {path} with {body:?}");
        }
    }
    let logged_out = admin.post_raw("/admin/logout", "").await;
    assert_eq!(logged_out.status(), 403, "even logging out needs the token");
    assert_eq!(admin.get("/admin").await.status(), 200);
}

#[tokio::test]
async fn logging_out_forgets_the_session_cookie() {
    let app = spawn_app().await;
    let admin = app.log_in_as_admin().await;
    let response = admin.post_logout().await;
    assert_eq!(response.status(), 303);
    let removal = set_cookie_header(&response, "tickermail_admin").unwrap();
    assert!(removal.starts_with("tickermail_admin=;") && removal.contains("Max-Age=0"), "{removal}");
}

#[tokio::test]
async fn without_admin_credentials_configured_the_login_page_says_how_to_set_them() {
    let app = spawn_app_with(&[("ADMIN_EMAIL", ""), ("ADMIN_PASSWORD_HASH", "")]).await;
    let response = app.get("/admin/login").await;
    assert_eq!(response.status(), 503);
    assert!(response.text().await.unwrap().contains("tickermail admin hash-password"));
    assert_eq!(app.get("/admin").await.status(), 303);
}

#[tokio::test]
async fn the_hash_password_command_makes_a_hash_the_login_accepts() {
    let mut command = tickermail();
    command.args(["admin", "hash-password"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    tokio::io::AsyncWriteExt::write_all(child.stdin.as_mut().unwrap(), b"a fresh password 456\n").await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(output.status.success());
    let hash = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let app = spawn_app_with(&[("ADMIN_PASSWORD_HASH", &hash)]).await;
    assert_eq!(app.post_admin_login(TEST_ADMIN_EMAIL, "a fresh password 456").await.status(), 303);
    assert_eq!(app.post_admin_login(TEST_ADMIN_EMAIL, TEST_ADMIN_PASSWORD).await.status(), 401);

    let mut short = tickermail();
    short.args(["admin", "hash-password"]).stdin(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = short.spawn().unwrap();
    tokio::io::AsyncWriteExt::write_all(child.stdin.as_mut().unwrap(), b"short\n").await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8(output.stderr).unwrap().contains("at least 12 characters"));
}

#[tokio::test]
async fn the_dashboard_shows_the_list_the_outbox_and_the_latest_data() {
    let app = spawn_app_with(&[("DIGEST_SCHEDULE", "0 0 1 1 *")]).await;
    app.with_a_story_and_quotes().await;
    app.sign_up_and_confirm("dash@example.com").await;
    let admin = app.log_in_as_admin().await;
    let page = admin.get_text("/admin").await;
    for expected in ["confirmed", "Nokia (NYSE:NOK) wins a deal", "NOK", "+10.00%", "daily digest", "price alert check"]
    {
        assert!(page.contains(expected), "{expected} is not on the dashboard");
    }
    let api: Value = app.admin_get_json("/admin/api/dashboard").await;
    assert_eq!(api["subscribers"]["confirmed"], 1);
    assert_eq!(api["days"].as_array().unwrap().len(), 30);
    assert_eq!(api["days"][29]["signups"], 1);
    assert_eq!(api["stories"][0]["title"], "Nokia (NYSE:NOK) wins a deal");
    assert_eq!(api["next_runs"][0]["job"], "daily digest");
    assert!(api["next_runs"][0]["at"].as_str().unwrap().contains("-01-01T"), "{api}");
    assert!(api["next_runs"][2]["at"].is_null(), "the alert check is off: {api}");
    assert!(page.contains("<td>price alert check</td><td>off</td>"), "{page}");
}

#[tokio::test]
async fn a_preview_shows_a_readers_next_digest_as_html_and_text() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("preview@example.com").await;
    app.with_a_story_and_quotes().await;
    let admin = app.log_in_as_admin().await;
    let page = admin.get_text("/admin/preview?kind=digest&email=preview%40example.com").await;
    assert!(page.contains("Stock News digest, "), "the subject is shown");
    assert!(page.contains("Nokia (NYSE:NOK) wins a deal"), "the text part is shown");
    assert!(page.contains("<iframe"), "the HTML part is framed");
    let frame = admin.get("/admin/preview/html?kind=digest&email=preview%40example.com").await;
    assert_eq!(frame.status(), 200);
    assert!(frame.headers()["content-security-policy"].to_str().unwrap().starts_with("sandbox"));
    assert!(frame.text().await.unwrap().contains("<html"));
    for kind in ["alert", "confirmation", "welcome"] {
        assert!(admin.get_text(&format!("/admin/preview?kind={kind}")).await.contains("id=\"subject\""), "{kind}");
    }
    let unknown = admin.get_text("/admin/preview?kind=digest&email=nobody%40example.com").await;
    assert!(unknown.contains("No reader has the address nobody@example.com."));
    let api: Value = app.admin_get_json("/admin/api/preview?kind=digest&email=preview%40example.com").await;
    assert!(api["subject"].as_str().unwrap().starts_with("Stock News digest, "));
    assert!(api["text"].as_str().unwrap().contains("Nokia"));
    assert!(api["html"].as_str().unwrap().contains("Nokia"));
}

#[tokio::test]
async fn a_preview_with_nothing_new_for_the_reader_says_so() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("quiet@example.com").await;
    let admin = app.log_in_as_admin().await;
    let page = admin.get_text("/admin/preview?kind=digest&email=quiet%40example.com").await;
    assert!(page.contains("no new stories or watchlist moves"), "{page}");
    assert_eq!(app.admin_get("/admin/api/preview?kind=memo").await.status(), 422);
}

#[tokio::test]
async fn a_test_send_from_the_page_reaches_any_address_and_shows_the_servers_answer() {
    let app = spawn_app().await;
    app.with_a_story_and_quotes().await;
    let admin = app.log_in_as_admin().await;
    let response = admin.post_test_send("me@admin.example", "digest").await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Accepted by the mail server"));
    let mail = app.smtp.wait_for_mail_to("me@admin.example").await;
    assert!(mail.header("Subject").unwrap().starts_with("[TEST] Stock News digest"));

    app.smtp.refuse_with(Some("554 5.7.1 relay denied"));
    let refused = admin.post_test_send("me@admin.example", "welcome").await;
    assert_eq!(refused.status(), 502);
    assert!(refused.text().await.unwrap().contains("relay denied"));
    let bad = admin.post_test_send("not an address", "digest").await;
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn run_now_asks_first_then_sends_and_shows_the_progress() {
    let app = spawn_app_with(&[("DIGEST_STORY_SETTLE_SECONDS", "0")]).await;
    app.sign_up_and_confirm("run@example.com").await;
    app.with_a_story_and_quotes().await;
    let admin = app.log_in_as_admin().await;
    let confirm = admin.post_editions_confirm("daily").await;
    assert_eq!(confirm.status(), 200);
    let confirm = confirm.text().await.unwrap();
    assert!(confirm.contains("It will go to <strong>1</strong> readers"), "{confirm}");
    assert!(app.store.recent_editions(5).await.unwrap().is_empty(), "nothing is made before the confirmation");
    let created = admin.post_editions("daily").await;
    assert_eq!(created.status(), 303);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    app.smtp.wait_for_mails_to("run@example.com", 3, Duration::from_secs(10)).await;
    app.wait_until_outbox_idle().await;
    let progress = admin.get_text(&location).await;
    assert!(progress.contains("<strong id=\"status\">done</strong>"), "{progress}");
    assert!(admin.get_text("/admin/editions").await.contains(&location));
    let bad = admin.post_editions_confirm("never").await;
    assert_eq!(bad.status(), 422);
}

/// Stories count for a digest as soon as they are stored, and the worker
/// sends 5 messages a second (and claims a whole edition of 30 at once, so a
/// pause must reach sends already claimed).
const SLOW_SENDS: &[(&str, &str)] = &[("DIGEST_STORY_SETTLE_SECONDS", "0"), ("SEND_RATE", "5")];

/// `count` readers p1@example.com… who confirmed an hour ago, a story for
/// them, and their edition: its id.
async fn edition_for_readers(app: &TestApp, count: u32) -> uuid::Uuid {
    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    app.store.seed_confirmed_subscribers(count, "p", "example.com", "NOK", an_hour_ago).await.unwrap();
    app.with_a_story_and_quotes().await;
    let created = app.create_edition(&serde_json::json!({}), None).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    created["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_paused_edition_sends_nothing_more_until_it_is_resumed() {
    let app = spawn_app_with(SLOW_SENDS).await;
    let id = edition_for_readers(&app, 30).await;
    assert_eq!(app.post_edition_action(id, "pause").await.status(), 200);
    assert_eq!(app.post_edition_action(id, "pause").await.status(), 409, "already paused");
    // Sends already under way finish; then nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent_by_the_pause = app.smtp.mails().len();
    assert!(sent_by_the_pause < 30, "{sent_by_the_pause}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.smtp.mails().len(), sent_by_the_pause, "a paused edition sends nothing");
    let admin = app.log_in_as_admin().await;
    assert!(admin.get_text(&format!("/admin/editions/{id}")).await.contains("<strong id=\"status\">paused</strong>"));
    let listed = app.admin_get_json("/admin/api/editions").await;
    let progress = &listed["editions"][0]["progress"];
    let waiting = progress["queued"].as_i64().unwrap() + progress["sending"].as_i64().unwrap();
    assert_eq!(waiting, 30 - sent_by_the_pause as i64, "held back, or still passing the send rate: {listed}");

    assert_eq!(admin.post_edition_action(id, "resume").await.status(), 303);
    for i in 1..=30 {
        app.smtp.wait_for_mails_to(&format!("p{i}@example.com"), 1, Duration::from_secs(20)).await;
    }
    assert_eq!(app.smtp.mails().len(), 30, "each reader got it once");
    app.wait_until_outbox_idle().await;
    for _ in 0..2 {
        let listed = app.admin_get_json("/admin/api/editions").await;
        assert_eq!(
            listed["editions"][0]["progress"]["sent"], 30,
            "listed before and after its counts were kept: {listed}"
        );
        assert_eq!(listed["editions"][0]["progress"]["queued"], 0, "{listed}");
    }
    for reader in app.store.find_subscribers("@example.com", None, "", 30).await.unwrap() {
        let record = app.store.subscriber_record(reader.id).await.unwrap().unwrap();
        let digest = record.deliveries.iter().find(|delivery| delivery.kind == "digest").unwrap();
        assert_eq!(digest.attempts, 1, "waiting for the resume used up no attempt: {digest:?}");
    }
    let missing = app.post_edition_action(uuid::Uuid::new_v4(), "pause").await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn cancelling_an_edition_suppresses_what_was_not_sent() {
    let app = spawn_app_with(SLOW_SENDS).await;
    let id = edition_for_readers(&app, 30).await;
    let admin = app.log_in_as_admin().await;
    assert_eq!(admin.post_edition_action(id, "cancel").await.status(), 303);
    app.wait_until_outbox_idle().await;
    let progress = app.store.edition_progress(id).await.unwrap();
    assert_eq!(progress.suppressed + progress.sent, 30, "{progress:?}");
    assert!(progress.sent < 30, "{progress:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.smtp.mails().len() as i64, progress.sent, "only sends already under way went out");
    let page = admin.get_text(&format!("/admin/editions/{id}")).await;
    assert!(page.contains("<strong id=\"status\">cancelled</strong>"));
    assert_eq!(app.post_edition_action(id, "resume").await.status(), 409, "a cancelled edition stays cancelled");
}

#[tokio::test]
async fn an_admin_finds_a_reader_sees_their_consent_and_unsubscribes_them() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("found@example.com").await;
    app.sign_up("pending@example.com").await;
    let admin = app.log_in_as_admin().await;
    let list = admin.get_text("/admin/subscribers?email=FOUND&status=confirmed").await;
    assert!(list.contains("found@example.com") && !list.contains("pending@example.com"));
    let id = app.store.find_subscribers("found", None, "", 1).await.unwrap().remove(0).id;
    let page = admin.get_text(&format!("/admin/subscribers/{id}")).await;
    assert!(page.contains("form") && page.contains("127.0.0.1"), "the consent record is shown");
    assert!(page.contains("confirmation") && page.contains("welcome"), "the deliveries are listed");
    assert_eq!(admin.post_subscriber_unsubscribe(id).await.status(), 303);
    assert!(admin.get_text(&format!("/admin/subscribers/{id}")).await.contains("<td id=\"status\">unsubscribed</td>"));
    assert_eq!(admin.get("/admin/subscribers?status=vip").await.status(), 400);
}

#[tokio::test]
async fn erasing_a_reader_from_the_page_needs_their_address_typed_again() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("erase@example.com").await;
    let admin = app.log_in_as_admin().await;
    let id = app.store.find_subscribers("erase", None, "", 1).await.unwrap().remove(0).id;
    assert_eq!(admin.post_subscriber_erase(id, "someone@example.com").await.status(), 422);
    assert!(app.store.subscriber(id).await.unwrap().is_some());
    assert_eq!(admin.post_subscriber_erase(id, "ERASE@example.com").await.status(), 200);
    assert!(app.store.subscriber(id).await.unwrap().is_none());
    assert_eq!(admin.get(&format!("/admin/subscribers/{id}")).await.status(), 404);
}

/// Follows an import's page until it shows the report, and returns that page.
async fn follow_import(admin: &AdminPages, started: &reqwest::Response) -> String {
    let page = started.headers()["location"].to_str().unwrap().to_string();
    assert!(page.starts_with("/admin/subscribers/imports/"), "{page}");
    for _ in 0..300 {
        let text = admin.get_text(&page).await;
        if text.contains("id=\"import-report\"") {
            assert!(!text.contains("http-equiv=\"refresh\""), "a finished import's page stays put");
            return text;
        }
        assert!(text.contains("Importing:") && text.contains("http-equiv=\"refresh\""), "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the import did not finish");
}

#[tokio::test]
async fn a_large_import_from_the_page_shows_its_progress_then_its_report() {
    let app = spawn_app().await;
    let admin = app.log_in_as_admin().await;
    let mut csv = String::from("email,name\n");
    for i in 0..20_000 {
        csv.push_str(&format!("reader{i}@example.com,Reader {i}\n"));
    }
    let started = admin.post_subscribers_import(&csv, true).await;
    assert_eq!(started.status(), 303);
    let page = started.headers()["location"].to_str().unwrap().to_string();
    let first = admin.get_text(&page).await;
    assert!(first.contains("Importing:") || first.contains("Imported 20000"), "{first}");
    let report = follow_import(&admin, &started).await;
    assert!(report.contains("Imported 20000; 0 already known"), "{report}");
    assert_eq!(admin.get("/admin/subscribers/imports/not-an-import").await.status(), 404);
}

#[tokio::test]
async fn an_import_from_the_page_needs_consent_and_reports_bad_lines() {
    let app = spawn_app().await;
    app.sign_up_and_confirm("left@example.com").await;
    let id = app.store.find_subscribers("left", None, "", 1).await.unwrap().remove(0).id;
    app.store.unsubscribe(id).await.unwrap();
    let admin = app.log_in_as_admin().await;
    let csv = "email,name,tickers\nnew@example.com,=HYPERLINK(\"x\"),NOK\nleft@example.com,Left,\nnot-an-address,X,\n";
    let refused = admin.post_subscribers_import(csv, false).await;
    assert_eq!(refused.status(), 422);
    assert!(app.store.find_subscribers("new@", None, "", 1).await.unwrap().is_empty());
    let started = admin.post_subscribers_import(csv, true).await;
    assert_eq!(started.status(), 303, "the import runs in the background");
    let report = follow_import(&admin, &started).await;
    assert!(report.contains("Imported 1; 1 already known"), "{report}");
    assert!(report.contains("Line 4:"), "{report}");
    assert_eq!(app.store.subscriber(id).await.unwrap().unwrap().status.as_str(), "unsubscribed");
    let export = admin.get("/admin/subscribers.csv").await;
    assert_eq!(export.status(), 200);
    let export = export.text().await.unwrap();
    assert!(export.contains("\"'=HYPERLINK(\"\"x\"\")\""), "a formula is neutralised: {export}");

    let mut forged = reqwest::multipart::Form::new().text("csrf", "00").text("consent", "yes");
    forged = forged.part("file", reqwest::multipart::Part::text("email\nforged@example.com\n"));
    let response = admin.post_multipart("/admin/subscribers/import", forged).await;
    assert_eq!(response.status(), 403);
    assert!(app.store.find_subscribers("forged", None, "", 1).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_admin_adds_a_story_by_hand_and_hides_it() {
    let app = spawn_app().await;
    let admin = app.log_in_as_admin().await;
    let added = admin
        .post_stories(&[
            ("title", "Equinor (OSL:EQNR) <b>beats</b>"),
            ("url", "https://news.example/eqnr"),
            ("tickers", "EQNR.OL"),
        ])
        .await;
    assert_eq!(added.status(), 303);
    let story = app.store.all_recent_stories(1).await.unwrap().remove(0);
    assert_eq!(story.title, "Equinor (OSL:EQNR) beats");
    assert!(admin.get_text("/admin/stories").await.contains("Equinor (OSL:EQNR) beats"));
    assert_eq!(admin.post_story_action(story.id, "hide").await.status(), 303);
    assert!(app.store.all_recent_stories(1).await.unwrap()[0].hidden);
    assert_eq!(admin.post_story_action(story.id, "show").await.status(), 303);
    assert!(!app.store.all_recent_stories(1).await.unwrap()[0].hidden);
    let bad = admin.post_stories(&[("title", "No link"), ("url", "javascript:alert(1)")]).await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("url"));
}

#[tokio::test]
async fn the_admin_api_lists_quotes_and_editions() {
    let app = spawn_app().await;
    app.with_a_story_and_quotes().await;
    let quotes = app.admin_get_json("/admin/api/quotes").await;
    assert_eq!(quotes["quotes"].as_array().unwrap().len(), 2);
    assert_eq!(app.admin_get("/admin/api/quotes?limit=0").await.status(), 400);
    let editions = app.admin_get_json("/admin/api/editions").await;
    assert_eq!(editions["editions"], serde_json::json!([]));
}

#[tokio::test]
async fn after_logging_in_only_a_plain_admin_path_is_followed() {
    let app = spawn_app().await;
    for (next, expected) in [
        ("/admin/stories", "/admin/stories"),
        ("/admin%0D%0AX-Evil:1", "/admin"),
        ("//evil.example/admin", "/admin"),
        ("https://evil.example/admin", "/admin"),
    ] {
        let response = app.post_admin_login_with_next(next).await;
        assert_eq!(response.status(), 303, "{next}");
        assert_eq!(response.headers()["location"], expected, "{next}");
    }
}

#[tokio::test]
async fn run_now_offers_nothing_to_send_when_no_reader_has_anything_new() {
    let app = spawn_app().await;
    let admin = app.log_in_as_admin().await;
    let confirm = admin.post_editions_confirm("weekly").await.text().await.unwrap();
    assert!(confirm.contains("Nothing would be sent"), "{confirm}");
    assert!(!confirm.contains("action=\"/admin/editions\""), "no button to send to nobody");
}

#[tokio::test]
async fn an_oversized_admin_form_gets_a_page_saying_so() {
    let app = spawn_app().await;
    let admin = app.log_in_as_admin().await;
    let huge = "x".repeat(64 * 1024);
    let response = admin.post_stories(&[("title", &huge), ("url", "https://news.example/x")]).await;
    assert_eq!(response.status(), 413);
    assert!(response.text().await.unwrap().contains("The form is too large"));
}
