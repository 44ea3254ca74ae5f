//! The HTTP surface: `POST /graphql`, GraphiQL on `GET /graphql`, `/healthz`, `/readyz`; request ids and access
//! logs. Authentication happens here, once per request, before the schema runs.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::{Body, to_bytes};
use axum::extract::WebSocketUpgrade;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;
use tracing::Instrument;
use uuid::Uuid;

use crate::auth::JwtVerifier;
use crate::graphql::{SessionSchema, VaultSchema, build_schema, build_session_schema};
use crate::service::{Caller, Vault};

/// Largest request body accepted on `/graphql`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The id of one HTTP request: taken from a sane `x-request-id` header, else a new UUIDv7.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

#[derive(Clone)]
struct AppState {
    schema: VaultSchema,
    sessions: SessionSchema,
    vault: Arc<Vault>,
    verifier: Arc<JwtVerifier>,
}

/// Builds the router of the service.
pub fn router(vault: Arc<Vault>, verifier: Arc<JwtVerifier>) -> Router {
    let state = AppState {
        schema: build_schema(Some(vault.clone())),
        sessions: build_session_schema(vault.clone()),
        vault,
        verifier,
    };
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .layer(middleware::from_fn(request_context))
        .with_state(state)
}

fn sane_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    (!text.is_empty()
        && text.len() <= 64
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    .then(|| text.to_owned())
}

/// Gives each request an id (echoed in `x-request-id`), a span that carries it, and one access-log line.
async fn request_context(mut req: Request, next: Next) -> Response {
    let id = req.headers().get("x-request-id").and_then(sane_request_id).unwrap_or_else(|| Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %id, %method, %path);
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let _entered = span.enter();
    tracing::info!(
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "served"
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// A GraphQL-shaped error response for failures before the schema runs.
fn transport_error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    let body = json!({
        "data": null,
        "errors": [{ "message": message, "extensions": { "code": code, "requestId": request_id } }]
    });
    (status, Json(body)).into_response()
}

async fn graphql(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let message = format!("the request body is larger than {MAX_BODY_BYTES} bytes");
            return transport_error(StatusCode::PAYLOAD_TOO_LARGE, "REQUEST_TOO_LARGE", &message, &request_id);
        }
    };
    let authorization = match headers.get(header::AUTHORIZATION).map(HeaderValue::to_str).transpose() {
        Ok(value) => value,
        Err(_) => None.or(Some("")),
    };
    let principal = match state.verifier.authenticate(authorization) {
        Ok(principal) => principal,
        Err(err) => {
            tracing::info!(reason = %err, "token refused");
            state.vault.record_authentication_failure(&request_id, cdvault_domain::Reason::InvalidToken).await;
            return transport_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &err.to_string(), &request_id);
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(_) => {
            let message = "the body must be a JSON GraphQL request: {\"query\": ..., \"variables\": ...}";
            return transport_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", message, &request_id);
        }
    };
    let caller = Caller { request_id: request_id.clone(), principal, expires_at: None };
    let mut response = state.schema.execute(request.data(caller)).await;
    // Every error of ours has a code; the few async-graphql raises at execution without one are about the request
    // itself (e.g. an unknown `operationName`).
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "BAD_REQUEST");
        }
        if extensions.get("requestId").is_none() {
            extensions.set("requestId", request_id.as_str());
        }
    }
    Json(response).into_response()
}

/// How long a subscription connection may stay silent (no ping) before it is closed.
const WS_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(60);

/// Subscriptions (and reads) over WebSocket (graphql-transport-ws, or the older graphql-ws); no mutations. The
/// bearer token comes in the `connection_init` payload as `authorization` (browsers cannot set headers on a
/// WebSocket); a missing or bad token closes the connection before anything runs, and is audited. The session
/// ends with its token, and when the server shuts down.
async fn graphql_ws(
    State(state): State<AppState>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let AppState { sessions, vault, verifier, .. } = state;
            let closed = vault.sessions_closed();
            let session = GraphQLWebSocket::new(socket, sessions, protocol)
                .on_connection_init(move |payload| async move {
                    let header = payload
                        .get("authorization")
                        .or_else(|| payload.get("Authorization"))
                        .and_then(serde_json::Value::as_str);
                    let refused = match verifier.authenticate_until(header) {
                        Ok(Some((principal, expires_at))) => {
                            let mut data = async_graphql::Data::default();
                            data.insert(Caller { request_id, principal: Some(principal), expires_at });
                            return Ok(data);
                        }
                        Ok(None) => "a bearer token is required in the connection_init payload".to_owned(),
                        Err(err) => err.to_string(),
                    };
                    tracing::info!(reason = %refused, "subscription token refused");
                    vault.record_authentication_failure(&request_id, cdvault_domain::Reason::InvalidToken).await;
                    Err(async_graphql::Error::new(refused))
                })
                .keepalive_timeout(WS_KEEPALIVE)
                .serve();
            tokio::select! {
                () = session => {}
                () = closed => {}
            }
        })
        .into_response()
}

async fn graphiql() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").title("cdvault").finish())
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.vault.database().ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(err) => {
            tracing::warn!(error = %crate::error::error_chain(&err), "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}
