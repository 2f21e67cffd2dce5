//! Request spans and the access log: a request id, the method and the route
//! *template*, never the query string (filters hold emails) nor headers
//! (tokens). One line per request when it ends, with the status, the latency
//! and the error (its `Debug`: status and SCIM type, never the request's
//! data) for 4xx and 5xx — but 429 only at `debug`.
//!
//! The request id is the caller's `X-Request-Id` when it is short and made of
//! safe characters (a proxy's or client's correlation id), else a new UUID; it
//! is returned on every response, errors included (`finish`).

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{Error, HttpRequest};
use std::future::Future;
use std::time::Instant;
use tracing::Span;
use tracing_actix_web::RootSpanBuilder;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// An incoming id longer than this is replaced, not truncated (a truncated
/// id would no longer correlate with anything).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// This request's id and when it arrived (request extensions).
#[derive(Clone)]
pub struct RequestId {
    pub id: String,
    pub started: Instant,
}

/// The caller's id if it is 1–128 characters of `[A-Za-z0-9._:-]` (log- and
/// header-safe: no spaces, quotes or control characters); otherwise `None`.
pub fn accepted_request_id(raw: Option<&str>) -> Option<String> {
    raw.filter(|v| {
        !v.is_empty()
            && v.len() <= MAX_REQUEST_ID_LEN
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    })
    .map(str::to_string)
}

fn request_id_of(req: &HttpRequest) -> RequestId {
    if let Some(r) = req.extensions().get::<RequestId>() {
        return r.clone();
    }
    let raw = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok());
    let r = RequestId {
        id: accepted_request_id(raw).unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        started: Instant::now(),
    };
    req.extensions_mut().insert(r.clone());
    r
}

pub struct RootSpan;

impl RootSpanBuilder for RootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| crate::metrics::UNMATCHED_ROUTE.to_string());
        let rid = request_id_of(request.request());
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route,
            request_id = %rid.id,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error, latency) = match outcome {
            Ok(r) => (
                r.response().status().as_u16(),
                r.response().error().map(|e| format!("{e:?}")),
                r.request()
                    .extensions()
                    .get::<RequestId>()
                    .map(|id| id.started.elapsed()),
            ),
            Err(e) => (
                e.as_response_error().status_code().as_u16(),
                Some(format!("{e:?}")),
                e.as_error::<WithRequestId>().map(|w| w.started.elapsed()),
            ),
        };
        span.record("status", status);
        if let Some(l) = latency {
            span.record("latency_ms", l.as_secs_f64() * 1000.0);
        }
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

/// The innermost middleware: adds `X-Request-Id` to every response (to an
/// error's too, which becomes its response later, outside this middleware),
/// and counts the request in `custodian_http_requests_total` and
/// `custodian_http_request_duration_seconds` under its route template.
pub fn finish<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    let rid = request_id_of(req.request());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| crate::metrics::UNMATCHED_ROUTE.to_string());
    // A label value per standard method; any other (a client may send any
    // token as a method) is "other", so the series stay bounded.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m.to_string(),
        _ => "other".to_string(),
    };
    let call = srv.call(req);
    async move {
        let out = call.await;
        let header = HeaderValue::from_str(&rid.id).ok();
        let seconds = rid.started.elapsed().as_secs_f64();
        match out {
            Ok(mut res) => {
                if let Some(v) = header {
                    res.headers_mut()
                        .insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
                }
                crate::metrics::http_request(&route, &method, res.status().as_u16(), seconds);
                Ok(res)
            }
            Err(e) => {
                let status = e.as_response_error().status_code().as_u16();
                crate::metrics::http_request(&route, &method, status, seconds);
                Err(WithRequestId {
                    inner: e,
                    id: header,
                    started: rid.started,
                }
                .into())
            }
        }
    }
}

/// An error on its way out, answered as before plus `X-Request-Id`; logs as
/// the error it wraps.
struct WithRequestId {
    inner: Error,
    id: Option<HeaderValue>,
    started: Instant,
}

impl std::fmt::Debug for WithRequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.inner, f)
    }
}

impl std::fmt::Display for WithRequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.inner, f)
    }
}

impl actix_web::ResponseError for WithRequestId {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.inner.as_response_error().status_code()
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let mut r = self.inner.error_response();
        if let Some(v) = &self.id {
            r.headers_mut()
                .insert(HeaderName::from_static(REQUEST_ID_HEADER), v.clone());
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_bounded_and_sanitised() {
        assert_eq!(
            accepted_request_id(Some("req-123_a.b:c")).as_deref(),
            Some("req-123_a.b:c")
        );
        for bad in ["", "has space", "quote\"", "new\nline", "ünicode", "a/b"] {
            assert_eq!(accepted_request_id(Some(bad)), None, "{bad:?}");
        }
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        assert_eq!(accepted_request_id(Some(&long)), None);
        let max = "a".repeat(MAX_REQUEST_ID_LEN);
        assert_eq!(accepted_request_id(Some(&max)), Some(max));
    }
}
