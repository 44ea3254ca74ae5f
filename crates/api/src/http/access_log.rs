//! The access log, through tower-http's `TraceLayer`: a span per request that carries its id, and one `served` line
//! with the status and the elapsed time when the response is ready.

use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use tracing::Span;

/// The span of one request: its id (set by the request-id layer, which runs first), method and path.
pub(super) fn request_span(request: &Request) -> Span {
    let id = request
        .extensions()
        .get::<tower_http::request_id::RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default();
    let method = request.method();
    let path = request.uri().path();
    tracing::info_span!("request", request_id = %id, %method, %path)
}

/// The access-log line, written inside the request's span.
pub(super) fn served(response: &Response, latency: Duration, _span: &Span) {
    tracing::info!(status = response.status().as_u16(), elapsed_ms = latency.as_secs_f64() * 1000.0, "served");
}
