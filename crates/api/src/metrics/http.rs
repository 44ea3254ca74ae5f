//! The HTTP families: requests by route and status (a layer), rate-limit refusals and WebSocket sessions (recorded
//! where they happen, through the functions here, so the labels are made in one place).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use super::names;

/// Layer body (`axum::middleware::from_fn`): counts and times every request by route and status. The route label
/// is the path pattern the router matched (a closed set: the routes it declares), `other` when none did (a 404):
/// never the path the client sent.
pub(crate) async fn http_requests(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("other", MatchedPath::as_str).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(names::HTTP_DURATION, "route" => route.clone()).record(started.elapsed());
    metrics::counter!(names::HTTP_REQUESTS, "route" => route, "status" => status).increment(1);
    response
}

/// A request refused by a rate limit. `kind` is `address` or `identity`, `transport` is `http` or `websocket`:
/// fixed words, never the address or the identity itself.
pub(crate) fn rate_limit_refused(kind: &'static str, transport: &'static str) {
    metrics::counter!(names::RATE_LIMIT_REFUSALS, "kind" => kind, "transport" => transport).increment(1);
}

/// A WebSocket session opened: the gauge goes down when the returned value is dropped, however the session ends.
pub(crate) fn websocket_opened() -> OpenSession {
    metrics::gauge!(names::WEBSOCKET_OPEN).increment(1);
    OpenSession
}

/// Counts one open WebSocket session while it lives.
#[derive(Debug)]
pub(crate) struct OpenSession;

impl Drop for OpenSession {
    fn drop(&mut self) {
        metrics::gauge!(names::WEBSOCKET_OPEN).decrement(1);
    }
}

/// A WebSocket session closed with `code` (`None`: the connection dropped without a close of ours). The codes are
/// the server's own (a closed set: `docs/websocket.md`), not the client's.
pub(crate) fn websocket_closed(code: Option<u16>) {
    let code = code.map_or_else(|| "none".to_owned(), |code| code.to_string());
    metrics::counter!(names::WEBSOCKET_CLOSES, "code" => code).increment(1);
}
