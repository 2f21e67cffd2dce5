//! Request spans: a request id, the method and the route *template*, never the
//! query string (filters hold emails) nor headers (tokens). One line per
//! request when it ends, with the error (its `Debug`: status and SCIM type,
//! never the request's data) for 4xx and 5xx — but 429 only at `debug`.

use actix_web::Error;
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

pub struct RootSpan;

impl RootSpanBuilder for RootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_string());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|r| r.to_string())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route,
            request_id = %request_id,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(r) => (
                r.response().status().as_u16(),
                r.response().error().map(|e| format!("{e:?}")),
            ),
            Err(e) => (
                e.as_response_error().status_code().as_u16(),
                Some(format!("{e:?}")),
            ),
        };
        span.record("status", status);
        span.in_scope(|| match (status, error) {
            // A tenant over its queue is refused in bulk (a flood is answered
            // thousands of times a second): a log line each would make the
            // refusal cost more than the request, and fill the disk.
            (429, _) => tracing::debug!(status, "request finished"),
            (500.., Some(e)) => tracing::error!(status, error = %e, "request finished"),
            (400.., Some(e)) => tracing::warn!(status, error = %e, "request finished"),
            _ => tracing::info!(status, "request finished"),
        });
    }
}
