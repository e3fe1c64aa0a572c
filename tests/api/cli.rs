//! The binary as an operator runs it.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

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
