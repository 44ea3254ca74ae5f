//! Browsers on other origins (the front-end team's consoles): tower-http's CORS layer for the configured origins,
//! and the same list held against the `Origin` of a WebSocket upgrade, which CORS does not cover. Without origins
//! configured, no CORS header is sent and every upgrade is let through, as before.
//!
//! No credentials mode: cdvault reads no cookie, the token travels in `Authorization`, so a browser never needs to
//! send ambient credentials and `Access-Control-Allow-Credentials` is never sent.

use std::sync::Arc;

use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, ORIGIN, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::options::CorsOptions;
use super::transport::transport_error;
use crate::error::ErrorCode;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The CORS layer, or `None` when no origin is configured.
pub(super) fn layer(options: &CorsOptions) -> Option<CorsLayer> {
    if options.origins.is_empty() {
        return None;
    }
    // Validated at start-up (scheme://host[:port]): every one is a header value.
    let origins: Vec<HeaderValue> = options.origins.iter().filter_map(|origin| origin.parse().ok()).collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([AUTHORIZATION, CONTENT_TYPE, X_REQUEST_ID])
            // Scripts read the request id (for a support ticket) and how long a 429 asks them to wait.
            .expose_headers([X_REQUEST_ID, RETRY_AFTER])
            .max_age(options.max_age),
    )
}

/// The origins a WebSocket upgrade may come from: empty, any (CORS not configured).
#[derive(Debug, Clone, Default)]
pub(super) struct Origins(Arc<[String]>);

impl Origins {
    pub(super) fn new(options: &CorsOptions) -> Self {
        Self(options.origins.iter().cloned().collect())
    }

    /// Whether an upgrade with these headers may proceed: no list, no `Origin` (a tool, not a browser), or an
    /// `Origin` on the list. Browsers send it in lower case, as the list holds it; compared regardless of case.
    pub(super) fn allow(&self, headers: &HeaderMap) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let Some(origin) = headers.get(ORIGIN) else { return true };
        let Ok(origin) = origin.to_str() else { return false };
        self.0.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }
}

/// `403 ORIGIN_NOT_ALLOWED`, in GraphQL's shape, before the upgrade.
pub(super) fn refuse(request_id: &str) -> Response {
    let message = "this origin may not open a WebSocket (CDVAULT_CORS_ORIGINS)";
    transport_error(ErrorCode::OriginNotAllowed, message, request_id)
}
