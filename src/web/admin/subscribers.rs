//! The list: search and filter, one reader with their consent records and
//! history, unsubscribe, erase, and CSV export and import.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;
use uuid::Uuid;

use super::pages::{html, not_found, notice_page, see_other, unavailable};
use super::session::{AdminForm, AdminSession, NoFields, forbidden};
use crate::domain::{Subscriber, SubscriberStatus};
use crate::store::{ConsentRecord, DeliveryRecord, SubscriberRecord, SubscriberSummary};
use crate::web::AppState;
use crate::web::subscriber_csv::{self, ImportReport, MAX_IMPORT_BYTES};

const PAGE: u32 = 50;
const STATUSES: [&str; 4] = ["pending", "confirmed", "unsubscribed", "bounced"];

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

#[get("/admin/subscribers")]
pub(super) async fn subscribers_page(
    session: AdminSession,
    query: web::Query<SearchQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let status = match query.status.as_str() {
        "" => None,
        status => match status.parse::<SubscriberStatus>() {
            Ok(status) => Some(status),
            Err(message) => return notice_page(&state, StatusCode::BAD_REQUEST, "Unknown status", &message),
        },
    };
    let email = query.email.trim();
    match state.store.find_subscribers(email, status, &query.after, PAGE).await {
        Ok(found) => {
            let next_page = (found.len() == PAGE as usize).then(|| found.last()).flatten().map(|last| {
                serde_urlencoded::to_string([("email", email), ("status", &query.status), ("after", &last.email)])
                    .unwrap_or_default()
            });
            let page = SubscribersPage {
                site_name: &state.settings.site_name,
                csrf: &session.csrf,
                statuses: STATUSES,
                email,
                status: &query.status,
                found,
                next_page,
                import: None,
                importing: None,
            };
            html(StatusCode::OK, &page)
        }
        Err(error) => unavailable(&state, error),
    }
}

#[get("/admin/subscribers.csv")]
pub(super) async fn export_csv(_: AdminSession, state: web::Data<AppState>) -> HttpResponse {
    subscriber_csv::export_response(state.store.clone())
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
                return (fields, Some(subscriber_csv::too_large()));
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
#[post("/admin/subscribers/import")]
pub(super) async fn import_csv(
    session: AdminSession,
    form: Multipart,
    state: web::Data<AppState>,
) -> actix_web::Result<HttpResponse> {
    let (form, unreadable) = read_import_form(form).await;
    if !session.accepts(&state, &form.csrf) {
        return Err(forbidden(&state));
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
#[get("/admin/subscribers/imports/{id}")]
pub(super) async fn import_page(
    session: AdminSession,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(job) = Uuid::parse_str(&id).ok().and_then(|id| state.imports.get(id)) else {
        return not_found(&state, "import");
    };
    let outcome = job.outcome.lock().expect("not poisoned").clone();
    let mut page = SubscribersPage::with_import(&state, &session, outcome.clone());
    if outcome.is_none() {
        let rows = job.progress.rows.load(std::sync::atomic::Ordering::Relaxed);
        let written = job.progress.written.load(std::sync::atomic::Ordering::Relaxed);
        page.importing = Some((written, rows));
    }
    html(StatusCode::OK, &page)
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
            statuses: STATUSES,
            email: "",
            status: "",
            found: Vec::new(),
            next_page: None,
            import: outcome,
            importing: None,
        }
    }
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

#[get("/admin/subscribers/{id}")]
pub(super) async fn subscriber_page(
    session: AdminSession,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Ok(id) = Uuid::parse_str(&id) else { return not_found(&state, "subscriber") };
    match state.store.subscriber_record(id).await {
        Ok(None) => not_found(&state, "subscriber"),
        Ok(Some(SubscriberRecord { subscriber, consents, deliveries })) => html(
            StatusCode::OK,
            &SubscriberPage {
                site_name: &state.settings.site_name,
                csrf: &session.csrf,
                subscriber,
                consents,
                deliveries,
            },
        ),
        Err(error) => unavailable(&state, error),
    }
}

#[post("/admin/subscribers/{id}/unsubscribe")]
pub(super) async fn unsubscribe(
    _: AdminForm<NoFields>,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Ok(id) = Uuid::parse_str(&id) else { return not_found(&state, "subscriber") };
    match state.store.subscriber(id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(&state, "subscriber"),
        Err(error) => return unavailable(&state, error),
    }
    match state.store.unsubscribe(id).await {
        Ok(_) => see_other(format!("/admin/subscribers/{id}")),
        Err(error) => unavailable(&state, error),
    }
}

#[derive(Deserialize)]
pub(super) struct EraseInput {
    /// The reader's address typed again, so nobody is erased by a slip.
    #[serde(default)]
    confirm_email: String,
}

#[post("/admin/subscribers/{id}/erase")]
pub(super) async fn erase(
    form: AdminForm<EraseInput>,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Ok(id) = Uuid::parse_str(&id) else { return not_found(&state, "subscriber") };
    let subscriber = match state.store.subscriber(id).await {
        Ok(Some(subscriber)) => subscriber,
        Ok(None) => return not_found(&state, "subscriber"),
        Err(error) => return unavailable(&state, error),
    };
    if !form.form.confirm_email.trim().eq_ignore_ascii_case(&subscriber.email) {
        return notice_page(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nothing was erased",
            "Type the reader's address to confirm the erasure.",
        );
    }
    match crate::web::erasure::erase_reader(&state, id).await {
        Ok(_) => notice_page(
            &state,
            StatusCode::OK,
            "Erased",
            "The reader and all their personal data are gone; their deliveries are kept without it.",
        ),
        Err(error) => unavailable(&state, error),
    }
}
