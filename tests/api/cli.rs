//! The binary as an operator runs it.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

use crate::helpers::fresh_database_url;

pub fn tickermail() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tickermail"));
    // Only what each test sets: nothing from the developer's environment or a .env file.
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(std::env::temp_dir());
    command
}

#[tokio::test]
async fn a_bad_setting_stops_start_up_with_one_line_naming_the_variable() {
    for (variable, value) in [
        ("SMTP_URL", "http://mail.example.com"),
        ("BIND", "nowhere"),
        ("SEND_CONCURRENCY", "-3"),
        ("SMTP_CA_FILE", "/no/such/ca.pem"),
    ] {
        let output = tickermail().env(variable, value).arg("migrate").output().await.unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(&format!("error: {variable}: ")), "{stderr}");
    }
}

#[tokio::test]
async fn production_without_a_secret_key_refuses_to_start_and_says_how_to_make_one() {
    let output = tickermail().env("APP_ENV", "production").arg("serve").output().await.unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("SECRET_KEY") && stderr.contains("openssl rand -hex 32"), "{stderr}");
}

/// Starts `tickermail serve` on a fresh database with `envs`, and returns it
/// once it logged that it is serving, with its log so far and the rest to come.
async fn serve(envs: &[(&str, &str)]) -> (tokio::process::Child, Lines<BufReader<ChildStdout>>, Vec<String>) {
    let outbox = std::env::temp_dir().join(format!("tickermail-outbox-{}", uuid::Uuid::new_v4().simple()));
    let mut command = tickermail();
    command.env("DATABASE_URL", fresh_database_url().await).env("MAIL_OUTBOX_DIR", &outbox);
    for (name, value) in envs {
        command.env(name, value);
    }
    let mut server = command.stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true).spawn().unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut log = Vec::new();
    let serving = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let done = line.contains("tickermail is serving");
            log.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(serving, Ok(true), "{envs:?}: the server did not start:\n{}", log.join("\n"));
    (server, lines, log)
}

#[tokio::test]
async fn without_a_secret_key_a_server_on_a_public_address_warns_that_the_database_holds_the_key() {
    for (bind, warns) in [("0.0.0.0:0", true), ("127.0.0.1:0", false)] {
        let (mut server, _, log) = serve(&[("BIND", bind)]).await;
        server.kill().await.unwrap();
        let log = log.join("\n");
        let warning = log.lines().find(|line| line.contains("can forge"));
        assert_eq!(warning.is_some(), warns, "BIND={bind}:\n{log}");
        if let Some(warning) = warning {
            assert!(warning.contains("WARN") && warning.contains("SECRET_KEY"), "{warning}");
        }
    }
}

#[tokio::test]
async fn an_unreachable_database_is_reported_without_a_panic() {
    let output = tickermail()
        .env("DATABASE_URL", "sqlite:///no/such/folder/tickermail.db")
        .arg("migrate")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("error: DATABASE_URL: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn migrate_applies_the_migrations_and_exits() {
    let output = tickermail().env("DATABASE_URL", fresh_database_url().await).arg("migrate").output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8(output.stdout).unwrap().contains("migrations applied"));
}

#[tokio::test]
async fn every_subcommand_has_help() {
    for args in [vec!["--help"], vec!["serve", "--help"], vec!["migrate", "--help"]] {
        let output = tickermail().args(&args).output().await.unwrap();
        assert!(output.status.success(), "{args:?}");
        assert!(String::from_utf8(output.stdout).unwrap().contains("Usage"), "{args:?}");
    }
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully_with_exit_code_0() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let outbox = std::env::temp_dir().join(format!("tickermail-outbox-{}", uuid::Uuid::new_v4().simple()));
    let mut server = tickermail()
        .env("DATABASE_URL", fresh_database_url().await)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("MAIL_OUTBOX_DIR", &outbox)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = crate::helpers::http_client();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("http://127.0.0.1:{port}/health")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server did not start");
    let response = client
        .post(format!("http://127.0.0.1:{port}/subscriptions"))
        .form(&[("email", "outbox@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let pid = server.id().unwrap().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(40), server.wait()).await.expect("exits").unwrap();
    assert_eq!(status.code(), Some(0));
    let written = std::fs::read_dir(&outbox)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"));
    assert_eq!(written.count(), 1, "the confirmation was written to the outbox before exit");
}

#[tokio::test]
async fn the_log_says_what_matters_at_start_and_keeps_link_tokens_and_clients_mistakes_out_of_alarms() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let (mut server, mut lines, mut log) = serve(&[
        ("BIND", &bind),
        ("SECRET_KEY", crate::helpers::TEST_SECRET_KEY),
        ("ADMIN_TOKEN", crate::helpers::TEST_ADMIN_TOKEN),
        ("LOG_FORMAT", "json"),
        // A fresh database, long after this slot: it was never missed.
        ("DIGEST_SCHEDULE", "0 0 1 1 *"),
    ])
    .await;
    let client = crate::helpers::http_client();
    let base = format!("http://127.0.0.1:{port}");
    for path in ["/unsubscribe/secret-link-token-0123456789", "/preferences/secret-link-token-0123456789"] {
        assert!(client.get(format!("{base}{path}")).send().await.unwrap().status().is_client_error());
    }
    for _ in 0..3 {
        let unauthenticated = client.get(format!("{base}/admin/api/subscribers/secret-link-token-0123456789"));
        assert_eq!(unauthenticated.send().await.unwrap().status(), 401);
    }
    let malformed = client.post(format!("{base}/subscriptions")).header("Content-Type", "application/json").body("{");
    assert!(malformed.send().await.unwrap().status().is_client_error());
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill().await.unwrap();
    while let Ok(Some(line)) = lines.next_line().await {
        log.push(line);
    }
    let log = log.join("\n");

    let serving = log.lines().find(|line| line.contains("tickermail is serving")).unwrap();
    for what in [format!("http://127.0.0.1:{port}"), ".eml files in".to_string()] {
        assert!(serving.contains(&what), "the start-up line names {what}: {serving}");
    }
    assert!(serving.contains("sqlite://") || serving.contains("postgres://"), "and the database: {serving}");
    assert!(!log.contains("secret-link-token"), "a link token reached the log:\n{log}");
    assert!(log.contains("/admin/api/subscribers/{id}"), "requests are named by their route:\n{log}");
    assert!(!log.contains("\"ERROR\"") && !log.contains("\"WARN\""), "a client's mistakes are not alarms:\n{log}");
    assert!(!log.contains("tokio_cron_scheduler"), "no scheduler chatter:\n{log}");
    assert!(log.lines().count() < 20, "a short log:\n{log}");
}
