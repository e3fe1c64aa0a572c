//! Digest fan-out, end to end: N confirmed readers (default 20,000), one
//! edition of 20 stories, sent by `tickermail digest` over SMTP into
//! postfix's `smtp-sink`. Prints messages per second, the time to create the
//! edition, and the process's peak memory, beside the rate of postfix's
//! `smtp-source` pushing messages of the same size into the same sink at the
//! same concurrency, measured before and after in the same run.
//!
//!   cargo bench --bench digest -- [readers=20000] [concurrency=4]
//!
//! Needs `smtp-sink` and `smtp-source` (Debian package postfix).

use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use tickermail::domain::{DigestDue, EditionContent, NewStory, StoredQuote, Watchlist, compose};
use tickermail::mailer::{DigestEdition, EmailLinks, digest_email};
use tickermail::store::Store;
use tokio::process::Command;

const STORIES: usize = 20;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let readers: u32 = args.next().map_or(20_000, |a| a.parse().expect("readers is a number"));
    let concurrency: usize = args.next().map_or(4, |a| a.parse().expect("concurrency is a number"));
    for tool in ["smtp-sink", "smtp-source"] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().await.unwrap();
        assert!(found.status.success(), "{tool} is missing: apt-get install postfix");
    }
    let work = std::env::temp_dir().join(format!("tickermail-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let database = format!("sqlite://{}", work.join("bench.db").display());
    let message_bytes = seed(&database, readers).await;

    let port = free_port();
    let mut sink = Command::new("smtp-sink")
        .args(["-u", "nobody", &format!("127.0.0.1:{port}"), "1000"])
        .kill_on_drop(true)
        .spawn()
        .expect("start smtp-sink");
    tokio::time::sleep(Duration::from_millis(300)).await;

    println!(
        "digest fan-out: {readers} readers, {STORIES} stories, messages of about {} KB, {concurrency} connections",
        message_bytes / 1024
    );
    let reference_before = smtp_source(port, concurrency, readers, message_bytes).await;
    let run = tickermail_digest(&database, port, concurrency).await;
    let reference_after = smtp_source(port, concurrency, readers, message_bytes).await;
    let reference = (reference_before + reference_after) / 2.0;
    let rate = f64::from(readers) / run.took.as_secs_f64();
    println!("smtp-source:  {reference_before:.0} msg/s before, {reference_after:.0} msg/s after");
    println!(
        "tickermail:   {rate:.0} msg/s ({:.2}x smtp-source), edition created in {:.2} s, peak RSS {} MB",
        rate / reference,
        run.created_in,
        run.peak_rss_kb / 1024
    );
    println!("              {}", run.summary.trim());
    sink.start_kill().ok();
    std::fs::remove_dir_all(&work).ok();
}

/// Readers, stories and quotes; returns the size of one digest as sent.
async fn seed(database: &str, readers: u32) -> usize {
    let store = Store::connect(database).await.unwrap();
    store.migrate().await.unwrap();
    let yesterday = Utc::now() - chrono::Duration::days(1);
    store.seed_confirmed_subscribers(readers, "reader", "example.com", "NOK,AAPL,MSFT", yesterday).await.unwrap();
    let symbols = ["NOK", "AAPL", "MSFT", "RY.TO", "VOD.L"];
    for (i, symbol) in symbols.iter().enumerate() {
        let quote = StoredQuote {
            symbol: symbol.to_string(),
            price: 100.0 + i as f64,
            previous_close: 98.0,
            currency: Some("USD".into()),
            as_of: Utc::now(),
            source: "bench".into(),
            suspect: false,
        };
        store.save_quote(&quote).await.unwrap();
    }
    let summary = "Shares moved after the company reported quarterly results ahead of estimates and raised its \
                   guidance for the year; analysts at several banks lifted their price targets while warning that \
                   supply constraints could weigh on margins in the coming quarters. "
        .repeat(2);
    for i in 0..STORIES {
        let symbol = symbols[i % symbols.len()];
        store
            .upsert_story(&NewStory {
                guid: format!("bench-{i}"),
                source: "bench".into(),
                title: format!("Story {i}: {symbol} moves on results & guidance, analysts react"),
                url: format!("https://news.example/2026/11/25/story-{i}-results-and-guidance/"),
                author: Some("Jane Doe".into()),
                summary: summary.trim().to_string(),
                tickers: vec![symbol.to_string()],
                published_at: Utc::now(),
            })
            .await
            .unwrap();
    }
    let size = digest_size(&store).await;
    store.close().await;
    size
}

/// The size of one reader's digest as sent: rendered here from the same data.
async fn digest_size(store: &Store) -> usize {
    let content = EditionContent {
        created_at: Utc::now(),
        stories: store.recent_stories(STORIES as u32).await.unwrap(),
        quotes: store.latest_quotes(&["NOK".into(), "AAPL".into(), "MSFT".into()]).await.unwrap(),
    };
    let due = DigestDue {
        since: Utc::now() - chrono::Duration::days(1),
        confirmed_at: Utc::now() - chrono::Duration::days(2),
        watchlist: Watchlist::parse_text("NOK,AAPL,MSFT").unwrap(),
    };
    let links = EmailLinks {
        site_name: "Stock News".into(),
        base_url: "http://127.0.0.1:8080".into(),
        from: "tickermail <tickermail@localhost>".parse().unwrap(),
        time_zone: chrono_tz::America::New_York,
        dkim: None,
    };
    let token = "0".repeat(72);
    let digest = compose(&content, &due);
    let edition = DigestEdition::new(&links, &content);
    let message =
        digest_email(&links, &edition, "reader1@example.com", "<x@localhost>".into(), "Reader 1", &token, &digest)
            .expect("a digest renders");
    message.to_eml().len()
}

struct DigestRun {
    took: Duration,
    created_in: f64,
    peak_rss_kb: u64,
    summary: String,
}

async fn tickermail_digest(database: &str, port: u16, concurrency: usize) -> DigestRun {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_tickermail"))
        .arg("digest")
        .env("DATABASE_URL", database)
        .env("SMTP_URL", format!("smtp://127.0.0.1:{port}?tls=none"))
        .env("SEND_CONCURRENCY", concurrency.to_string())
        .env("SECRET_KEY", "bench-secret-key-0123456789abcdef0123456789")
        .env("RUST_LOG", "warn")
        .env("DIGEST_STORY_SETTLE_SECONDS", "0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start tickermail digest");
    let pid = child.id().expect("running");
    let status_file = format!("/proc/{pid}/status");
    let watcher = tokio::spawn(async move {
        let mut peak = 0;
        while let Ok(status) = tokio::fs::read_to_string(&status_file).await {
            if let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak
    });
    let output = child.wait_with_output().await.unwrap();
    let took = started.elapsed();
    let summary = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "tickermail digest failed: {summary}");
    let created_in = summary
        .split("edition created in ")
        .nth(1)
        .and_then(|rest| rest.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        .unwrap_or(f64::NAN);
    DigestRun { took, created_in, peak_rss_kb: watcher.await.unwrap(), summary }
}

/// postfix's own client: messages per second into the same sink.
async fn smtp_source(port: u16, concurrency: usize, messages: u32, bytes: usize) -> f64 {
    let started = Instant::now();
    let status = Command::new("smtp-source")
        .args(["-d", "-s", &concurrency.to_string(), "-m", &messages.to_string(), "-l", &bytes.to_string()])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success(), "smtp-source failed");
    f64::from(messages) / started.elapsed().as_secs_f64()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
