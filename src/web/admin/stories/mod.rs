//! Stories: the newest (hidden ones too) with hide and show, and a story
//! added by hand on the page or pushed by the site's CMS over the API.

mod api;
mod pages;

use actix_web::web::ServiceConfig;
use uuid::Uuid;

use super::service::{self, ServiceError};
use crate::web::AppState;

pub(super) fn configure(config: &mut ServiceConfig) {
    config
        .service(pages::stories_page)
        .service(pages::add_story)
        .service(pages::hide_story)
        .service(api::push_story)
        .service(api::list_stories)
        .service(api::hide_story);
}

/// Keeps a story out of digests and the public API (`hidden`), or brings it back.
async fn set_hidden(state: &AppState, id: &str, hidden: bool) -> Result<Uuid, ServiceError> {
    let id = service::id(id, "story")?;
    if state.store.set_story_hidden(id, hidden).await? { Ok(id) } else { Err(ServiceError::NoSuch("story")) }
}
