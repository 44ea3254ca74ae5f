//! `POST /graphql`: one GraphQL request over HTTP, run by the schema for the caller the token names.

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, RequestPartsExt};

use super::state::AppState;
use super::transport::{MAX_BODY_BYTES, transport_error};
use super::{caller, trusted_documents};
use crate::error::ErrorCode;
use crate::service::Caller;

pub(super) async fn graphql(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    if let Err(refused) = caller::limit_token_less(&mut parts, &state).await {
        return refused;
    }
    // The body is read before the token is checked, so an oversized body is refused as too large whatever its
    // token, as one with a declared-too-long length is (by the limit layer, before this runs). The 413 gets its
    // GraphQL body from `too_large_as_graphql`.
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let caller = match parts.extract_with_state::<Caller, _>(&state).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let mut request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(_) => {
            let message = "the body must be a JSON GraphQL request: {\"query\": ..., \"variables\": ...}";
            return transport_error(ErrorCode::BadRequest, message, &caller.request_id);
        }
    };
    // Before the schema parses anything: an untrusted document, however big or deep, costs one hash.
    if let Some(trusted) = &state.trusted_documents {
        match trusted.admit(Some(&request.query), trusted_documents::request_hash(&request)) {
            Ok(Some(text)) => request.query = text.to_owned(),
            Ok(None) => {}
            Err(refused) => {
                tracing::info!(code = %refused.code(), "document refused: not trusted");
                return transport_error(refused.code(), refused.message(), &caller.request_id);
            }
        }
    }
    let request_id = caller.request_id.clone();
    let mut response = state.schema.execute(request.data(caller)).await;
    // Every error of ours has a code; the few async-graphql raises at execution without one are about the request
    // itself (e.g. an unknown `operationName`).
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", ErrorCode::BadRequest.as_str());
        }
        if extensions.get("requestId").is_none() {
            extensions.set("requestId", request_id.as_str());
        }
    }
    Json(response).into_response()
}
