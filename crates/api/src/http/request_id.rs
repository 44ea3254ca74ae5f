//! The id of each request: a sane incoming `x-request-id` is kept, anything else is replaced by a new UUIDv7, and the
//! id is echoed in the response. tower-http's `SetRequestId` keeps whatever id comes in, so [`drop_unsafe_request_id`]
//! runs in front of it and removes one that is unsafe to log or to store in the audit trail.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, Request};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use tower_http::request_id::MakeRequestId;
use uuid::Uuid;

/// The header that carries the id, in and out.
const X_REQUEST_ID: &str = "x-request-id";

/// The id of one HTTP request, as handlers and extractors take it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        // The `SetRequestId` layer gives every request an id; a router built without it still gets a fresh one.
        let id =
            parts.extensions.get::<tower_http::request_id::RequestId>().and_then(|id| id.header_value().to_str().ok());
        Ok(Self(id.map_or_else(|| Uuid::now_v7().to_string(), str::to_owned)))
    }
}

/// Makes the id of a request that came without a sane one.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct MakeRequestUuidV7;

impl MakeRequestId for MakeRequestUuidV7 {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<tower_http::request_id::RequestId> {
        HeaderValue::try_from(Uuid::now_v7().to_string()).ok().map(tower_http::request_id::RequestId::new)
    }
}

/// Removes an incoming `x-request-id` that is not sane, so that `SetRequestId` replaces it.
pub(super) async fn drop_unsafe_request_id(mut request: Request) -> Request {
    if request.headers().get(X_REQUEST_ID).is_some_and(|value| !is_sane(value)) {
        request.headers_mut().remove(X_REQUEST_ID);
    }
    request
}

/// At most 64 characters of letters, digits, `-`, `_` and `.`: safe in a log line and in the audit trail.
fn is_sane(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|text| {
        !text.is_empty()
            && text.len() <= 64
            && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_digits_dashes_underscores_and_dots_up_to_64_characters_are_sane() {
        for id in ["trace-42", "a", "A.b_c-9", &"x".repeat(64)] {
            assert!(is_sane(&HeaderValue::from_str(id).unwrap()), "{id:?}");
        }
    }

    #[test]
    fn empty_long_spaced_or_non_ascii_ids_are_not_sane() {
        for id in ["", "bad id", &"x".repeat(65), "a/b", "a\"b", "id;drop"] {
            assert!(!is_sane(&HeaderValue::from_str(id).unwrap()), "{id:?}");
        }
        assert!(!is_sane(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()));
    }

    #[tokio::test]
    async fn an_unsafe_incoming_id_is_removed_and_a_sane_one_kept() {
        let with = |id: &str| Request::builder().header(X_REQUEST_ID, id).body(axum::body::Body::empty()).unwrap();
        assert!(drop_unsafe_request_id(with("bad id")).await.headers().get(X_REQUEST_ID).is_none());
        assert_eq!(drop_unsafe_request_id(with("trace-42")).await.headers()[X_REQUEST_ID], "trace-42");
    }
}
