//! The site's name while a request is served, for the pages an error renders:
//! `ResponseError::error_response` is given the error alone, not the request.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::AppState;
use crate::config::Settings;

tokio::task_local! {
    static SETTINGS: Arc<Settings>;
}

/// Middleware: serves the request with its app's settings at hand for `site_name`.
pub async fn with_site_name(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let settings = request.app_data::<web::Data<AppState>>().expect("app state is configured").settings.clone();
    SETTINGS.scope(settings, next.call(request)).await
}

/// The name of the site serving this request: empty outside `with_site_name`,
/// which a debug build takes for the bug it is.
pub fn site_name() -> String {
    let name = SETTINGS.try_with(|settings| settings.site_name.clone());
    debug_assert!(name.is_ok(), "a page was rendered outside with_site_name");
    name.unwrap_or_default()
}
