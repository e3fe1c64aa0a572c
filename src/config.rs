//! Settings from the environment (and an optional `.env`), parsed once at
//! start-up. A bad value stops start-up with one line naming the variable.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::SecretString;
use url::Url;

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// JSON when stdout is not a terminal, human-readable when it is.
    Auto,
    Json,
    Pretty,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte (usually port 465).
    ImplicitTls,
    /// `smtp://`: STARTTLS required (usually port 587).
    StartTls,
    /// `smtp://…?tls=none`: plain text, for a relay on the same host or network.
    None,
}

#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// The most one wait on the server, and one message's transaction, may take.
    pub timeout: Duration,
    /// Trusted besides the web and system roots (`SMTP_CA_FILE`): a relay
    /// with a certificate from a company's own CA.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The header a reverse proxy reports the client's address in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    XForwardedFor,
    /// RFC 7239: `Forwarded: for=…`.
    Forwarded,
}

/// Where a request's client address comes from.
#[derive(Debug, Clone)]
pub struct ClientAddressSettings {
    /// `None`: the connection's peer is the client.
    pub header: Option<ProxyHeader>,
    /// Peers, and hops named in the header, whose word is taken.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl ClientAddressSettings {
    pub fn is_trusted(&self, address: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|network| network.contains(&address))
    }
}

/// The one admin account of the admin pages.
#[derive(Clone)]
pub struct AdminLogin {
    /// Lower case.
    pub email: String,
    /// An argon2 hash in PHC form (`$argon2id$v=19$...`), checked at start-up.
    pub password_hash: SecretString,
}

impl std::fmt::Debug for AdminLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminLogin").field("email", &self.email).finish_non_exhaustive()
    }
}

/// Where mail goes: an SMTP server, or `.eml` files in a folder.
#[derive(Debug, Clone)]
pub enum MailTransportSettings {
    Smtp(SmtpSettings),
    Outbox(PathBuf),
}

/// A quote provider, as `QUOTE_PROVIDERS` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteProvider {
    Yahoo,
    Finnhub,
    AlphaVantage,
    Stooq,
}

impl QuoteProvider {
    pub const ALL: [QuoteProvider; 4] =
        [QuoteProvider::Yahoo, QuoteProvider::Finnhub, QuoteProvider::AlphaVantage, QuoteProvider::Stooq];

    pub fn name(self) -> &'static str {
        match self {
            QuoteProvider::Yahoo => "yahoo",
            QuoteProvider::Finnhub => "finnhub",
            QuoteProvider::AlphaVantage => "alphavantage",
            QuoteProvider::Stooq => "stooq",
        }
    }

    pub fn default_base_url(self) -> &'static str {
        match self {
            QuoteProvider::Yahoo => "https://query1.finance.yahoo.com",
            QuoteProvider::Finnhub => "https://finnhub.io/api/v1",
            QuoteProvider::AlphaVantage => "https://www.alphavantage.co",
            QuoteProvider::Stooq => "https://stooq.com",
        }
    }

    /// The variable that holds its key, and whether the key is required.
    pub fn api_key_variable(self) -> Option<(&'static str, bool)> {
        match self {
            QuoteProvider::Yahoo => None,
            QuoteProvider::Finnhub => Some(("FINNHUB_API_KEY", true)),
            QuoteProvider::AlphaVantage => Some(("ALPHAVANTAGE_API_KEY", true)),
            QuoteProvider::Stooq => Some(("STOOQ_API_KEY", false)),
        }
    }

    /// The variable that overrides its base URL (tests point it at a local server).
    pub fn base_url_variable(self) -> &'static str {
        match self {
            QuoteProvider::Yahoo => "YAHOO_BASE_URL",
            QuoteProvider::Finnhub => "FINNHUB_BASE_URL",
            QuoteProvider::AlphaVantage => "ALPHAVANTAGE_BASE_URL",
            QuoteProvider::Stooq => "STOOQ_BASE_URL",
        }
    }
}

impl FromStr for QuoteProvider {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|kind| kind.name().eq_ignore_ascii_case(name.trim())).ok_or_else(|| {
            format!(
                "'{}' is not a quote provider; use {}",
                name.chars().filter(|c| !c.is_control()).take(40).collect::<String>().trim(),
                Self::ALL.map(QuoteProvider::name).join(", ")
            )
        })
    }
}

/// One provider of `QUOTE_PROVIDERS`, with its key and base URL.
#[derive(Debug, Clone)]
pub struct QuoteProviderSettings {
    pub kind: QuoteProvider,
    pub base_url: Url,
    pub api_key: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub database_url: String,
    pub bind: SocketAddr,
    /// Absolute, without a trailing slash.
    pub base_url: String,
    /// `BASE_URL` was not set: the application derives it from the address it
    /// actually listens on (which differs from `BIND` for port 0).
    pub base_url_from_bind: bool,
    pub site_name: String,
    pub mail_from: lettre::message::Mailbox,
    pub mail_transport: MailTransportSettings,
    pub secret_key: Option<SecretString>,
    pub admin_token: Option<SecretString>,
    /// The admin pages' login; `None` until `ADMIN_EMAIL` and `ADMIN_PASSWORD_HASH` are set.
    pub admin_login: Option<AdminLogin>,
    /// How long an admin stays logged in.
    pub admin_session_ttl: Duration,
    /// Login attempts allowed per client IP per minute.
    pub admin_login_attempts_per_minute: u32,
    pub log_format: LogFormat,
    /// Sign-ups allowed per client IP per hour; 0 turns the limit off.
    pub signup_limit_per_hour: u32,
    /// Where the client address of the limits and the consent record comes from.
    pub client_address: ClientAddressSettings,
    /// How long a request may take to send its body…
    pub body_timeout: Duration,
    /// …and an admin CSV import, which may be megabytes.
    pub import_body_timeout: Duration,
    /// Requests one client address may have in progress at once; 0 for no cap.
    pub max_connections_per_client: u32,
    pub confirmation_ttl: Duration,
    /// A repeated sign-up of a pending address sends another confirmation
    /// only after this long, so a form cannot be used to flood an inbox.
    pub confirmation_resend_interval: Duration,
    pub send_concurrency: usize,
    /// Messages per second over all recipients; 0 for no limit.
    pub send_rate: u32,
    /// Messages per second to one recipient domain; 0 for no limit.
    pub send_rate_per_domain: u32,
    pub send_batch_size: u32,
    pub send_max_attempts: u32,
    pub send_retry_base: Duration,
    /// How long a claimed delivery is this worker's alone.
    pub send_lease: Duration,
    pub list_protection: ListProtection,
    pub worker_poll_interval: Duration,
    /// RSS/Atom feeds to poll for stories.
    pub feed_urls: Vec<Url>,
    pub feed_poll_interval: Duration,
    pub feed_max_bytes: usize,
    /// The most items taken from one feed in one poll (the newest).
    pub feed_max_items: usize,
    /// Whether a feed may redirect to a loopback, link-local or private address.
    pub feed_allow_private: bool,
    /// Timeout of each request to a feed or a quote provider.
    pub fetch_timeout: Duration,
    /// Quote providers in the order they are tried.
    pub quote_providers: Vec<QuoteProviderSettings>,
    pub quote_poll_interval: Duration,
    /// A quote that moved more than this (up, or down to less than 1/(1 + this/100)) is stored as suspect.
    pub quote_max_move_percent: f64,
    /// Cron times and dates in emails are in this zone.
    pub time_zone: chrono_tz::Tz,
    /// `None` when set to `off`: the edition is then made only on demand.
    pub digest_schedule: Option<croner::Cron>,
    pub weekly_digest_schedule: Option<croner::Cron>,
    /// A slot that fires later than this after its time is skipped, not sent late.
    pub digest_max_lateness: Duration,
    /// Send readers with no new story their watchlist's moves anyway.
    pub digest_send_empty: bool,
    /// Stories stored this recently wait for the next edition.
    pub digest_story_settle: Duration,
    /// When price moves are checked against readers' thresholds (cron, in
    /// `time_zone`; `None` when set to `off`).
    pub alert_schedule: Option<croner::Cron>,
    /// Quotes older than this never alert (a closed market's last price).
    pub alert_max_quote_age: Duration,
    /// Signs every message when `DKIM_SELECTOR`, `DKIM_DOMAIN` and `DKIM_PRIVATE_KEY_FILE` are set.
    pub dkim: Option<DkimSettings>,
}

/// DKIM signing: whose key, and the file it is in (read at start-up).
#[derive(Debug, Clone)]
pub struct DkimSettings {
    pub selector: String,
    pub domain: String,
    pub key_file: PathBuf,
}

const SECRET_KEY_MIN_LEN: usize = 32;

/// What a lease must leave beyond the longest send: time to record the outcome.
const MIN_LEASE_MARGIN: Duration = Duration::from_secs(10);

/// When an edition pauses itself to protect the list and the sender's name.
#[derive(Debug, Clone, Copy)]
pub struct ListProtection {
    /// Permanent failures above this share of its sends and failures…
    pub failure_percent: f64,
    /// …once at least this many went either way.
    pub min_attempts: u32,
    /// Or this many policy, relay or authentication refusals one after another (0: never).
    pub refusals_in_a_row: u32,
}

impl Settings {
    /// Reads the process environment, after loading `.env` if there is one.
    pub fn from_env() -> Result<Self, ConfigError> {
        if let Err(error) = dotenvy::dotenv()
            && !error.not_found()
        {
            return Err(ConfigError { variable: ".env", message: error.to_string() });
        }
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_lookup(|name| vars.get(name).cloned())
    }

    /// Parses settings from any source of variables (the tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars(&lookup);
        let environment = match vars.text("APP_ENV").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                return Err(vars.error("APP_ENV", format!("'{other}' is not development or production")));
            }
        };
        let bind: SocketAddr = vars.parsed("BIND", "127.0.0.1:8080".parse().unwrap())?;
        let (base_url, base_url_from_bind) = match vars.text("BASE_URL") {
            Some(raw) => (parse_base_url(&raw).map_err(|m| vars.error("BASE_URL", m))?, false),
            None => (format!("http://{bind}"), true),
        };
        let smtp_timeout = vars.seconds_at_least_one("SMTP_TIMEOUT_SECONDS", 60)?;
        let smtp_extra_roots = smtp_ca_roots(&vars)?;
        let mail_transport = match vars.text("SMTP_URL") {
            Some(raw) => MailTransportSettings::Smtp(SmtpSettings {
                extra_roots: smtp_extra_roots,
                ..parse_smtp_url(&raw, smtp_timeout).map_err(|m| vars.error("SMTP_URL", m))?
            }),
            None => MailTransportSettings::Outbox(PathBuf::from(
                vars.text("MAIL_OUTBOX_DIR").unwrap_or_else(|| "./outbox".into()),
            )),
        };
        let mail_from = vars.text("MAIL_FROM").unwrap_or_else(|| "tickermail <tickermail@localhost>".into());
        let mail_from = mail_from.parse().map_err(|e| {
            vars.error("MAIL_FROM", format!("'{mail_from}' is not a mailbox like 'News <news@example.com>': {e}"))
        })?;
        let secret_key = match vars.text("SECRET_KEY") {
            Some(key) if key.len() < SECRET_KEY_MIN_LEN => {
                return Err(vars.error(
                    "SECRET_KEY",
                    format!("must be at least {SECRET_KEY_MIN_LEN} characters; make one with `openssl rand -hex 32`"),
                ));
            }
            Some(key) => Some(SecretString::from(key)),
            None if environment == Environment::Production => {
                return Err(vars.error(
                    "SECRET_KEY",
                    "is required when APP_ENV=production; make one with `openssl rand -hex 32` and keep it: changing it breaks every link already emailed".into(),
                ));
            }
            None => None,
        };
        let admin_token = match vars.text("ADMIN_TOKEN") {
            Some(token) if token.len() < 16 => {
                return Err(vars.error(
                    "ADMIN_TOKEN",
                    "must be at least 16 characters; make one with `openssl rand -hex 32`".into(),
                ));
            }
            token => token.map(SecretString::from),
        };
        let admin_login = admin_login(&vars)?;
        let log_format = match vars.text("LOG_FORMAT").as_deref() {
            None | Some("auto") => LogFormat::Auto,
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => return Err(vars.error("LOG_FORMAT", format!("'{other}' is not auto, json or pretty"))),
        };
        let send_concurrency: usize = vars.parsed("SEND_CONCURRENCY", 4)?;
        if send_concurrency == 0 {
            return Err(vars.error("SEND_CONCURRENCY", "must be at least 1".into()));
        }
        let send_batch_size: u32 = vars.parsed("SEND_BATCH_SIZE", 200)?;
        if send_batch_size == 0 {
            return Err(vars.error("SEND_BATCH_SIZE", "must be at least 1".into()));
        }
        // A message is sent only while its lease covers the longest its send
        // can take (its own transaction, and the one before it, which may
        // carry its envelope), with time left to record the outcome.
        let send_lease = Duration::from_secs(vars.parsed("SEND_LEASE_SECONDS", 300)?);
        let shortest_lease = 2 * smtp_timeout + MIN_LEASE_MARGIN;
        if send_lease < shortest_lease {
            return Err(vars.error(
                "SEND_LEASE_SECONDS",
                format!(
                    "must be at least {} (twice SMTP_TIMEOUT_SECONDS, {}, plus {}): a send can take that long, and a shorter lease would let another worker send the message again meanwhile",
                    shortest_lease.as_secs(),
                    smtp_timeout.as_secs(),
                    MIN_LEASE_MARGIN.as_secs()
                ),
            ));
        }
        let list_protection = ListProtection {
            failure_percent: vars.parsed("EDITION_PAUSE_FAILURE_PERCENT", 5.0)?,
            min_attempts: vars.parsed("EDITION_PAUSE_MIN_ATTEMPTS", 200)?,
            refusals_in_a_row: vars.parsed("EDITION_PAUSE_REFUSALS_IN_A_ROW", 10)?,
        };
        if !(list_protection.failure_percent > 0.0 && list_protection.failure_percent <= 100.0) {
            return Err(vars.error("EDITION_PAUSE_FAILURE_PERCENT", "must be a percentage above 0, at most 100".into()));
        }
        let feed_urls = match vars.text("FEED_URLS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(parse_http_url)
                .collect::<Result<_, _>>()
                .map_err(|m| vars.error("FEED_URLS", m))?,
        };
        let quote_providers = quote_providers(&vars)?;
        let quote_max_move_percent: f64 = vars.parsed("QUOTE_MAX_MOVE_PERCENT", 300.0)?;
        if !(quote_max_move_percent.is_finite() && quote_max_move_percent > 0.0) {
            return Err(vars.error("QUOTE_MAX_MOVE_PERCENT", "must be a percentage above 0, like 300".into()));
        }
        let dkim = dkim_settings(&vars)?;
        let time_zone = match vars.text("TIMEZONE") {
            None => chrono_tz::America::New_York,
            Some(name) => name
                .parse()
                .map_err(|_| vars.error("TIMEZONE", format!("'{name}' is not an IANA time zone like Europe/Oslo")))?,
        };
        Ok(Settings {
            environment,
            database_url: vars.text("DATABASE_URL").unwrap_or_else(|| "sqlite://tickermail.db".into()),
            bind,
            base_url,
            base_url_from_bind,
            site_name: vars.text("SITE_NAME").unwrap_or_else(|| "Stock News".into()),
            mail_from,
            mail_transport,
            secret_key,
            admin_token,
            admin_login,
            admin_session_ttl: Duration::from_secs(3600 * vars.parsed::<u64>("ADMIN_SESSION_HOURS", 12)?),
            admin_login_attempts_per_minute: vars.parsed("ADMIN_LOGIN_ATTEMPTS_PER_MINUTE", 5)?,
            log_format,
            signup_limit_per_hour: vars.parsed("SIGNUP_LIMIT_PER_HOUR", 10)?,
            client_address: client_address(&vars)?,
            body_timeout: vars.seconds_at_least_one("BODY_TIMEOUT_SECONDS", 10)?,
            import_body_timeout: vars.seconds_at_least_one("IMPORT_BODY_TIMEOUT_SECONDS", 120)?,
            max_connections_per_client: vars.parsed("MAX_CONNECTIONS_PER_CLIENT", 32)?,
            confirmation_ttl: Duration::from_secs(3600 * vars.parsed::<u64>("CONFIRMATION_TTL_HOURS", 168)?),
            confirmation_resend_interval: Duration::from_secs(vars.parsed("CONFIRMATION_RESEND_SECONDS", 300)?),
            send_concurrency,
            send_rate: vars.parsed("SEND_RATE", 0)?,
            send_rate_per_domain: vars.parsed("SEND_RATE_PER_DOMAIN", 0)?,
            send_batch_size,
            send_max_attempts: vars.parsed("SEND_MAX_ATTEMPTS", 8)?,
            send_retry_base: Duration::from_secs(vars.parsed("SEND_RETRY_BASE_SECONDS", 30)?),
            send_lease,
            list_protection,
            worker_poll_interval: Duration::from_millis(vars.parsed("WORKER_POLL_MS", 1000)?),
            feed_urls,
            feed_poll_interval: vars.seconds_at_least_one("FEED_POLL_SECONDS", 600)?,
            feed_max_bytes: vars.parsed("FEED_MAX_BYTES", 5 * 1024 * 1024)?,
            feed_max_items: match vars.parsed("FEED_MAX_ITEMS", 200)? {
                0 => return Err(vars.error("FEED_MAX_ITEMS", "must be at least 1".into())),
                items => items,
            },
            feed_allow_private: vars.flag("FEED_ALLOW_PRIVATE", false)?,
            fetch_timeout: vars.seconds_at_least_one("FETCH_TIMEOUT_SECONDS", 20)?,
            quote_providers,
            quote_poll_interval: vars.seconds_at_least_one("QUOTE_POLL_SECONDS", 900)?,
            quote_max_move_percent,
            time_zone,
            digest_schedule: vars.schedule("DIGEST_SCHEDULE", "30 17 * * 1-5")?,
            weekly_digest_schedule: vars.schedule("WEEKLY_DIGEST_SCHEDULE", "0 9 * * 6")?,
            digest_max_lateness: Duration::from_secs(60 * vars.parsed::<u64>("DIGEST_MAX_LATENESS_MINUTES", 120)?),
            digest_send_empty: vars.flag("DIGEST_SEND_EMPTY", false)?,
            digest_story_settle: Duration::from_secs(vars.parsed("DIGEST_STORY_SETTLE_SECONDS", 30)?),
            alert_schedule: vars.schedule("ALERT_SCHEDULE", "*/5 * * * *")?,
            alert_max_quote_age: Duration::from_secs(60 * vars.parsed::<u64>("ALERT_MAX_QUOTE_AGE_MINUTES", 30)?),
            dkim,
        })
    }
}

struct Vars<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Vars<'_, F> {
    /// A variable's value; set but empty counts as unset.
    fn text(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    fn error(&self, variable: &'static str, message: String) -> ConfigError {
        ConfigError { variable, message }
    }

    fn parsed<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.text(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e| self.error(name, format!("'{raw}' is not valid: {e}"))),
        }
    }

    fn seconds_at_least_one(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        match self.parsed(name, default)? {
            0 => Err(self.error(name, "must be at least 1".into())),
            seconds => Ok(Duration::from_secs(seconds)),
        }
    }

    /// A cron pattern, or `off` for a job that never runs by itself.
    fn schedule(&self, name: &'static str, default: &str) -> Result<Option<croner::Cron>, ConfigError> {
        let pattern = self.text(name).unwrap_or_else(|| default.into());
        if pattern.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        pattern.parse().map(Some).map_err(|e| {
            self.error(
                name,
                format!(
                    "'{pattern}' is not a cron pattern like '30 17 * * 1-5' (minute hour day month weekday) or off: {e}"
                ),
            )
        })
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.text(name).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => Err(self.error(name, format!("'{other}' is not true or false"))),
        }
    }
}

fn admin_login<F: Fn(&str) -> Option<String>>(vars: &Vars<'_, F>) -> Result<Option<AdminLogin>, ConfigError> {
    match (vars.text("ADMIN_EMAIL"), vars.text("ADMIN_PASSWORD_HASH")) {
        (None, None) => Ok(None),
        (Some(email), Some(hash)) => {
            let email = crate::domain::SubscriberEmail::parse(&email).map_err(|m| vars.error("ADMIN_EMAIL", m))?;
            argon2::PasswordHash::new(&hash).map_err(|e| {
                vars.error(
                    "ADMIN_PASSWORD_HASH",
                    format!("is not an argon2 hash ({e}); make one with `tickermail admin hash-password`"),
                )
            })?;
            Ok(Some(AdminLogin { email: email.as_ref().to_lowercase(), password_hash: SecretString::from(hash) }))
        }
        (Some(_), None) => Err(vars.error(
            "ADMIN_PASSWORD_HASH",
            "is needed with ADMIN_EMAIL; make one with `tickermail admin hash-password`".into(),
        )),
        (None, Some(_)) => Err(vars.error("ADMIN_EMAIL", "is needed with ADMIN_PASSWORD_HASH".into())),
    }
}

fn client_address<F: Fn(&str) -> Option<String>>(vars: &Vars<'_, F>) -> Result<ClientAddressSettings, ConfigError> {
    let header = match vars.text("TRUST_PROXY_HEADERS").map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("0" | "false" | "no" | "off") => None,
        // `true` meant X-Forwarded-For before `forwarded` could be chosen.
        Some("1" | "true" | "yes" | "on" | "x-forwarded-for") => Some(ProxyHeader::XForwardedFor),
        Some("forwarded") => Some(ProxyHeader::Forwarded),
        Some(other) => {
            return Err(vars.error(
                "TRUST_PROXY_HEADERS",
                format!("'{other}' is not false, true (the same as x-forwarded-for) or forwarded"),
            ));
        }
    };
    let list = vars.text("TRUSTED_PROXIES").unwrap_or_else(|| "127.0.0.0/8,::1".into());
    let trusted_proxies = list
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry.parse::<ipnet::IpNet>().or_else(|_| entry.parse::<IpAddr>().map(ipnet::IpNet::from)).map_err(|_| {
                vars.error("TRUSTED_PROXIES", format!("'{entry}' is not an IP address or a network like 10.0.0.0/8"))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(ClientAddressSettings { header, trusted_proxies })
}

fn parse_base_url(raw: &str) -> Result<String, String> {
    let url = Url::parse(raw).map_err(|e| format!("'{raw}' is not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("'{raw}' must be an http:// or https:// URL with a host"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn parse_http_url(raw: &str) -> Result<Url, String> {
    match Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(format!("'{raw}' is not an http:// or https:// URL")),
    }
}

/// `QUOTE_PROVIDERS` (default `yahoo`; `none` for none) with each one's key
/// and base URL.
fn quote_providers<F: Fn(&str) -> Option<String>>(
    vars: &Vars<'_, F>,
) -> Result<Vec<QuoteProviderSettings>, ConfigError> {
    let list = vars.text("QUOTE_PROVIDERS").unwrap_or_else(|| "yahoo".into());
    if list.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut providers: Vec<QuoteProviderSettings> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind: QuoteProvider = name.parse().map_err(|m| vars.error("QUOTE_PROVIDERS", m))?;
        if providers.iter().any(|p| p.kind == kind) {
            continue;
        }
        let api_key = match kind.api_key_variable() {
            None => None,
            Some((variable, required)) => match vars.text(variable) {
                Some(key) => Some(SecretString::from(key)),
                None if required => {
                    return Err(vars.error(variable, format!("is required when QUOTE_PROVIDERS names {name}")));
                }
                None => None,
            },
        };
        let base_variable = kind.base_url_variable();
        let base_url = vars.text(base_variable).unwrap_or_else(|| kind.default_base_url().into());
        let base_url = parse_http_url(&base_url).map_err(|m| vars.error(base_variable, m))?;
        providers.push(QuoteProviderSettings { kind, base_url, api_key });
    }
    Ok(providers)
}

/// DKIM signing: all three variables, or none.
fn dkim_settings<F: Fn(&str) -> Option<String>>(vars: &Vars<'_, F>) -> Result<Option<DkimSettings>, ConfigError> {
    let names = ["DKIM_SELECTOR", "DKIM_DOMAIN", "DKIM_PRIVATE_KEY_FILE"];
    let values = names.map(|name| vars.text(name));
    let [Some(selector), Some(domain), Some(key_file)] = values.clone() else {
        return match names.iter().zip(&values).find(|(_, value)| value.is_none()) {
            Some((missing, _)) if values.iter().any(Option::is_some) => Err(vars.error(
                missing,
                "is required with the other DKIM settings (DKIM_SELECTOR, DKIM_DOMAIN, DKIM_PRIVATE_KEY_FILE)".into(),
            )),
            _ => Ok(None),
        };
    };
    Ok(Some(DkimSettings { selector, domain, key_file: key_file.into() }))
}

/// `SMTP_CA_FILE`: PEM certificates to trust besides the web and system
/// roots. Read even without `SMTP_URL`, so a wrong path shows at once.
fn smtp_ca_roots<F: Fn(&str) -> Option<String>>(
    vars: &Vars<'_, F>,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let Some(path) = vars.text("SMTP_CA_FILE") else { return Ok(Vec::new()) };
    let error = |message: String| vars.error("SMTP_CA_FILE", message);
    let pem = std::fs::read(&path).map_err(|e| error(format!("cannot read {path}: {e}")))?;
    let roots = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("{path} is not PEM: {e}")))?;
    if roots.is_empty() {
        return Err(error(format!("{path} holds no certificate (-----BEGIN CERTIFICATE----- blocks)")));
    }
    for root in &roots {
        rustls::RootCertStore::empty()
            .add(root.clone())
            .map_err(|e| error(format!("{path} holds a certificate that cannot be trusted as a root: {e}")))?;
    }
    Ok(roots)
}

fn parse_smtp_url(raw: &str, timeout: Duration) -> Result<SmtpSettings, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL like smtp://user:pass@host:587 ({e})"))?;
    let host = url.host_str().ok_or("has no host")?.to_string();
    let tls = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.into_owned());
    let security = match (url.scheme(), tls.as_deref()) {
        ("smtps", None | Some("implicit")) => SmtpSecurity::ImplicitTls,
        ("smtp", None | Some("starttls" | "required")) => SmtpSecurity::StartTls,
        ("smtp", Some("none")) => SmtpSecurity::None,
        ("smtp" | "smtps", Some(other)) => return Err(format!("tls={other} is not one of starttls, none")),
        (scheme, _) => return Err(format!("scheme '{scheme}' is not smtp or smtps")),
    };
    let default_port = match security {
        SmtpSecurity::ImplicitTls => 465,
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::None => 25,
    };
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
    };
    let username = (!url.username().is_empty()).then(|| decode(url.username()));
    let password = url.password().map(|p| SecretString::from(decode(p)));
    Ok(SmtpSettings {
        host,
        port: url.port().unwrap_or(default_port),
        security,
        username,
        password,
        timeout,
        extra_roots: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_give_a_local_sqlite_and_outbox_setup() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database_url, "sqlite://tickermail.db");
        assert_eq!(s.base_url, "http://127.0.0.1:8080");
        assert!(matches!(s.mail_transport, MailTransportSettings::Outbox(ref p) if p.ends_with("outbox")));
    }

    #[test]
    fn the_example_env_file_parses_and_gives_valid_settings() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example");
        let vars: HashMap<String, String> =
            dotenvy::from_path_iter(path).unwrap().collect::<Result<_, _>>().expect(".env.example parses");
        assert_eq!(vars["SITE_NAME"], "Stock News");
        let s = Settings::from_lookup(|name| vars.get(name).cloned()).expect("its values are valid");
        assert_eq!(s.site_name, "Stock News");
    }

    #[test]
    fn smtp_urls_select_the_security_mode() {
        let starttls = parse_smtp_url("smtp://ann:p%40ss@mail.example.com", Duration::from_secs(60)).unwrap();
        assert_eq!((starttls.security, starttls.port), (SmtpSecurity::StartTls, 587));
        assert_eq!(starttls.username.as_deref(), Some("ann"));
        use secrecy::ExposeSecret;
        assert_eq!(starttls.password.unwrap().expose_secret(), "p@ss");
        let implicit = parse_smtp_url("smtps://mail.example.com", Duration::from_secs(60)).unwrap();
        assert_eq!((implicit.security, implicit.port), (SmtpSecurity::ImplicitTls, 465));
        let plain = parse_smtp_url("smtp://127.0.0.1:2525?tls=none", Duration::from_secs(60)).unwrap();
        assert_eq!((plain.security, plain.port), (SmtpSecurity::None, 2525));
        assert!(parse_smtp_url("http://mail.example.com", Duration::from_secs(60)).is_err());
        assert!(parse_smtp_url("smtp://mail.example.com?tls=maybe", Duration::from_secs(60)).is_err());
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (var, value) in [
            ("BIND", "localhost"),
            ("BASE_URL", "example.com"),
            ("SMTP_URL", "mail.example.com"),
            ("MAIL_FROM", "not a mailbox"),
            ("SECRET_KEY", "short"),
            ("SEND_CONCURRENCY", "0"),
            ("SIGNUP_LIMIT_PER_HOUR", "-1"),
            ("TRUST_PROXY_HEADERS", "maybe"),
            ("TRUST_PROXY_HEADERS", "x-real-ip"),
            ("TRUSTED_PROXIES", "10.0.0.0/33"),
            ("TRUSTED_PROXIES", "127.0.0.1, proxy.internal"),
            ("BODY_TIMEOUT_SECONDS", "0"),
            ("IMPORT_BODY_TIMEOUT_SECONDS", "soon"),
            ("MAX_CONNECTIONS_PER_CLIENT", "many"),
            ("APP_ENV", "staging"),
            ("FEED_URLS", "https://ok.example/feed/, ftp://files.example/feed"),
            ("QUOTE_PROVIDERS", "yahoo,bloomberg"),
            ("FEED_POLL_SECONDS", "0"),
            ("YAHOO_BASE_URL", "localhost:8080"),
            ("TIMEZONE", "Mars/Olympus"),
            ("DIGEST_SCHEDULE", "at five"),
            ("QUOTE_MAX_MOVE_PERCENT", "0"),
            ("QUOTE_MAX_MOVE_PERCENT", "NaN"),
            ("FEED_MAX_ITEMS", "0"),
            ("FEED_ALLOW_PRIVATE", "maybe"),
        ] {
            let error = settings(&[(var, value)]).unwrap_err();
            assert_eq!(error.variable, var);
            assert!(error.to_string().starts_with(var));
        }
    }

    #[test]
    fn a_lease_shorter_than_the_longest_send_is_refused_at_start() {
        let error = settings(&[("SEND_LEASE_SECONDS", "5")]).unwrap_err();
        assert_eq!(error.variable, "SEND_LEASE_SECONDS");
        assert!(error.to_string().contains("at least 130"), "{error}");
        let error = settings(&[("SEND_LEASE_SECONDS", "11"), ("SMTP_TIMEOUT_SECONDS", "1")]).unwrap_err();
        assert!(error.to_string().contains("at least 12"), "{error}");
        assert!(settings(&[("SEND_LEASE_SECONDS", "12"), ("SMTP_TIMEOUT_SECONDS", "1")]).is_ok());
    }

    #[test]
    fn a_schedule_set_to_off_never_runs_by_itself() {
        let s = settings(&[("DIGEST_SCHEDULE", "off"), ("ALERT_SCHEDULE", "OFF")]).unwrap();
        assert!(s.digest_schedule.is_none() && s.alert_schedule.is_none());
        assert!(s.weekly_digest_schedule.is_some(), "the others keep their default");
    }

    #[test]
    fn a_quote_provider_that_needs_a_key_cannot_be_named_without_it() {
        let error = settings(&[("QUOTE_PROVIDERS", "finnhub, yahoo")]).unwrap_err();
        assert_eq!(error.variable, "FINNHUB_API_KEY");
        let s = settings(&[("QUOTE_PROVIDERS", "Finnhub, yahoo"), ("FINNHUB_API_KEY", "k")]).unwrap();
        let kinds: Vec<_> = s.quote_providers.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [QuoteProvider::Finnhub, QuoteProvider::Yahoo]);
        assert!(settings(&[("QUOTE_PROVIDERS", "none")]).unwrap().quote_providers.is_empty());
    }

    #[test]
    fn dkim_needs_all_three_settings() {
        assert_eq!(settings(&[("DKIM_SELECTOR", "mail")]).unwrap_err().variable, "DKIM_DOMAIN");
        let all = [("DKIM_SELECTOR", "mail"), ("DKIM_DOMAIN", "news.example"), ("DKIM_PRIVATE_KEY_FILE", "/k")];
        assert_eq!(settings(&all).unwrap().dkim.unwrap().key_file, PathBuf::from("/k"));
        assert!(settings(&[]).unwrap().dkim.is_none());
    }

    #[test]
    fn smtp_ca_file_must_be_readable_and_hold_certificates() {
        let write = |contents: &str| {
            let path = std::env::temp_dir().join(format!("tickermail-ca-{}.pem", uuid::Uuid::new_v4().simple()));
            std::fs::write(&path, contents).unwrap();
            path.to_string_lossy().to_string()
        };
        let ca = || {
            let mut params = rcgen::CertificateParams::default();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem()
        };
        let two = write(&format!("{}{}", ca(), ca()));
        let s = settings(&[("SMTP_URL", "smtp://mail.example.com"), ("SMTP_CA_FILE", &two)]).unwrap();
        let MailTransportSettings::Smtp(smtp) = s.mail_transport else { panic!("SMTP_URL is set") };
        assert_eq!(smtp.extra_roots.len(), 2);

        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        for (path, says) in [
            ("/no/such/ca.pem".to_string(), "cannot read /no/such/ca.pem"),
            (write("not a certificate"), "no certificate"),
            (write(garbage), "cannot be trusted as a root"),
        ] {
            let error = settings(&[("SMTP_URL", "smtp://mail.example.com"), ("SMTP_CA_FILE", &path)]).unwrap_err();
            assert_eq!(error.variable, "SMTP_CA_FILE");
            assert!(error.message.contains(says), "{error}");
        }
    }

    #[test]
    fn production_requires_a_secret_key_and_says_how_to_make_one() {
        let error = settings(&[("APP_ENV", "production")]).unwrap_err();
        assert_eq!(error.variable, "SECRET_KEY");
        assert!(error.message.contains("openssl rand"));
    }
}
