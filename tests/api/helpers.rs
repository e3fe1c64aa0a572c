//! Starts the real application on a random port with a fresh database (a
//! SQLite file, or a new PostgreSQL database when `TEST_DATABASE_URL` is set)
//! and a real SMTP conversation with an in-process sink.

use std::collections::HashMap;
use std::fmt::Display;
use std::time::Duration;

use sqlx::Connection;
use tickermail::config::Settings;
use tickermail::domain::DeliveryStatus;
use tickermail::startup::Application;
use tickermail::store::Store;
use uuid::Uuid;

use crate::smtp_sink::{ReceivedMail, SmtpSink};

pub const TEST_SECRET_KEY: &str = "test-secret-key-0123456789abcdef0123456789";
pub const TEST_ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const TEST_ADMIN_EMAIL: &str = "admin@stocknews.example";
pub const TEST_ADMIN_PASSWORD: &str = "test-admin-password-0123";
/// `TEST_ADMIN_PASSWORD` hashed by `tickermail admin hash-password`.
pub const TEST_ADMIN_PASSWORD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$iSW12gQDnqg0/cXhrpvGEg$6YOYZ8GAu6TIX4aAbb/jCrXUKPGIb/2pOHWSz5sPawY";

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub store: Store,
    pub smtp: SmtpSink,
    pub client: reqwest::Client,
}

/// A database URL for one test: a fresh PostgreSQL database on the
/// `TEST_DATABASE_URL` server, or a new SQLite file.
pub async fn fresh_database_url() -> String {
    let name = format!("tickermail_test_{}", Uuid::new_v4().simple());
    match std::env::var("TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()) {
        Some(server_url) => {
            let mut admin = sqlx::PgConnection::connect(&server_url)
                .await
                .expect("TEST_DATABASE_URL must point at a reachable PostgreSQL server");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut admin)
                .await
                .expect("create test database");
            let mut url = url::Url::parse(&server_url).expect("TEST_DATABASE_URL is a URL");
            url.set_path(&name);
            url.to_string()
        }
        None => {
            let dir = std::env::temp_dir().join("tickermail-tests");
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite://{}", dir.join(format!("{name}.db")).display())
        }
    }
}

/// `TEST_LOG=1 cargo test` shows the application's logs.
fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tickermail::telemetry::init(tickermail::config::LogFormat::Pretty);
        }
    });
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app; `overrides` are environment variables on top of the test defaults.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let smtp = SmtpSink::start().await;
    spawn_app_with_smtp_port(smtp.port, overrides, smtp).await
}

/// Starts the app sending to `smtp_port`, where `smtp` may not be listening yet.
pub async fn spawn_app_with_smtp_port(smtp_port: u16, overrides: &[(&str, &str)], smtp: SmtpSink) -> TestApp {
    init_logging();
    let database_url = fresh_database_url().await;
    let smtp_url = format!("smtp://127.0.0.1:{smtp_port}?tls=none");
    let mut vars: HashMap<String, String> = [
        ("DATABASE_URL", database_url.as_str()),
        ("BIND", "127.0.0.1:0"),
        ("SMTP_URL", smtp_url.as_str()),
        ("MAIL_FROM", "Stock News <news@stocknews.example>"),
        ("SECRET_KEY", TEST_SECRET_KEY),
        ("ADMIN_TOKEN", TEST_ADMIN_TOKEN),
        ("ADMIN_EMAIL", TEST_ADMIN_EMAIL),
        ("ADMIN_PASSWORD_HASH", TEST_ADMIN_PASSWORD_HASH),
        ("SIGNUP_LIMIT_PER_HOUR", "0"),
        // Tests load the app with hundreds of requests at once from one address.
        ("MAX_CONNECTIONS_PER_CLIENT", "0"),
        ("SEND_RETRY_BASE_SECONDS", "1"),
        ("WORKER_POLL_MS", "100"),
        // A test that crossed a slot would get digests or alerts it did not ask for.
        ("DIGEST_SCHEDULE", "off"),
        ("WEEKLY_DIGEST_SCHEDULE", "off"),
        ("ALERT_SCHEDULE", "off"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (key, value) in overrides {
        vars.insert(key.to_string(), value.to_string());
    }
    let settings = Settings::from_lookup(|name| vars.get(name).cloned()).expect("test settings are valid");
    let app = Application::build(settings).await.expect("application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let store = app.store().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp { address, database_url, store, smtp, client: http_client() }
}

/// A client that does not follow redirects. reqwest is built without a
/// default TLS crypto provider (as in the application), so ring is installed first.
/// It drops idle connections before the server's keep-alive (5 s) ends them:
/// a test that waited about that long would otherwise race the server's close.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.address)).send().await.expect("request sent")
    }

    pub async fn post_form(&self, path: &str, body: &str) -> reqwest::Response {
        self.post_form_with_headers(path, body, &[]).await
    }

    async fn post_form_with_headers(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .header("Content-Type", "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(body.to_string()).send().await.expect("request sent")
    }

    pub async fn get_signup_page(&self) -> reqwest::Response {
        self.get("/").await
    }

    pub async fn post_subscriptions_form(&self, body: &str) -> reqwest::Response {
        self.post_form("/subscriptions", body).await
    }

    /// A form sign-up whose POST carries `headers` too (a browser's, an embedding site's, a proxy's).
    pub async fn post_subscriptions_form_with_headers(
        &self,
        body: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.post_form_with_headers("/subscriptions", body, headers).await
    }

    pub async fn post_subscriptions_json(&self, body: &serde_json::Value) -> reqwest::Response {
        self.post_subscriptions_json_with_headers(body, &[]).await
    }

    pub async fn post_subscriptions_json_with_headers(
        &self,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.post(format!("{}/subscriptions", self.address));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.json(body).send().await.expect("request sent")
    }

    /// A sign-up whose body is sent as it is, as `content_type`: for bodies no form or JSON encoder would make.
    pub async fn post_subscriptions_raw(&self, content_type: &str, body: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/subscriptions", self.address))
            .header("Content-Type", content_type)
            .body(body.to_string())
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_confirm(&self, token: &str) -> reqwest::Response {
        self.get(&format!("/confirm/{token}")).await
    }

    pub async fn post_confirm(&self, token: &str) -> reqwest::Response {
        self.post_form(&format!("/confirm/{token}"), "").await
    }

    pub async fn post_resend_confirmation(&self, token: &str) -> reqwest::Response {
        self.post_form(&format!("/confirm/{token}/resend"), "").await
    }

    pub async fn get_unsubscribe(&self, token: &str) -> reqwest::Response {
        self.get(&format!("/unsubscribe/{token}")).await
    }

    /// The RFC 8058 one-click request a mail client sends.
    pub async fn post_one_click_unsubscribe(&self, token: &str) -> reqwest::Response {
        self.post_form(&format!("/unsubscribe/{token}"), "List-Unsubscribe=One-Click").await
    }

    pub async fn get_preferences(&self, token: &str) -> reqwest::Response {
        self.get(&format!("/preferences/{token}")).await
    }

    pub async fn post_preferences(&self, token: &str, body: &str) -> reqwest::Response {
        self.post_form(&format!("/preferences/{token}"), body).await
    }

    pub async fn get_admin_stats(&self, bearer: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}/admin/api/stats", self.address));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent")
    }

    /// A GET of the admin API with the token.
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.address)).bearer_auth(TEST_ADMIN_TOKEN).send().await.unwrap()
    }

    /// A GET of the admin API that must answer 200, as JSON.
    pub async fn admin_get_json(&self, path: &str) -> serde_json::Value {
        let response = self.admin_get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// A POST of `body` as JSON to the admin API, with `token` as the bearer token if given.
    pub async fn post_admin_json(
        &self,
        path: &str,
        body: &serde_json::Value,
        token: Option<&str>,
    ) -> reqwest::Response {
        self.admin_json_request(path, body, token).send().await.expect("request sent")
    }

    fn admin_json_request(&self, path: &str, body: &serde_json::Value, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.client.post(format!("{}{path}", self.address)).json(body);
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// A POST without a body to the admin API, with the token.
    async fn admin_post(&self, path: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .bearer_auth(TEST_ADMIN_TOKEN)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn push_quotes(&self, body: &serde_json::Value) -> reqwest::Response {
        self.post_admin_json("/admin/api/quotes", body, Some(TEST_ADMIN_TOKEN)).await
    }

    pub async fn push_story(&self, story: &serde_json::Value) -> reqwest::Response {
        self.post_admin_json("/admin/api/stories", story, Some(TEST_ADMIN_TOKEN)).await
    }

    /// `action` is `hide` or `show`.
    pub async fn post_story_action(&self, id: impl Display, action: &str) -> reqwest::Response {
        let path = format!("/admin/api/stories/{id}/{action}");
        self.post_admin_json(&path, &serde_json::json!({}), Some(TEST_ADMIN_TOKEN)).await
    }

    /// `POST /admin/api/editions` (a run now, or with `dry_run` its preview), with an `Idempotency-Key` if given.
    pub async fn create_edition(&self, body: &serde_json::Value, idempotency_key: Option<&str>) -> reqwest::Response {
        self.post_admin_json_with_key("/admin/api/editions", body, idempotency_key).await
    }

    /// `action` is `pause`, `resume` or `cancel`.
    pub async fn post_edition_action(&self, id: Uuid, action: &str) -> reqwest::Response {
        self.admin_post(&format!("/admin/api/editions/{id}/{action}")).await
    }

    pub async fn post_test_send(&self, body: &serde_json::Value, idempotency_key: Option<&str>) -> reqwest::Response {
        self.post_admin_json_with_key("/admin/api/test-send", body, idempotency_key).await
    }

    async fn post_admin_json_with_key(
        &self,
        path: &str,
        body: &serde_json::Value,
        idempotency_key: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.admin_json_request(path, body, Some(TEST_ADMIN_TOKEN));
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("request sent")
    }

    pub async fn post_subscriber_unsubscribe(&self, id: &str) -> reqwest::Response {
        self.admin_post(&format!("/admin/api/subscribers/{id}/unsubscribe")).await
    }

    /// Erases the reader and all their personal data.
    pub async fn delete_subscriber(&self, id: &str) -> reqwest::Response {
        let url = format!("{}/admin/api/subscribers/{id}", self.address);
        self.client.delete(url).bearer_auth(TEST_ADMIN_TOKEN).send().await.expect("request sent")
    }

    /// `POST /admin/api/subscribers/import{query}` with `csv` as the body.
    pub async fn import_csv(&self, query: &str, csv: &str) -> reqwest::Response {
        self.import_csv_with_headers(query, &[], csv).await
    }

    pub async fn import_csv_with_headers(&self, query: &str, headers: &[(&str, &str)], csv: &str) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/admin/api/subscribers/import{query}", self.address))
            .bearer_auth(TEST_ADMIN_TOKEN);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(csv.to_string()).send().await.expect("request sent")
    }

    /// Signs up `email` by form and returns the confirmation email.
    pub async fn sign_up(&self, email: &str) -> ReceivedMail {
        let response =
            self.post_subscriptions_form(&format!("email={}&name=Ann&tickers=NOK%2C+AAPL", urlencode(email))).await;
        assert_eq!(response.status(), 200);
        self.smtp.wait_for_mail_to(email).await
    }

    /// The token at the end of a link in `mail` under `/{route}/`.
    pub fn token_from(&self, mail: &ReceivedMail, route: &str) -> String {
        let prefix = format!("{}/{route}/", self.address);
        let link = mail.link_starting_with(&prefix).unwrap_or_else(|| panic!("no {prefix} link in:\n{}", mail.text()));
        link[prefix.len()..].to_string()
    }

    /// Signs up and confirms `email`; returns the welcome email.
    pub async fn sign_up_and_confirm(&self, email: &str) -> ReceivedMail {
        let confirmation = self.sign_up(email).await;
        let token = self.token_from(&confirmation, "confirm");
        assert_eq!(self.post_confirm(&token).await.status(), 200);
        self.smtp.wait_for_mails_to(email, 2, Duration::from_secs(10)).await.pop().unwrap()
    }

    /// Waits until the outbox has nothing queued or in flight.
    pub async fn wait_until_outbox_idle(&self) {
        for _ in 0..200 {
            let counts = self.store.delivery_counts().await.unwrap();
            if counts.iter().all(|c| c.status != DeliveryStatus::Queued && c.status != DeliveryStatus::Sending) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("outbox did not drain: {:?}", self.store.delivery_counts().await.unwrap());
    }
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A logged-in admin's browser, as far as HTTP goes: the session cookie, and
/// the CSRF token the pages put in their forms.
pub struct AdminPages {
    pub address: String,
    pub client: reqwest::Client,
    pub cookie: String,
    pub csrf: String,
}

/// The value of the hidden `csrf` field in a page.
pub fn csrf_in(page: &str) -> String {
    let start = page.find("name=\"csrf\" value=\"").expect("the page has a CSRF field") + 19;
    page[start..].split('"').next().unwrap().to_string()
}

/// The whole `Set-Cookie` header of cookie `name` in `response`, attributes and all.
pub fn set_cookie_header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(String::from)
}

/// The `name=value` of cookie `name` set by `response`.
pub fn cookie_set_by(response: &reqwest::Response, name: &str) -> Option<String> {
    set_cookie_header(response, name).map(|v| v.split(';').next().unwrap().to_string())
}

impl TestApp {
    /// Opens the login page: its cookie and CSRF token.
    pub async fn admin_login_form(&self) -> (String, String) {
        let response = self.get("/admin/login").await;
        assert_eq!(response.status(), 200);
        let cookie = cookie_set_by(&response, "tickermail_login").expect("the login page sets its cookie");
        (cookie, csrf_in(&response.text().await.unwrap()))
    }

    pub async fn post_admin_login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_admin_login_with_headers(email, password, &[]).await
    }

    /// The test admin's login asking to go on to `next`, which goes into the body as it is written.
    pub async fn post_admin_login_with_next(&self, next: &str) -> reqwest::Response {
        let (cookie, csrf) = self.admin_login_form().await;
        let body = format!("email={TEST_ADMIN_EMAIL}&password={TEST_ADMIN_PASSWORD}&csrf={csrf}&next={next}");
        self.post_admin_login_form(cookie, body, &[]).await
    }

    /// A login whose POST carries `headers` too (a proxy's, say).
    pub async fn post_admin_login_with_headers(
        &self,
        email: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let (cookie, csrf) = self.admin_login_form().await;
        let body = format!("email={}&password={}&csrf={csrf}", urlencode(email), urlencode(password));
        self.post_admin_login_form(cookie, body, headers).await
    }

    /// Posts the login form `body` with the login page's `cookie`.
    async fn post_admin_login_form(&self, cookie: String, body: String, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.post(format!("{}/admin/login", self.address));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .header("Cookie", cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// The admin pages as a browser holding the session `cookie` sees them (before any form's CSRF token).
    pub fn admin_session(&self, cookie: String) -> AdminPages {
        AdminPages { address: self.address.clone(), client: self.client.clone(), cookie, csrf: String::new() }
    }

    pub async fn log_in_as_admin(&self) -> AdminPages {
        let response = self.post_admin_login(TEST_ADMIN_EMAIL, TEST_ADMIN_PASSWORD).await;
        assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
        let mut pages = self.admin_session(cookie_set_by(&response, "tickermail_admin").expect("a session cookie"));
        let dashboard = pages.get("/admin").await;
        assert_eq!(dashboard.status(), 200);
        pages.csrf = csrf_in(&dashboard.text().await.unwrap());
        pages
    }
}

impl AdminPages {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .header("Cookie", &self.cookie)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_text(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.unwrap()
    }

    /// Posts a form with this session's CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = vec![("csrf", &self.csrf)];
        form.extend_from_slice(fields);
        self.post_raw(path, &serde_urlencoded::to_string(form).unwrap()).await
    }

    pub async fn post_logout(&self) -> reqwest::Response {
        self.post("/admin/logout", &[]).await
    }

    pub async fn post_test_send(&self, to: &str, kind: &str) -> reqwest::Response {
        self.post("/admin/test-send", &[("to", to), ("kind", kind)]).await
    }

    /// The page that asks before a run now.
    pub async fn post_editions_confirm(&self, frequency: &str) -> reqwest::Response {
        self.post("/admin/editions/confirm", &[("frequency", frequency)]).await
    }

    /// A run now, as confirmed.
    pub async fn post_editions(&self, frequency: &str) -> reqwest::Response {
        self.post("/admin/editions", &[("frequency", frequency)]).await
    }

    pub async fn post_edition_action(&self, id: Uuid, action: &str) -> reqwest::Response {
        self.post(&format!("/admin/editions/{id}/{action}"), &[]).await
    }

    pub async fn post_subscriber_unsubscribe(&self, id: Uuid) -> reqwest::Response {
        self.post(&format!("/admin/subscribers/{id}/unsubscribe"), &[]).await
    }

    /// The erasure, with the reader's address typed again as `confirm_email`.
    pub async fn post_subscriber_erase(&self, id: Uuid, confirm_email: &str) -> reqwest::Response {
        self.post(&format!("/admin/subscribers/{id}/erase"), &[("confirm_email", confirm_email)]).await
    }

    /// The upload form: `csv` as the file `readers.csv`, with the consent box ticked if `consent`.
    pub async fn post_subscribers_import(&self, csv: &str, consent: bool) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new().text("csrf", self.csrf.clone());
        if consent {
            form = form.text("consent", "yes");
        }
        form = form.part("file", reqwest::multipart::Part::text(csv.to_string()).file_name("readers.csv"));
        self.post_multipart("/admin/subscribers/import", form).await
    }

    /// Posts `form` as it is, with the session cookie.
    pub async fn post_multipart(&self, path: &str, form: reqwest::multipart::Form) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .header("Cookie", &self.cookie)
            .multipart(form)
            .send()
            .await
            .expect("request sent")
    }

    /// A story added by hand: `fields` are the form's (title, url, tickers).
    pub async fn post_stories(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        self.post("/admin/stories", fields).await
    }

    /// `action` is `hide` or `show`.
    pub async fn post_story_action(&self, id: Uuid, action: &str) -> reqwest::Response {
        self.post(&format!("/admin/stories/{id}/{action}"), &[]).await
    }

    /// Posts `body` as it is, with the session cookie.
    pub async fn post_raw(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.address))
            .header("Cookie", &self.cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .expect("request sent")
    }
}

/// A plain connection to a test database, for what no endpoint does: writing
/// rows as another version or a damaged disk would have, and reading columns
/// as they are stored.
pub enum RawDb {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl RawDb {
    pub async fn connect(database_url: &str) -> RawDb {
        if database_url.starts_with("postgres") {
            RawDb::Postgres(sqlx::PgConnection::connect(database_url).await.unwrap())
        } else {
            RawDb::Sqlite(sqlx::SqliteConnection::connect(database_url).await.unwrap())
        }
    }

    pub async fn fetch_i64(&mut self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            RawDb::Sqlite(db) => sqlx::query_scalar(sql).fetch_one(db).await.unwrap(),
            RawDb::Postgres(db) => sqlx::query_scalar(sql).fetch_one(db).await.unwrap(),
        }
    }

    pub async fn fetch_strings(&mut self, sql: &str) -> Vec<String> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            RawDb::Sqlite(db) => sqlx::query_scalar(sql).fetch_all(db).await.unwrap(),
            RawDb::Postgres(db) => sqlx::query_scalar(sql).fetch_all(db).await.unwrap(),
        }
    }

    /// Every (table, column) whose stored text mentions `text`, in any letter case.
    pub async fn mentions(&mut self, store: &Store, text: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for (table, column) in store.table_columns().await.unwrap() {
            let sql = format!(
                "SELECT COUNT(*) FROM {table} WHERE lower(CAST({column} AS TEXT)) LIKE '%{}%'",
                text.to_ascii_lowercase()
            );
            let count = match self {
                RawDb::Sqlite(db) => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).fetch_one(db).await,
                RawDb::Postgres(db) => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).fetch_one(db).await,
            };
            if count.unwrap() > 0 {
                found.push((table, column));
            }
        }
        found
    }

    /// Queues a delivery of `kind` with `payload` exactly as given, due now.
    pub async fn insert_delivery(&mut self, kind: &str, subscriber_id: Uuid, recipient: &str, payload: &str) {
        let sql = "INSERT INTO deliveries (id, kind, subscriber_id, recipient, payload, status, attempts, \
                   next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6, $6)";
        let now = tickermail::store::now();
        macro_rules! insert {
            ($db:expr) => {
                sqlx::query(sql)
                    .bind(Uuid::new_v4())
                    .bind(kind)
                    .bind(subscriber_id)
                    .bind(recipient)
                    .bind(payload)
                    .bind(now)
                    .execute($db)
                    .await
                    .map(drop)
                    .unwrap()
            };
        }
        match self {
            RawDb::Sqlite(db) => insert!(db),
            RawDb::Postgres(db) => insert!(db),
        };
    }
}
