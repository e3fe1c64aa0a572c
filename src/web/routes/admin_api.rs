//! The admin JSON API, behind `Authorization: Bearer $ADMIN_TOKEN`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{
    StoredQuote, SubscriberEmail, Ticker, in_major_unit, major_unit, plausible_price, plausible_range,
};
use crate::jobs::digest::{DigestRules, manual_run, on_demand_frequency};
use crate::jobs::test_send::{TestKind, TestSendError};
use crate::sources::{RawStory, clean_story};
use crate::store::{
    EditionAction, EditionControl, EditionOutcome, IdempotencyKey, IdempotencyScope, StoreError, StoryUpsert,
};
use crate::web::admin::Preview;
use crate::web::admin_auth::AdminApi;
use crate::web::{AppState, Dashboard};

pub(super) fn unavailable(error: StoreError) -> HttpResponse {
    tracing::error!(%error, "admin API request failed");
    HttpResponse::ServiceUnavailable().json(json!({ "error": "The database is unavailable; try again shortly." }))
}

/// A field of a pushed item that cannot be accepted; answered with 422.
struct InvalidField {
    /// Position in a pushed array.
    index: Option<usize>,
    field: &'static str,
    message: String,
}

fn invalid(index: Option<usize>, field: &'static str, message: String) -> InvalidField {
    InvalidField { index, field, message }
}

impl InvalidField {
    fn response(self) -> HttpResponse {
        HttpResponse::UnprocessableEntity()
            .json(json!({ "error": self.message, "field": self.field, "index": self.index }))
    }
}

/// Subscribers by status and the outbox by kind and status.
#[get("/admin/api/stats")]
pub(super) async fn stats(_: AdminApi, state: web::Data<AppState>) -> HttpResponse {
    let counts =
        async { Ok::<_, StoreError>((state.store.subscriber_counts().await?, state.store.delivery_counts().await?)) };
    match counts.await {
        Ok((subscribers, deliveries)) => HttpResponse::Ok().json(json!({
            "subscribers": subscribers.into_iter().map(|(status, count)| (status.as_str(), count)).collect::<std::collections::BTreeMap<_, _>>(),
            "deliveries": deliveries,
        })),
        Err(error) => unavailable(error),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QuoteInput {
    symbol: String,
    /// Read as any JSON value so that a string or `null` is answered with the field's name.
    price: serde_json::Value,
    previous_close: serde_json::Value,
    as_of: DateTime<Utc>,
    currency: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            Self::One(item) => vec![item],
            Self::Many(items) => items,
        }
    }
}

/// Quotes the far future cannot have; a clock a little ahead is tolerated.
const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

fn parse_quote(input: QuoteInput, index: Option<usize>, max_move_percent: f64) -> Result<StoredQuote, InvalidField> {
    let symbol = Ticker::parse(&input.symbol).map_err(|m| invalid(index, "symbol", m))?;
    // Pence, cents and agorot are kept in pounds, rand and shekels.
    let (currency, divisor) = match input.currency.as_deref().map(major_unit) {
        None => (None, 1.0),
        Some(Some((code, divisor))) => (Some(code), divisor),
        Some(None) => return Err(invalid(index, "currency", "currency must be a 3-letter code like USD".into())),
    };
    let price = |field: &'static str, value: &serde_json::Value| {
        value.as_f64().map(|v| in_major_unit(v, divisor)).and_then(plausible_price).ok_or_else(|| {
            invalid(index, field, format!("{field} must be a number {} (in major units)", plausible_range()))
        })
    };
    let (price, previous_close) = (price("price", &input.price)?, price("previous_close", &input.previous_close)?);
    if input.as_of > Utc::now() + MAX_CLOCK_SKEW {
        return Err(invalid(index, "as_of", "as_of is in the future".into()));
    }
    Ok(StoredQuote {
        symbol: symbol.as_str().to_string(),
        price,
        previous_close,
        currency,
        as_of: input.as_of,
        source: "api".into(),
        suspect: StoredQuote::is_suspect_move(price, previous_close, max_move_percent),
    })
}

/// Quotes pushed by the site's own data pipeline: one object or an array.
/// All are checked before any is saved.
#[post("/admin/api/quotes")]
pub(super) async fn push_quotes(
    _: AdminApi,
    body: web::Json<OneOrMany<QuoteInput>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let inputs = body.into_inner().into_vec();
    let many = inputs.len() > 1;
    let mut quotes = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        match parse_quote(input, many.then_some(index), state.settings.quote_max_move_percent) {
            Ok(quote) => quotes.push(quote),
            Err(invalid) => return invalid.response(),
        }
    }
    for quote in &quotes {
        if let Err(error) = state.store.save_quote(quote).await {
            return unavailable(error);
        }
    }
    HttpResponse::Ok().json(json!({ "saved": quotes.len(), "quotes": quotes }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoryInput {
    title: String,
    url: String,
    published_at: DateTime<Utc>,
    author: Option<String>,
    /// Plain text or HTML; either way only its text is kept.
    summary: Option<String>,
    /// The story's body, for finding its tickers and, without a summary, its summary.
    html: Option<String>,
    #[serde(default)]
    tickers: Vec<String>,
    /// The CMS's own id; without one the url identifies the story.
    guid: Option<String>,
}

/// A story pushed by the site's CMS. Pushing the same guid again updates it
/// in place: 201 when it was new, 200 otherwise, with the story as stored.
#[post("/admin/api/stories")]
pub(super) async fn push_story(_: AdminApi, body: web::Json<StoryInput>, state: web::Data<AppState>) -> HttpResponse {
    let input = body.into_inner();
    let raw = RawStory {
        guid: input.guid,
        source: "api".into(),
        title: input.title,
        url: input.url,
        author: input.author,
        summary_html: input.summary,
        body_html: input.html,
        categories: Vec::new(),
        tickers: input.tickers,
        published_at: Some(input.published_at),
    };
    let story = match clean_story(raw, crate::store::now()) {
        Ok(story) => story,
        Err(error) => return invalid(None, error.field, error.message).response(),
    };
    match state.store.upsert_story(&story).await {
        Ok((outcome, stored)) => {
            let mut response =
                if outcome == StoryUpsert::Inserted { HttpResponse::Created() } else { HttpResponse::Ok() };
            let outcome = match outcome {
                StoryUpsert::Inserted => "inserted",
                StoryUpsert::Updated => "updated",
                StoryUpsert::Unchanged => "unchanged",
            };
            response.json(json!({ "outcome": outcome, "story": stored }))
        }
        Err(error) => unavailable(error),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TestSendInput {
    to: String,
    kind: String,
}

const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// An answer to record against an `Idempotency-Key`, or one that is not
/// (the database failed: a repeat may try again).
type Answer = Result<(StatusCode, serde_json::Value), HttpResponse>;

/// Runs `act` once per `Idempotency-Key` of `scope` when the request has
/// one: a repeat gets the first answer, and a 409 while the first is still
/// under way. Without a key, `act` runs every time.
async fn once_per_key<Fut: std::future::Future<Output = Answer>>(
    request: &HttpRequest,
    state: &AppState,
    scope: IdempotencyScope,
    act: impl FnOnce() -> Fut,
) -> HttpResponse {
    let key = match request.headers().get("Idempotency-Key").map(|v| v.to_str().map(str::trim)) {
        None => None,
        Some(Ok(key)) if !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY_LEN => Some(key.to_string()),
        Some(_) => {
            return HttpResponse::BadRequest().json(json!({
                "error": format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible characters.")
            }));
        }
    };
    if let Some(key) = &key {
        match state.store.claim_idempotency_key(scope, key).await {
            Ok(IdempotencyKey::New) => {}
            Ok(IdempotencyKey::Seen(Some((status, answer)))) => {
                return HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
                    .content_type("application/json")
                    .body(answer);
            }
            Ok(IdempotencyKey::Seen(None)) => {
                return HttpResponse::Conflict()
                    .json(json!({ "error": "A request with this Idempotency-Key is still under way." }));
            }
            Err(error) => return unavailable(error),
        }
    }
    let answer = act().await;
    if let Some(key) = &key {
        let recorded = match &answer {
            Ok((status, body)) => {
                state.store.record_idempotent_answer(scope, key, status.as_u16(), &body.to_string()).await
            }
            Err(_) => state.store.release_idempotency_key(scope, key).await,
        };
        if let Err(error) = recorded {
            tracing::error!(%error, "could not record the answer to an Idempotency-Key");
        }
    }
    match answer {
        Ok((status, body)) => HttpResponse::build(status).json(body),
        Err(response) => response,
    }
}

/// Sends a `[TEST]` digest, alert, confirmation or welcome email to any
/// address now, and answers with what SMTP said: 200 when it was accepted,
/// 502 with the server's reply when not, 409 when there is nothing to put in
/// it yet. With an `Idempotency-Key`, a repeat gets the first answer and
/// sends nothing.
#[post("/admin/api/test-send")]
pub(super) async fn test_send(
    _: AdminApi,
    request: HttpRequest,
    body: web::Json<TestSendInput>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let to = match SubscriberEmail::parse(&body.to) {
        Ok(to) => to,
        Err(message) => return invalid(None, "to", message).response(),
    };
    let kind: TestKind = match body.kind.parse() {
        Ok(kind) => kind,
        Err(message) => return invalid(None, "kind", message).response(),
    };
    once_per_key(&request, &state, IdempotencyScope::TestSend, || async {
        Ok(match state.test_sender.send(&to, kind).await {
            Ok(subject) => {
                (StatusCode::OK, json!({ "sent": true, "to": to.as_str(), "kind": body.kind, "subject": subject }))
            }
            Err(TestSendError::Refused(reply)) => (
                StatusCode::BAD_GATEWAY,
                json!({ "sent": false, "error": "The SMTP server did not accept the message.", "reply": reply }),
            ),
            Err(TestSendError::NothingToSend(message)) => {
                (StatusCode::CONFLICT, json!({ "sent": false, "error": message }))
            }
            Err(TestSendError::Render(message)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, json!({ "sent": false, "error": message, "field": "to" }))
            }
            Err(TestSendError::Store(error)) => return Err(unavailable(error)),
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EditionInput {
    /// `daily` (the default) or `weekly`.
    frequency: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// Runs a digest now, by the same rules as the schedule: 201 with the new
/// edition (the delivery worker sends it), or with `dry_run` 200 with how
/// many readers it would go to and its stories. 409 while an edition of that
/// frequency is still going out. With an `Idempotency-Key`, a repeat gets the
/// first answer and creates nothing.
#[post("/admin/api/editions")]
pub(super) async fn create_edition(
    _: AdminApi,
    request: HttpRequest,
    body: web::Json<EditionInput>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(frequency) = on_demand_frequency(body.frequency.as_deref().unwrap_or("daily")) else {
        return invalid(None, "frequency", "frequency must be daily or weekly".into()).response();
    };
    let run = manual_run(frequency, crate::store::now(), DigestRules::from_settings(&state.settings));
    if body.dry_run {
        return match state.store.preview_digest(&run).await {
            Ok((recipients, stories)) => HttpResponse::Ok().json(json!({
                "dry_run": true,
                "recipients": recipients,
                "stories": stories.iter().map(|s| json!({"title": s.title, "url": s.url})).collect::<Vec<_>>(),
            })),
            Err(error) => unavailable(error),
        };
    }
    once_per_key(&request, &state, IdempotencyScope::Edition, || async {
        Ok(match state.store.create_digest_edition(&run).await {
            Ok(EditionOutcome::Created(created)) => {
                state.worker_wakeup.notify_one();
                (
                    StatusCode::CREATED,
                    json!({
                        "id": created.id, "frequency": frequency.as_str(), "recipients": created.recipients,
                        "stories": created.stories, "quotes": created.quotes,
                    }),
                )
            }
            Ok(EditionOutcome::UnderWay { edition_id }) => (
                StatusCode::CONFLICT,
                json!({
                    "error": format!("The {} edition {edition_id} is still going out (or paused): let it finish, or cancel it first.", frequency.as_str()),
                    "edition": edition_id,
                }),
            ),
            Ok(EditionOutcome::NobodyDue) => (
                StatusCode::OK,
                json!({
                    "id": null, "frequency": frequency.as_str(), "recipients": 0,
                    "message": "No confirmed reader has a story they have not had yet: no edition was made.",
                }),
            ),
            Ok(EditionOutcome::SlotTaken) => (StatusCode::CONFLICT, json!({ "error": "That run was already made." })),
            Err(error) => return Err(unavailable(error)),
        })
    })
    .await
}

/// An edition's deliveries by status: `done` once none is queued or being sent.
#[get("/admin/api/editions/{id}")]
pub(super) async fn edition_progress(_: AdminApi, id: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return HttpResponse::NotFound().json(json!({ "error": "No such edition." }));
    };
    match state.store.edition_progress(id).await {
        Ok(progress) if progress == Default::default() => {
            HttpResponse::NotFound().json(json!({ "error": "No such edition, or it had no readers." }))
        }
        Ok(progress) => {
            HttpResponse::Ok().json(json!({ "id": id, "done": progress.is_done(), "deliveries": progress }))
        }
        Err(error) => unavailable(error),
    }
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    limit: Option<u32>,
}

/// The most items (stories, quotes, editions) one list answers with.
const MAX_LISTED: u32 = 200;

impl ListQuery {
    /// `?limit=` (default 50), if it is from 1 to `MAX_LISTED`.
    fn limit(&self) -> Option<u32> {
        Some(self.limit.unwrap_or(50)).filter(|limit| (1..=MAX_LISTED).contains(limit))
    }

    fn refused() -> HttpResponse {
        HttpResponse::BadRequest().json(json!({ "error": format!("limit must be from 1 to {MAX_LISTED}.") }))
    }
}

/// The newest stories, hidden ones too (`hidden: true`).
#[get("/admin/api/stories")]
pub(super) async fn list_stories(
    _: AdminApi,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(limit) = query.limit() else { return ListQuery::refused() };
    match state.store.all_recent_stories(limit).await {
        Ok(stories) => HttpResponse::Ok().json(json!({ "stories": stories })),
        Err(error) => unavailable(error),
    }
}

/// `POST /admin/api/stories/{id}/hide` keeps a story out of digests and the
/// public API; `…/show` brings it back.
#[post("/admin/api/stories/{id}/{action:hide|show}")]
pub(super) async fn hide_story(
    _: AdminApi,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return HttpResponse::NotFound().json(json!({ "error": "No such story." }));
    };
    let hidden = action == "hide";
    match state.store.set_story_hidden(id, hidden).await {
        Ok(true) => HttpResponse::Ok().json(json!({ "id": id, "hidden": hidden })),
        Ok(false) => HttpResponse::NotFound().json(json!({ "error": "No such story." })),
        Err(error) => unavailable(error),
    }
}

/// What the dashboard page shows, as JSON.
#[get("/admin/api/dashboard")]
pub(super) async fn dashboard(_: AdminApi, state: web::Data<AppState>) -> HttpResponse {
    match Dashboard::load(&state.store, &state.settings).await {
        Ok(dashboard) => HttpResponse::Ok().json(dashboard),
        Err(error) => unavailable(error),
    }
}

#[derive(Deserialize)]
pub(super) struct PreviewQuery {
    kind: Option<String>,
    /// A reader's address; without one, a sample reader.
    email: Option<String>,
}

/// `?kind=digest&email=ann@example.com`: the email as it would be sent now,
/// `{subject, text, html}`; 422 with the reason when there is none to show.
#[get("/admin/api/preview")]
pub(super) async fn preview(_: AdminApi, query: web::Query<PreviewQuery>, state: web::Data<AppState>) -> HttpResponse {
    let kind = query.kind.as_deref().unwrap_or("digest");
    match Preview::load(&state, kind, query.email.as_deref().unwrap_or_default()).await {
        Ok(Preview::Shown(content)) => HttpResponse::Ok().json(json!({
            "kind": kind, "subject": content.subject, "text": content.text, "html": content.html,
        })),
        Ok(Preview::Refused(message)) => HttpResponse::UnprocessableEntity().json(json!({ "error": message })),
        Err(error) => unavailable(error),
    }
}

/// The newest editions with their progress and state.
#[get("/admin/api/editions")]
pub(super) async fn list_editions(_: AdminApi, state: web::Data<AppState>) -> HttpResponse {
    match state.store.recent_editions(MAX_LISTED).await {
        Ok(editions) => HttpResponse::Ok().json(json!({ "editions": editions })),
        Err(error) => unavailable(error),
    }
}

/// `POST /admin/api/editions/{id}/pause` (or `resume`, `cancel`): 200 with
/// the edition's new state, 404, or 409 when its state does not allow it.
#[post("/admin/api/editions/{id}/{action:pause|resume|cancel}")]
pub(super) async fn control_edition(
    _: AdminApi,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let (Ok(id), Ok(action)) = (uuid::Uuid::parse_str(&id), action.parse::<EditionAction>()) else {
        return HttpResponse::NotFound().json(json!({ "error": "No such edition." }));
    };
    match state.store.control_edition(id, action).await {
        Ok(EditionControl::Done(edition_state)) => {
            state.worker_wakeup.notify_one();
            HttpResponse::Ok().json(json!({ "id": id, "state": edition_state }))
        }
        Ok(EditionControl::NoSuchEdition) => HttpResponse::NotFound().json(json!({ "error": "No such edition." })),
        Ok(EditionControl::NotNow(current)) => HttpResponse::Conflict().json(
            json!({ "error": format!("The edition is {current}; it cannot be changed that way."), "state": current }),
        ),
        Err(error) => unavailable(error),
    }
}

/// The newest quotes (`?limit=`, default 50).
#[get("/admin/api/quotes")]
pub(super) async fn list_quotes(_: AdminApi, query: web::Query<ListQuery>, state: web::Data<AppState>) -> HttpResponse {
    let Some(limit) = query.limit() else { return ListQuery::refused() };
    match state.store.newest_quotes(limit).await {
        Ok(quotes) => HttpResponse::Ok().json(json!({ "quotes": quotes })),
        Err(error) => unavailable(error),
    }
}
