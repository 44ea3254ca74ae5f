//! The HTTP surface: `POST /graphql`, GraphiQL on `GET /graphql` (when switched on), subscriptions on `/graphql/ws`, `/healthz`,
//! `/readyz`, and `/metrics` when it is served on the main listener. Request ids, the access log and the body limit are tower-http layers; the caller is an extractor
//! (`caller.rs`), so authentication happens once per request, before the schema runs.

mod access_log;
mod caller;
mod graphiql;
mod graphql_post;
mod open_sockets;
mod options;
mod rate_limit;
mod request_id;
mod state;
mod transport;
mod websocket;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::handler::Handler;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header::CACHE_CONTROL;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cdvault_storage::audit::WriterHealth;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use options::{HttpOptions, MetricsOptions, WebSocketLimits};
pub use rate_limit::RateLimits;
pub use request_id::{CallerRequestId, RequestId};
pub use transport::MAX_BODY_BYTES;

use crate::auth::JwtVerifier;
use crate::graphql::{build_schema, build_session_schema};
use crate::service::Vault;
use state::AppState;

/// Builds the router of the service, as `options` say. Source addresses for the rate limits are the TCP peers when
/// the router is served with `into_make_service_with_connect_info::<SocketAddr>()`; without it, every request
/// without a valid token shares one budget. Must be called within a Tokio runtime: it starts the sweep of the
/// rate-limit denials, which ends when the vault closes its sessions.
pub fn router(vault: Arc<Vault>, verifier: Arc<JwtVerifier>, options: &HttpOptions) -> Router {
    let graphiql = options.graphiql;
    // Served here: the recorder is installed (idempotent: the server installs it first, before anything records).
    let metrics = options.metrics.on_main.then(|| {
        crate::metrics::install();
        crate::metrics::router(vault.database().clone())
    });
    let limiter = Arc::new(rate_limit::Limiter::new(&options.rate_limits));
    rate_limit::spawn_sweep(limiter.clone(), vault.clone());
    let state = AppState {
        limiter,
        websocket: Arc::new(open_sockets::Sockets::new(options.websocket)),
        schema: build_schema(Some(vault.clone()), options.introspection),
        sessions: build_session_schema(vault.clone(), options.introspection),
        vault,
        verifier,
    };
    // Outermost first: every response, a 413 or a 401 included, carries the id and is logged.
    let request_context = ServiceBuilder::new()
        .layer(middleware::map_request(request_id::take_caller_request_id))
        .layer(SetRequestIdLayer::x_request_id(request_id::MakeRequestUuidV7))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(access_log::request_span)
                .on_request(())
                .on_response(access_log::served)
                .on_eos(())
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id());
    let body_limit = ServiceBuilder::new()
        .layer(middleware::from_fn(transport::too_large_as_graphql))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES));
    // Answers hold secrets (and the page, tokens typed into it): no cache, shared or private, may keep them.
    let no_store = SetResponseHeaderLayer::overriding(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let graphql = graphiql::page(post(graphql_post::graphql.layer(body_limit)), graphiql);
    let router = Router::new()
        .route("/graphql", graphql.layer(no_store))
        .merge(graphiql::assets(graphiql))
        .route("/graphql/ws", get(websocket::graphql_ws))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state);
    let router = match metrics {
        Some(metrics) => router.merge(metrics),
        None => router,
    };
    // Inside the request context, so a request's metrics are recorded within its span; outside every route, so a
    // 404 is counted too (as route "other").
    router.layer(middleware::from_fn(crate::metrics::http_requests)).layer(request_context)
}

/// Ready when the audit writer is alive (every issue waits on it) and the database answers its ping.
async fn readyz(State(state): State<AppState>) -> Response {
    let writer = match state.vault.audit_health() {
        WriterHealth::Alive => None,
        WriterHealth::Stuck { .. } => Some("audit writer stuck"),
        WriterHealth::Restarting => Some("audit writer restarting"),
        WriterHealth::Dead => Some("audit writer dead"),
    };
    if let Some(cause) = writer {
        tracing::warn!(cause, "readiness check failed");
        return (StatusCode::SERVICE_UNAVAILABLE, cause).into_response();
    }
    match state.vault.database().ping().await {
        // A frozen vault is ready (it serves reads and writes): the body says so for the operator.
        Ok(()) if state.vault.frozen() => (StatusCode::OK, "ready (frozen: no secret is handed out)").into_response(),
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(err) => {
            tracing::warn!(error = %crate::error::error_chain(&err), "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}
