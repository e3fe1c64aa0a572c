//! The HTTP side: public pages, the sign-up API, health checks, the admin
//! pages and the admin API.

mod admin;
mod client_ip;
mod pages;
mod rate_limit;
mod request_log;
mod routes;
mod site_name;
mod slow_clients;
mod validation;

use std::sync::Arc;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::web::{self, ServiceConfig};
use tokio::sync::Notify;

pub use admin::hash_password;
pub use rate_limit::IpLimiter;
pub use request_log::RequestSpan;
pub use site_name::with_site_name;
pub use slow_clients::ClientGuard;

use crate::config::Settings;
use crate::store::{SignupWriter, Store};
use crate::tokens::TokenKey;

/// Bodies of public requests are small forms; anything larger is refused with 413.
pub const PUBLIC_BODY_LIMIT: usize = 16 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub tokens: TokenKey,
    pub signup_limiter: IpLimiter,
    pub login_limiter: IpLimiter,
    pub signups: SignupWriter,
    /// Nudges the delivery worker when something was queued.
    pub worker_wakeup: Arc<Notify>,
    /// Whether the delivery worker runs (it is started again if it dies).
    pub worker_running: Arc<std::sync::atomic::AtomicBool>,
    pub test_sender: Arc<crate::jobs::test_send::TestSender>,
    /// The transport, for what erasing a reader removes from the outbox folder.
    pub mailer: crate::mailer::Mailer,
    /// CSV imports started from the admin pages.
    pub imports: admin::ImportJobs,
}

pub fn configure(config: &mut ServiceConfig) {
    routes::configure(config);
    admin::configure(config);
    config.default_service(web::to(pages::not_found));
}

/// Headers every response carries. Pages use no scripts, and links carry
/// tokens, so no referrer is ever sent. With an https `BASE_URL` browsers are
/// told to use nothing else for a year (a TLS-terminating proxy passes it on).
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"));
    if https { headers.add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000")) } else { headers }
}
