//! The admin surface under `/admin`: the pages (behind a login) and the JSON
//! API under `/admin/api` (behind the admin token), side by side in a module
//! per resource, on the same services. The whole scope is behind `access`.

mod access;
mod api;
mod dashboard;
mod editions;
mod idempotency;
mod login;
mod pages;
mod preview;
mod quotes;
mod service;
mod session;
mod stories;
mod subscribers;

use actix_web::middleware::from_fn;
use actix_web::web::{self, ServiceConfig};

pub use login::hash_password;
pub use subscribers::ImportJobs;

pub fn configure(config: &mut ServiceConfig) {
    config.service(
        web::scope("/admin")
            .wrap(from_fn(access::require_admin))
            .app_data(api::json_config())
            .configure(login::configure)
            .configure(dashboard::configure)
            .configure(preview::configure)
            .configure(editions::configure)
            .configure(subscribers::configure)
            .configure(stories::configure)
            .configure(quotes::configure),
    );
}
