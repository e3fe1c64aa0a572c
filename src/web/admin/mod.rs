//! The admin pages under `/admin`, behind a login. Each page does what an
//! admin API route does, through the same store and jobs.

mod dashboard;
mod editions;
mod login;
mod pages;
pub mod preview;
mod session;
mod stories;
mod subscribers;

use actix_web::web::ServiceConfig;

pub use dashboard::Dashboard;
pub use login::hash_password;
pub use preview::Preview;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(login::login_form)
        .service(login::login)
        .service(login::logout)
        .service(dashboard::dashboard_page)
        .service(preview::preview_page)
        .service(preview::preview_html)
        .service(preview::test_send_form)
        .service(preview::test_send)
        .service(editions::editions_page)
        .service(editions::confirm_edition)
        .service(editions::create_edition)
        .service(editions::edition_page)
        .service(editions::control_edition)
        .service(subscribers::export_csv)
        .service(subscribers::import_csv)
        .service(subscribers::import_page)
        .service(subscribers::subscribers_page)
        .service(subscribers::subscriber_page)
        .service(subscribers::unsubscribe)
        .service(subscribers::erase)
        .service(stories::stories_page)
        .service(stories::add_story)
        .service(stories::hide_story);
}
