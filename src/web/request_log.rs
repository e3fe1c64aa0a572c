//! One span per request, named by its route pattern (`/unsubscribe/{token}`),
//! never its path, so no link token reaches the logs; and one short line per
//! request that went wrong: at error for the server's failures, at info for
//! a client's mistakes (anyone can make those, so they are not alarms).

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request.match_pattern().unwrap_or_else(|| "(no route)".into());
        let request_id = request.extensions().get::<RequestId>().map(ToString::to_string).unwrap_or_default();
        tracing::info_span!("request", method = %request.method(), route = %route, request_id = %request_id)
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        let (status, error) = match outcome {
            Ok(response) => (response.status(), response.response().error().map(ToString::to_string)),
            Err(error) => (error.as_response_error().status_code(), Some(error.to_string())),
        };
        let _entered = span.enter();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = error.unwrap_or_default(), "request failed");
        } else if status.is_client_error() && status != StatusCode::NOT_FOUND {
            tracing::info!(status = status.as_u16(), "request refused");
        }
    }
}
