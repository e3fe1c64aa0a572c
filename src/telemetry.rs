use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// What is logged unless `RUST_LOG` says otherwise: our own lines at info,
/// the crates' we build on only when they warn.
const DEFAULT_FILTER: &str = "warn,tickermail=info";

/// Logs to stdout, filtered by `RUST_LOG` (default `DEFAULT_FILTER`):
/// human-readable on a terminal, JSON otherwise, unless `LOG_FORMAT` says which.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let json = match format {
        LogFormat::Auto => !std::io::stdout().is_terminal(),
        LogFormat::Json => true,
        LogFormat::Pretty => false,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // A second initialisation (tests start many apps in one process) is harmless.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
