//! The id of each request: always our own UUIDv7, echoed in the response's `x-request-id`. An incoming
//! `x-request-id` is the caller's: [`take_caller_request_id`] runs in front of tower-http's `SetRequestId` (which
//! would keep it), moves a sane one aside as the [`CallerRequestId`] (logged and audited in a field of its own) and
//! drops one that is unsafe to log or to store.

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

/// The `x-request-id` a caller sent, when sane: theirs, kept beside ours, never instead of it.
#[derive(Debug, Clone, Default)]
pub struct CallerRequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for CallerRequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(parts.extensions.get::<Self>().cloned().unwrap_or_default())
    }
}

/// Takes the incoming `x-request-id` off the request, so that `SetRequestId` makes ours; a sane one is kept as the
/// [`CallerRequestId`].
pub(super) async fn take_caller_request_id(mut request: Request) -> Request {
    let theirs = request.headers_mut().remove(X_REQUEST_ID).filter(is_sane);
    let theirs = theirs.and_then(|value| value.to_str().ok().map(str::to_owned));
    request.extensions_mut().insert(CallerRequestId(theirs));
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
    async fn an_incoming_id_is_taken_off_and_a_sane_one_kept_as_the_callers() {
        let with = |id: &str| Request::builder().header(X_REQUEST_ID, id).body(axum::body::Body::empty()).unwrap();
        let unsafe_id = take_caller_request_id(with("bad id")).await;
        assert!(unsafe_id.headers().get(X_REQUEST_ID).is_none());
        assert_eq!(unsafe_id.extensions().get::<CallerRequestId>().unwrap().0, None);
        let sane = take_caller_request_id(with("trace-42")).await;
        assert!(sane.headers().get(X_REQUEST_ID).is_none());
        assert_eq!(sane.extensions().get::<CallerRequestId>().unwrap().0.as_deref(), Some("trace-42"));
    }
}
