//! Builds the application from its settings: database, mailer, web server,
//! delivery worker and scheduler, and runs them until a shutdown signal.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use secrecy::SecretString;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

use crate::web::{AppState, ClientGuard, IpLimiter, PUBLIC_BODY_LIMIT, RequestSpan, configure, security_headers};

use crate::config::{ConfigError, DkimSettings, Environment, Settings};
use crate::domain::{DigestFrequency, Story};
use crate::jobs::alerts::{AlertReport, check_alerts};
use crate::jobs::digest::{DigestRules, manual_run};
use crate::jobs::ingest::Ingest;
use crate::jobs::scheduler::{self, AlertSchedule, DigestSchedules, PollIntervals};
use crate::jobs::supervise::supervise;
use crate::jobs::test_send::{TestKind, TestSendError, TestSender};
use crate::jobs::worker::{DeliveryWorker, WorkerSettings};
use crate::mailer::{DkimSigner, EmailLinks, Mailer};
use crate::store::{DeliveryProgress, EditionCreated, EditionOutcome, SignupWriter, Store};
use crate::tokens::TokenKey;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("DATABASE_URL: {0}")]
    Database(#[from] crate::store::StoreError),
    #[error("BIND: cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("{0}")]
    Mailer(String),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("scheduler: {0}")]
    Scheduler(#[from] tokio_cron_scheduler::JobSchedulerError),
}

/// Connects to the database and applies pending migrations.
pub async fn connect_and_migrate(settings: &Settings) -> Result<Store, StartupError> {
    let store = Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    Ok(store)
}

/// The key for token HMACs: `SECRET_KEY`, or outside production a key
/// generated once and kept in the database so links survive restarts. That
/// key is as safe as the database, which matters once others can reach us.
pub async fn token_key(settings: &Settings, store: &Store) -> Result<TokenKey, StartupError> {
    if let Some(key) = &settings.secret_key {
        return Ok(TokenKey::new(key.clone()));
    }
    debug_assert_eq!(settings.environment, Environment::Development);
    let candidate = hex::encode(rand::random::<[u8; 32]>());
    let key = store.get_or_create_secret("secret_key", &candidate).await?;
    if settings.bind.ip().is_loopback() {
        tracing::info!("SECRET_KEY is not set: using a generated key kept in the database (fine for local use)");
    } else {
        tracing::warn!(
            bind = %settings.bind,
            "SECRET_KEY is not set and the server listens beyond this machine: the generated key is kept in the database, so whoever can read the database can forge links and admin sessions; set SECRET_KEY (`openssl rand -hex 32`)"
        );
    }
    Ok(TokenKey::new(SecretString::from(key)))
}

/// What every email is made with: the site's links, its sender, and the
/// DKIM signer, whose key is read here so a bad key stops the start.
pub fn email_links(settings: &Settings) -> Result<EmailLinks, StartupError> {
    Ok(EmailLinks {
        site_name: settings.site_name.clone(),
        base_url: settings.base_url.clone(),
        from: settings.mail_from.clone(),
        time_zone: settings.time_zone,
        dkim: dkim_signer(settings.dkim.as_ref())?,
    })
}

fn dkim_signer(dkim: Option<&DkimSettings>) -> Result<Option<Arc<DkimSigner>>, StartupError> {
    let Some(dkim) = dkim else { return Ok(None) };
    let file = dkim.key_file.display();
    let error = |message| StartupError::Config(ConfigError { variable: "DKIM_PRIVATE_KEY_FILE", message });
    let key = std::fs::read_to_string(&dkim.key_file).map_err(|e| error(format!("cannot read {file}: {e}")))?;
    let signer = DkimSigner::new(&dkim.selector, &dkim.domain, &key).map_err(|m| error(format!("{file}: {m}")))?;
    Ok(Some(Arc::new(signer)))
}

pub struct Application {
    port: u16,
    /// What the start-up line says: where to open it, and what it uses.
    url: String,
    database: String,
    transport: String,
    server: Server,
    store: Store,
    worker: JoinHandle<()>,
    stop_background: CancellationToken,
    scheduler: tokio_cron_scheduler::JobScheduler,
}

impl Application {
    pub async fn build(mut settings: Settings) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(settings.bind)
            .map_err(|source| StartupError::Bind { addr: settings.bind.to_string(), source })?;
        let local_addr =
            listener.local_addr().map_err(|source| StartupError::Bind { addr: settings.bind.to_string(), source })?;
        if settings.base_url_from_bind {
            settings.base_url = format!("http://{local_addr}");
        }
        let port = local_addr.port();
        let store = connect_and_migrate(&settings).await?;
        let tokens = token_key(&settings, &store).await?;
        let mailer = Mailer::new(&settings.mail_transport, settings.send_concurrency).map_err(StartupError::Mailer)?;
        let links = email_links(&settings)?;
        let wakeup = Arc::new(Notify::new());
        let stop_background = CancellationToken::new();

        let test_sender = Arc::new(TestSender::new(
            store.clone(),
            mailer.clone(),
            links.clone(),
            tokens.clone(),
            DigestRules::from_settings(&settings),
            settings.confirmation_ttl,
        ));
        let worker = DeliveryWorker::new(
            store.clone(),
            mailer.clone(),
            links,
            tokens.clone(),
            WorkerSettings::from_settings(&settings),
            wakeup.clone(),
        );
        let worker_running = Arc::new(AtomicBool::new(false));
        let worker = tokio::spawn(supervise("delivery worker", worker_running.clone(), stop_background.clone(), {
            let stop = stop_background.clone();
            move || worker.clone().run(stop.clone())
        }));
        let ingest = Arc::new(Ingest::new(store.clone(), &settings));
        let every = PollIntervals { feeds: settings.feed_poll_interval, quotes: settings.quote_poll_interval };
        let digests = DigestSchedules::from_settings(&settings);
        let alerts = AlertSchedule {
            schedule: settings.alert_schedule.clone(),
            time_zone: settings.time_zone,
            max_quote_age: settings.alert_max_quote_age,
        };
        let scheduler = scheduler::start(store.clone(), ingest, every, digests, alerts).await?;

        let signup_limiter = IpLimiter::per_hour(settings.signup_limit_per_hour);
        let login_limiter = IpLimiter::per_minute(settings.admin_login_attempts_per_minute);
        for limiter in [&signup_limiter, &login_limiter] {
            tokio::spawn(forget_idle_clients(limiter.clone(), stop_background.clone()));
        }

        let resend_interval = settings.confirmation_resend_interval;
        let (url, database, transport) =
            (settings.base_url.clone(), database_for_logs(&settings.database_url), mailer.describe());
        let client_guard = ClientGuard::new(&settings);
        let https = settings.base_url.starts_with("https://");
        let state = web::Data::new(AppState {
            store: store.clone(),
            settings: Arc::new(settings),
            tokens,
            signup_limiter,
            login_limiter,
            signups: SignupWriter::start(store.clone(), resend_interval),
            worker_wakeup: wakeup,
            worker_running,
            test_sender,
            imports: Default::default(),
            mailer,
        });
        let server = HttpServer::new(move || {
            let client_guard = client_guard.clone();
            App::new()
                .wrap(actix_web::middleware::from_fn(move |request, next| {
                    let client_guard = client_guard.clone();
                    async move { client_guard.check(request, next).await }
                }))
                .wrap(actix_web::middleware::from_fn(crate::web::with_site_name))
                .wrap(security_headers(https))
                .wrap(TracingLogger::<RequestSpan>::new())
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(PUBLIC_BODY_LIMIT))
                .app_data(web::FormConfig::default().limit(PUBLIC_BODY_LIMIT))
                .configure(configure)
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind { addr: format!("port {port}"), source })?
        .shutdown_timeout(30)
        .run();
        Ok(Self { port, url, database, transport, server, store, worker, stop_background, scheduler })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until SIGINT/SIGTERM: the server stops accepting and finishes
    /// in-flight requests, then the worker finishes its batch.
    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        tracing::info!(
            url = %self.url,
            database = %self.database,
            mail = %self.transport,
            "tickermail is serving; open the URL to sign up, /admin to manage"
        );
        let served = self.server.await;
        tracing::info!("shutting down: finishing in-flight sends");
        self.stop_background.cancel();
        if let Err(error) = self.scheduler.shutdown().await {
            tracing::warn!(%error, "scheduler did not stop cleanly");
        }
        if let Err(error) = self.worker.await {
            tracing::error!(%error, "delivery worker ended abnormally");
        }
        self.store.close().await;
        served
    }
}

/// The database URL without its password.
fn database_for_logs(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => database_url.to_string(),
    }
}

async fn forget_idle_clients(limiter: IpLimiter, stop: CancellationToken) {
    let mut interval = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = interval.tick() => limiter.forget_idle(),
        }
    }
}

/// What `tickermail digest` did.
pub enum DigestOutcome {
    /// `--dry-run`: how many readers it would go to, and the stories it would snapshot.
    WouldSend { recipients: i64, stories: Vec<Story> },
    /// Nothing was created: an edition of this frequency is still going out.
    UnderWay { edition_id: uuid::Uuid },
    /// Nothing was created: no reader has anything new.
    NobodyDue,
    Sent {
        edition: EditionCreated,
        /// How long creating the edition (and queueing its deliveries) took.
        created_in: Duration,
        progress: DeliveryProgress,
        took: Duration,
    },
}

/// Creates a digest edition now (the same rules as the schedule, under a
/// one-off slot) and delivers it with a worker of its own, returning once
/// every delivery is sent, failed or suppressed. A server running beside it
/// shares the work safely: deliveries are leased.
pub async fn run_digest_now(
    settings: &Settings,
    frequency: DigestFrequency,
    dry_run: bool,
) -> Result<DigestOutcome, StartupError> {
    let store = connect_and_migrate(settings).await?;
    let now = crate::store::now();
    let run = manual_run(frequency, now, DigestRules::from_settings(settings));
    if dry_run {
        let (recipients, stories) = store.preview_digest(&run).await?;
        return Ok(DigestOutcome::WouldSend { recipients, stories });
    }
    let started = std::time::Instant::now();
    let edition = match store.create_digest_edition(&run).await? {
        EditionOutcome::Created(edition) => edition,
        EditionOutcome::UnderWay { edition_id } => return Ok(DigestOutcome::UnderWay { edition_id }),
        EditionOutcome::NobodyDue => return Ok(DigestOutcome::NobodyDue),
        EditionOutcome::SlotTaken => {
            return Err(crate::store::StoreError::Corrupt("a new one-off digest slot was already taken".into()).into());
        }
    };
    let created_in = started.elapsed();
    let worker = delivery_worker(settings, &store).await?;
    let progress = drain(&worker, settings, || store.edition_progress(edition.id)).await?;
    Ok(DigestOutcome::Sent { edition, created_in, progress, took: started.elapsed() })
}

/// What `tickermail alerts` did: the check, and (unless a dry run) how its alerts were delivered.
pub struct AlertsOutcome {
    pub report: AlertReport,
    pub progress: Option<DeliveryProgress>,
    pub took: Duration,
}

/// Runs the price-alert check now and delivers what it queued, like `run_digest_now`.
pub async fn run_alerts_now(settings: &Settings, dry_run: bool) -> Result<AlertsOutcome, StartupError> {
    let store = connect_and_migrate(settings).await?;
    let started = std::time::Instant::now();
    let report = check_alerts(&store, crate::store::now(), settings.alert_max_quote_age, dry_run).await?;
    let progress = if dry_run {
        None
    } else {
        let worker = delivery_worker(settings, &store).await?;
        Some(drain(&worker, settings, || store.deliveries_progress(&report.queued)).await?)
    };
    Ok(AlertsOutcome { report, progress, took: started.elapsed() })
}

/// A delivery worker of a command's own.
async fn delivery_worker(settings: &Settings, store: &Store) -> Result<DeliveryWorker, StartupError> {
    let tokens = token_key(settings, store).await?;
    let mailer = Mailer::new(&settings.mail_transport, settings.send_concurrency).map_err(StartupError::Mailer)?;
    Ok(DeliveryWorker::new(
        store.clone(),
        mailer,
        email_links(settings)?,
        tokens,
        WorkerSettings::from_settings(settings),
        Arc::new(Notify::new()),
    ))
}

/// Works the outbox until `progress` says every delivery is sent, failed or suppressed.
async fn drain<F, Fut>(
    worker: &DeliveryWorker,
    settings: &Settings,
    progress: F,
) -> Result<DeliveryProgress, StartupError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<DeliveryProgress, crate::store::StoreError>>,
{
    let never = CancellationToken::new();
    loop {
        // While there is work to claim, claim it; count only when there is none.
        if worker.run_until_idle(&never).await? == 0 {
            let now = progress().await?;
            if now.is_done() {
                return Ok(now);
            }
            tokio::time::sleep(settings.worker_poll_interval).await;
        }
    }
}

/// `tickermail send-test`: one test message now, with the SMTP server's answer.
pub async fn send_test_now(
    settings: &Settings,
    to: &crate::domain::SubscriberEmail,
    kind: TestKind,
) -> Result<String, String> {
    let store = connect_and_migrate(settings).await.map_err(|e| e.to_string())?;
    let tokens = token_key(settings, &store).await.map_err(|e| e.to_string())?;
    let mailer = Mailer::new(&settings.mail_transport, 1)?;
    let links = email_links(settings).map_err(|e| e.to_string())?;
    let sender =
        TestSender::new(store, mailer, links, tokens, DigestRules::from_settings(settings), settings.confirmation_ttl);
    sender.send(to, kind).await.map_err(|e: TestSendError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dkim_key_that_cannot_be_read_or_is_no_key_stops_the_start() {
        let dkim = |key_file: &std::path::Path| DkimSettings {
            selector: "mail".into(),
            domain: "news.example".into(),
            key_file: key_file.to_path_buf(),
        };
        let error = dkim_signer(Some(&dkim("/no/such/key".as_ref()))).unwrap_err();
        assert!(error.to_string().starts_with("DKIM_PRIVATE_KEY_FILE: cannot read /no/such/key"), "{error}");
        let garbage = std::env::temp_dir().join(format!("tickermail-bad-{}.key", uuid::Uuid::new_v4().simple()));
        std::fs::write(&garbage, "not a key").unwrap();
        let error = dkim_signer(Some(&dkim(&garbage))).unwrap_err();
        assert!(error.to_string().contains("Ed25519"), "{error}");
        assert!(dkim_signer(None).unwrap().is_none());
    }
}
