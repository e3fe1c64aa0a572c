//! What keeps slow or greedy clients from holding the server: a deadline for
//! reading a request's body, and a cap on the requests one client has in
//! progress at once. (Slow request heads are cut by actix's
//! `client_request_timeout`, 5 s.)

use std::cell::Cell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse};
use futures_util::Stream;
use tokio::time::Sleep;

use crate::config::{ClientAddressSettings, Settings};
use crate::web::client_ip::client_ip;
use crate::web::rate_limit::client_key;

/// The routes whose body is a CSV file of megabytes, given `IMPORT_BODY_TIMEOUT_SECONDS`.
const IMPORT_PATHS: [&str; 2] = ["/admin/api/subscribers/import", "/admin/subscribers/import"];

/// Requests in progress per client key.
type InProgress = Arc<Mutex<HashMap<IpAddr, u32>>>;

#[derive(Clone)]
pub struct ClientGuard {
    client_address: ClientAddressSettings,
    body_timeout: Duration,
    import_body_timeout: Duration,
    /// The cap and the count; `None` without a cap.
    in_progress: Option<(u32, InProgress)>,
}

impl ClientGuard {
    pub fn new(settings: &Settings) -> Self {
        Self {
            client_address: settings.client_address.clone(),
            body_timeout: settings.body_timeout,
            import_body_timeout: settings.import_body_timeout,
            in_progress: (settings.max_connections_per_client > 0)
                .then(|| (settings.max_connections_per_client, Arc::default())),
        }
    }

    /// Refuses a client that has its share in progress already, and gives the
    /// body a deadline; a body that misses it gets `408`.
    pub async fn check(
        &self,
        mut request: ServiceRequest,
        next: Next<BoxBody>,
    ) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
        let Some(_slot) = self.take_slot(client_key(client_ip(request.request(), &self.client_address))) else {
            let response = HttpResponse::TooManyRequests()
                .insert_header((header::RETRY_AFTER, 1))
                .force_close()
                .body("Too many requests from your address at once. Wait a moment and try again.");
            return Ok(request.into_response(response));
        };
        let payload = request.take_payload();
        if matches!(payload, Payload::None) {
            return next.call(request).await;
        }
        let timeout = if IMPORT_PATHS.contains(&request.path()) { self.import_body_timeout } else { self.body_timeout };
        let missed = Rc::new(Cell::new(false));
        let deadline = Deadline {
            body: payload,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            missed: missed.clone(),
            done: false,
        };
        request.set_payload(Payload::Stream { payload: Box::pin(deadline) });
        let response = next.call(request).await?;
        if !missed.get() {
            return Ok(response);
        }
        // Whatever the handler made of the cut body, the client was too slow;
        // the rest of the body is never read, so the connection closes.
        let (request, _) = response.into_parts();
        let answer = HttpResponse::RequestTimeout()
            .force_close()
            .body(format!("The request body did not arrive within {} seconds.", timeout.as_secs()));
        Ok(ServiceResponse::new(request, answer))
    }

    fn take_slot(&self, client: IpAddr) -> Option<Slot> {
        let Some((cap, in_progress)) = &self.in_progress else { return Some(Slot(None)) };
        let mut counts = in_progress.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(client).or_insert(0);
        if *count >= *cap {
            return None;
        }
        *count += 1;
        Some(Slot(Some((client, in_progress.clone()))))
    }
}

/// One request in progress of a client; gives its place back when dropped.
struct Slot(Option<(IpAddr, InProgress)>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((client, in_progress)) = &self.0 {
            let mut counts = in_progress.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(count) = counts.get_mut(client) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(client);
                }
            }
        }
    }
}

/// A body that fails with a timeout once its deadline passes.
struct Deadline {
    body: Payload,
    sleep: Pin<Box<Sleep>>,
    missed: Rc<Cell<bool>>,
    done: bool,
}

impl Stream for Deadline {
    type Item = Result<actix_web::web::Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(chunk) = Pin::new(&mut self.body).poll_next(cx) {
            return Poll::Ready(chunk);
        }
        if self.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.done = true;
        self.missed.set(true);
        let error = std::io::Error::new(std::io::ErrorKind::TimedOut, "the request body arrived too slowly");
        Poll::Ready(Some(Err(PayloadError::Io(error))))
    }
}
