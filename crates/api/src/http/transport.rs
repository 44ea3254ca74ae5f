//! Failures before the schema runs, answered in GraphQL's shape (`errors[].extensions.code` and `requestId`), and
//! the body limit of `/graphql`.

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cdvault_domain::Reason;
use serde_json::json;

use super::request_id::RequestId;
use crate::error::ErrorCode;

/// Largest request body accepted on `/graphql`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A GraphQL-shaped error response for failures before the schema runs.
pub(super) fn transport_error(code: ErrorCode, message: &str, request_id: &str) -> Response {
    refusal(code, message, None, request_id)
}

/// [`transport_error`] with `extensions.reason` (e.g. `TOKEN_REVOKED` for a `401`).
pub(super) fn refusal(code: ErrorCode, message: &str, reason: Option<Reason>, request_id: &str) -> Response {
    // Every transport code has its status in the registry; 400 is the fallback for one that would not.
    let status = code.http_status().unwrap_or(StatusCode::BAD_REQUEST);
    let mut extensions = json!({ "code": code.as_str(), "requestId": request_id });
    if let Some(reason) = reason {
        extensions["reason"] = json!(reason.as_str());
    }
    let body = json!({ "data": null, "errors": [{ "message": message, "extensions": extensions }] });
    (status, Json(body)).into_response()
}

/// Gives every `413` of the route it wraps the GraphQL `REQUEST_TOO_LARGE` body: tower-http's body limit answers a
/// declared-too-long `Content-Length` with a bare 413, and the handler answers a body that grows past the limit
/// while it is read with one.
pub(super) async fn too_large_as_graphql(RequestId(request_id): RequestId, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    let message = format!("the request body is larger than {MAX_BODY_BYTES} bytes");
    transport_error(ErrorCode::RequestTooLarge, &message, &request_id)
}
