//! The access log, through tower-http's `TraceLayer`: a span per request that carries its id, and one `served` line
//! with the status and the elapsed time when the response is ready. The span's `issuer` and `subject` are recorded
//! by the caller extractor once the token is verified, its `root_fields` by the GraphQL metrics extension once the
//! query is parsed: every line written for the request carries them (never the token, never the client's operation
//! name).
//! A W3C `traceparent` header makes the span a child of the caller's trace when spans are exported.

use std::time::Duration;

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The span of one request: its id (set by the request-id layer, which runs first), method and path; the caller and
/// the root fields once known.
pub(super) fn request_span(request: &Request) -> Span {
    let id = request
        .extensions()
        .get::<tower_http::request_id::RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default();
    let method = request.method();
    let path = request.uri().path();
    let span = tracing::info_span!("request", request_id = %id, %method, %path, issuer = Empty, subject = Empty, root_fields = Empty);
    // Without a propagator installed (no collector configured), the context is empty and nothing is set.
    let parent =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&Headers(request.headers())));
    if parent.span().span_context().is_valid() {
        // Refused only when no OpenTelemetry layer is installed: the span then has no trace to join.
        let _ = span.set_parent(parent);
    }
    span
}

/// The access-log line, written inside the request's span.
pub(super) fn served(response: &Response, latency: Duration, _span: &Span) {
    tracing::info!(status = response.status().as_u16(), elapsed_ms = latency.as_secs_f64() * 1000.0, "served");
}

/// The request's headers, as the propagator reads them (`traceparent`, `tracestate`).
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}
