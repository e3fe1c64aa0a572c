//! The subscribers pages: search and filter, one reader with their consent
//! records and history, unsubscribe, erase, and CSV export and import.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;

use super::export::export_response;
use super::import::{ImportReport, MAX_IMPORT_BYTES, too_large};
use super::{Search, erase_reader, next_after, record, subscriber, subscriber_id, unsubscribe_reader};
use crate::domain::{Subscriber, SubscriberStatus};
use crate::store::{ConsentRecord, DeliveryRecord, SubscriberRecord, SubscriberSummary};
use crate::web::AppState;
use crate::web::admin::pages::{AdminPageError, html, notice_page, see_other};
use crate::web::admin::service::ServiceError;
use crate::web::admin::session::{AdminForm, AdminSession, NoFields};

const PAGE: u32 = 50;

#[derive(Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    email: String,
    #[serde(default)]
    status: String,
    /// The last address of the previous page.
    #[serde(default)]
    after: String,
}

#[derive(Template)]
#[template(path = "admin/subscribers.html")]
struct SubscribersPage<'a> {
    site_name: &'a str,
    csrf: &'a str,
    statuses: [&'a str; 4],
    email: &'a str,
    status: &'a str,
    found: Vec<SubscriberSummary>,
    /// The query string of the next page, when there is one.
    next_page: Option<String>,
    import: Option<Result<ImportReport, String>>,
    /// An import under way: its rows written, of how many.
    importing: Option<(u64, u64)>,
}

impl<'a> SubscribersPage<'a> {
    /// The list page with an import's outcome above it.
    fn with_import(
        state: &'a AppState,
        session: &'a AdminSession,
        outcome: Option<Result<ImportReport, String>>,
    ) -> Self {
        SubscribersPage {
            site_name: &state.settings.site_name,
            csrf: &session.csrf,
            statuses: SubscriberStatus::ALL.map(SubscriberStatus::as_str),
            email: "",
            status: "",
            found: Vec::new(),
            next_page: None,
            import: outcome,
            importing: None,
        }
    }
}

#[get("/subscribers")]
pub(super) async fn subscribers_page(
    session: AdminSession,
    query: web::Query<SearchQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let search = Search::parse(&query.email, &query.status, &query.after)?;
    let found = search.page(&state.store, PAGE).await?;
    let next_page = next_after(&found, PAGE).map(|last| {
        serde_urlencoded::to_string([("email", search.email), ("status", &query.status), ("after", last)])
            .unwrap_or_default()
    });
    let page = SubscribersPage {
        found,
        next_page,
        email: search.email,
        status: &query.status,
        ..SubscribersPage::with_import(&state, &session, None)
    };
    Ok(html(StatusCode::OK, &page))
}

#[get("/subscribers.csv")]
pub(super) async fn export_csv(state: web::Data<AppState>) -> HttpResponse {
    export_response(state.store.clone())
}

/// The fields of the import form: its CSRF token, the consent box, and the file.
#[derive(Default)]
struct ImportForm {
    csrf: String,
    consent: bool,
    csv: Vec<u8>,
}

/// The fields read, and what stopped the reading if something did (the
/// token comes first in the form, so it is read even then).
async fn read_import_form(mut form: Multipart) -> (ImportForm, Option<String>) {
    let mut fields = ImportForm::default();
    while let Some(field) = form.next().await {
        let mut field = match field {
            Ok(field) => field,
            Err(error) => return (fields, Some(format!("The form could not be read: {error}"))),
        };
        let name = field.name().unwrap_or_default().to_string();
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(error) => return (fields, Some(format!("The form could not be read: {error}"))),
            };
            if value.len() + chunk.len() > MAX_IMPORT_BYTES {
                return (fields, Some(too_large()));
            }
            value.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "csrf" => fields.csrf = String::from_utf8_lossy(&value).into_owned(),
            "consent" => fields.consent = value == b"yes",
            "file" => fields.csv = value,
            _ => {}
        }
    }
    (fields, None)
}

/// Imports a CSV file posted from the subscribers page: the import runs in
/// the background, and its page follows it until the report.
#[post("/subscribers/import")]
pub(super) async fn import_csv(
    session: AdminSession,
    form: Multipart,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let (form, unreadable) = read_import_form(form).await;
    if !session.accepts(&state, &form.csrf) {
        return Err(AdminPageError::FormExpired);
    }
    let refusal = match unreadable {
        Some(message) => message,
        None if !form.consent => "Tick the box to confirm these people consented to get our emails.".into(),
        None => {
            let id = state.imports.start(state.store.clone(), form.csv);
            return Ok(see_other(format!("/admin/subscribers/imports/{id}")));
        }
    };
    Ok(html(StatusCode::UNPROCESSABLE_ENTITY, &SubscribersPage::with_import(&state, &session, Some(Err(refusal)))))
}

/// An import's progress while it runs (the page reloads itself), then its report.
#[get("/subscribers/imports/{id}")]
pub(super) async fn import_page(
    session: AdminSession,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let job = uuid::Uuid::parse_str(&id).ok().and_then(|id| state.imports.get(id));
    let job = job.ok_or(ServiceError::NoSuch("import"))?;
    let outcome = job.outcome.lock().expect("not poisoned").clone();
    let mut page = SubscribersPage::with_import(&state, &session, outcome.clone());
    if outcome.is_none() {
        let rows = job.progress.rows.load(std::sync::atomic::Ordering::Relaxed);
        let written = job.progress.written.load(std::sync::atomic::Ordering::Relaxed);
        page.importing = Some((written, rows));
    }
    Ok(html(StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "admin/subscriber.html")]
struct SubscriberPage<'a> {
    site_name: &'a str,
    csrf: &'a str,
    subscriber: Subscriber,
    consents: Vec<ConsentRecord>,
    deliveries: Vec<DeliveryRecord>,
}

#[get("/subscribers/{id}")]
pub(super) async fn subscriber_page(
    session: AdminSession,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let SubscriberRecord { subscriber, consents, deliveries } = record(&state, subscriber_id(&id)?).await?;
    let page =
        SubscriberPage { site_name: &state.settings.site_name, csrf: &session.csrf, subscriber, consents, deliveries };
    Ok(html(StatusCode::OK, &page))
}

#[post("/subscribers/{id}/unsubscribe")]
pub(super) async fn unsubscribe(
    _: AdminForm<NoFields>,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let id = subscriber_id(&id)?;
    unsubscribe_reader(&state, id).await?;
    Ok(see_other(format!("/admin/subscribers/{id}")))
}

#[derive(Deserialize)]
pub(super) struct EraseForm {
    /// The reader's address typed again, so nobody is erased by a slip.
    #[serde(default)]
    confirm_email: String,
}

#[post("/subscribers/{id}/erase")]
pub(super) async fn erase(
    form: AdminForm<EraseForm>,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminPageError> {
    let reader = subscriber(&state, subscriber_id(&id)?).await?;
    if !form.form.confirm_email.trim().eq_ignore_ascii_case(&reader.email) {
        return Err(AdminPageError::ErasureNotConfirmed);
    }
    erase_reader(&state, reader.id).await?;
    Ok(notice_page(
        &state,
        StatusCode::OK,
        "Erased",
        "The reader and all their personal data are gone; their deliveries are kept without it.",
    ))
}
