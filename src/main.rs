use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tickermail::config::Settings;
use tickermail::domain::{DigestFrequency, SubscriberEmail};
use tickermail::jobs::ingest::Ingest;
use tickermail::sources::feeds::FeedOutcome;
use tickermail::startup::{
    Application, DigestOutcome, connect_and_migrate, run_alerts_now, run_digest_now, send_test_now,
};
use tickermail::telemetry;

/// tickermail: a self-hosted newsletter and stock-alert mailer.
///
/// Settings come from environment variables and an optional `.env` file;
/// see `.env.example` for every variable and its default.
#[derive(Parser)]
#[command(name = "tickermail", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server and the delivery worker (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create a digest edition now and send it: prints recipients, sent,
    /// failed and the time it took once every delivery is done.
    Digest {
        /// The weekly digest (default: the daily one).
        #[arg(long)]
        weekly: bool,
        /// Print what would be sent and to how many readers; send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check price moves against every reader's watchlist and threshold now,
    /// send the alerts that are due, and print what was sent.
    Alerts {
        /// Print how many alerts are due; queue and send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Send a [TEST] digest, alert, confirmation or welcome email to any
    /// address now, rendered from the current stories and quotes, and print
    /// the SMTP server's answer (exit 1 when it refused).
    SendTest {
        /// The address to send to.
        #[arg(long)]
        to: String,
        /// digest, alert, confirmation or welcome.
        #[arg(long, default_value = "digest")]
        kind: String,
    },
    /// Admin account tools.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Poll the feeds (FEED_URLS) and the quote providers (QUOTE_PROVIDERS)
    /// once, print what was stored, and exit: 0 when everything succeeded,
    /// 1 when a feed or a symbol failed. Market hours are not checked.
    Ingest {
        /// Only the feeds.
        #[arg(long, conflicts_with = "quotes")]
        feeds: bool,
        /// Only the quotes.
        #[arg(long)]
        quotes: bool,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Read a password from standard input (its first line) and print its
    /// argon2 hash for ADMIN_PASSWORD_HASH.
    HashPassword,
}

/// Admin passwords shorter than this are refused.
const MIN_PASSWORD_CHARS: usize = 12;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Admin { command: AdminCommand::HashPassword }) = cli.command {
        return hash_password();
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {}", printable(&error.to_string()));
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                let app = Application::build(settings).await.map_err(|e| e.to_string())?;
                app.run_until_stopped().await.map_err(|e| format!("server error: {e}"))
            }
            Command::Migrate => {
                let store = connect_and_migrate(&settings).await.map_err(|e| e.to_string())?;
                println!("migrations applied to the {} database", store.backend_name());
                Ok(())
            }
            Command::Digest { weekly, dry_run } => {
                let frequency = if weekly { DigestFrequency::Weekly } else { DigestFrequency::Daily };
                let outcome = run_digest_now(&settings, frequency, dry_run).await.map_err(|e| e.to_string())?;
                if let DigestOutcome::UnderWay { edition_id } = outcome {
                    return Err(format!(
                        "the {frequency} edition {edition_id} is still going out; one edition of a frequency goes out at a time, so nothing was started"
                    ));
                }
                print_digest_outcome(frequency, &outcome);
                Ok(())
            }
            Command::Alerts { dry_run } => {
                let outcome = run_alerts_now(&settings, dry_run).await.map_err(|e| e.to_string())?;
                let report = &outcome.report;
                match &outcome.progress {
                    None => println!(
                        "dry run: {} alerts due, from {} fresh quotes; nothing was sent",
                        report.due, report.fresh_quotes
                    ),
                    Some(progress) => println!(
                        "alerts: {} due, {} queued, {} sent, {} failed, {} suppressed, in {:.1}s",
                        report.due,
                        report.queued.len(),
                        progress.sent,
                        progress.failed,
                        progress.suppressed,
                        outcome.took.as_secs_f64()
                    ),
                }
                Ok(())
            }
            Command::SendTest { to, kind } => {
                let to = SubscriberEmail::parse(&to).map_err(|m| format!("--to: {m}"))?;
                let kind = kind.parse().map_err(|m| format!("--kind: {m}"))?;
                let subject = send_test_now(&settings, &to, kind).await?;
                println!("sent to {}: {subject}", to.as_str());
                Ok(())
            }
            Command::Admin { .. } => unreachable!("handled before the settings are read"),
            Command::Ingest { feeds, quotes } => {
                let store = connect_and_migrate(&settings).await.map_err(|e| e.to_string())?;
                let ingest = Ingest::new(store, &settings);
                let mut all_succeeded = true;
                if !quotes {
                    all_succeeded &= print_feed_poll(&ingest).await;
                }
                if !feeds {
                    all_succeeded &= print_quote_poll(&ingest).await?;
                }
                if all_succeeded { Ok(()) } else { Err("some sources failed (see above)".into()) }
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", printable(&error.to_string()));
            ExitCode::FAILURE
        }
    }
}

fn hash_password() -> ExitCode {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        eprintln!("Password (shown as you type; or pipe it in), then Enter:");
    }
    let mut password = String::new();
    if let Err(error) = std::io::stdin().lock().read_line(&mut password) {
        eprintln!("error: cannot read the password: {error}");
        return ExitCode::FAILURE;
    }
    let password = password.trim_end_matches(['\r', '\n']);
    if password.chars().count() < MIN_PASSWORD_CHARS {
        eprintln!("error: the password must be at least {MIN_PASSWORD_CHARS} characters");
        return ExitCode::FAILURE;
    }
    match tickermail::web::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}", printable(&error.to_string()));
            ExitCode::FAILURE
        }
    }
}

fn print_digest_outcome(frequency: DigestFrequency, outcome: &DigestOutcome) {
    match outcome {
        DigestOutcome::WouldSend { recipients, stories } => {
            println!(
                "dry run: the {frequency} digest would go to {recipients} readers, from {} stories; nothing was sent",
                stories.len()
            );
            for story in stories.iter().take(10) {
                println!("  {}  {}", story.published_at.format("%Y-%m-%d %H:%M"), printable(&story.title));
            }
        }
        DigestOutcome::UnderWay { .. } => {}
        DigestOutcome::NobodyDue => {
            println!("{frequency} digest: no confirmed reader has anything new; nothing was sent")
        }
        DigestOutcome::Sent { edition, created_in, progress, took } => println!(
            "{frequency} digest {}: {} recipients, {} sent, {} failed, {} suppressed, in {:.1}s \
             (edition created in {:.2}s)",
            edition.id,
            edition.recipients,
            progress.sent,
            progress.failed,
            progress.suppressed,
            took.as_secs_f64(),
            created_in.as_secs_f64()
        ),
    }
}

/// Prints one line per feed; true when none failed.
async fn print_feed_poll(ingest: &Ingest) -> bool {
    if ingest.feed_count() == 0 {
        println!("feeds: none configured (set FEED_URLS)");
        return true;
    }
    let mut all_succeeded = true;
    for report in ingest.poll_feeds().await {
        let outcome = match report.outcome {
            FeedOutcome::NotModified => "not modified since the last poll".to_string(),
            FeedOutcome::Polled { inserted, updated, unchanged, skipped, left_out } => {
                let mut line = format!("{inserted} new, {updated} updated, {unchanged} unchanged, {skipped} skipped");
                if left_out > 0 {
                    line += &format!(", {left_out} past FEED_MAX_ITEMS left out");
                }
                line
            }
            FeedOutcome::Failed(error) => {
                all_succeeded = false;
                format!("failed: {error}")
            }
        };
        println!("feed {}: {}", report.url, printable(&outcome.to_string()));
    }
    all_succeeded
}

/// Prints how many symbols were quoted and why others were not; true when none failed.
async fn print_quote_poll(ingest: &Ingest) -> Result<bool, String> {
    if ingest.quote_providers().is_empty() {
        println!("quotes: no provider configured (QUOTE_PROVIDERS=none)");
        return Ok(true);
    }
    let report = ingest.poll_quotes(None).await.map_err(|e| e.to_string())?;
    println!("quotes: {} stored, {} failed", report.stored.len(), report.failed.len());
    for (symbol, source) in &report.stored {
        println!("  {symbol}: from {source}");
    }
    for (symbol, reason) in &report.failed {
        println!("  {symbol}: {}", printable(&reason.to_string()));
    }
    Ok(report.failed.is_empty())
}

/// `text` with its control characters escaped (`\u{1b}`, `\n`): what a feed
/// or a quote provider said cannot forge lines or move a terminal's cursor.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_from_outside_cannot_forge_lines_or_drive_the_terminal() {
        let hostile = "No data\u{1b}[2J\nquotes: 99 stored\r\u{7}";
        assert_eq!(super::printable(hostile), "No data\\u{1b}[2J\\nquotes: 99 stored\\r\\u{7}");
        assert_eq!(super::printable("Société Générale — €1.2 bn"), "Société Générale — €1.2 bn");
    }
}
