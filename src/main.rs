use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tickermail::config::Settings;
use tickermail::startup::{Application, connect_and_migrate};
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
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
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
