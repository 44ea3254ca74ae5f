//! The HTTP surface: `POST /graphql`, GraphiQL on `GET /graphql` (when switched on), subscriptions on `/graphql/ws`, `/healthz`,
//! `/readyz`, and `/metrics` when it is served on the main listener. Request ids, the access log and the body limit are tower-http layers; the caller is an extractor
//! (`caller.rs`), so authentication happens once per request, before the schema runs. CORS and, over TLS, HSTS are
//! layers too (`cors.rs`, `tls.rs`: the certificate the server's TLS listener serves and reloads). When trusted
//! documents are configured (`trusted_documents.rs`), both `/graphql` and `/graphql/ws` check each document against
//! them before it is parsed.

mod access_log;
mod caller;
mod cors;
mod graphiql;
mod graphql_post;
mod open_sockets;
mod options;
mod rate_limit;
mod request_id;
mod state;
pub mod tls;
mod transport;
mod trusted_documents;
mod websocket;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::handler::Handler;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, STRICT_TRANSPORT_SECURITY};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use options::{CorsOptions, HttpOptions, MetricsOptions, TlsOptions, WebSocketLimits};
pub use rate_limit::RateLimits;
pub use request_id::{CallerRequestId, RequestId};
pub use transport::MAX_BODY_BYTES;
pub use trusted_documents::{ManifestError, Refusal, TrustedDocuments};

use crate::auth::JwtVerifier;
use crate::graphql::{build_schema, build_session_schema};
use crate::service::Vault;
use state::AppState;

/// Builds the router of the service, as `options` say. Source addresses for the rate limits are the TCP peers when
/// the router is served with `into_make_service_with_connect_info::<SocketAddr>()`; without it, every request
/// without a valid token shares one budget. Must be called within a Tokio runtime: it starts the sweep of the
/// rate-limit denials, which ends when the vault closes its sessions. `tls` is the certificate the listener serves,
/// when it speaks TLS: then every answer carries HSTS.
pub fn router(
    vault: Arc<Vault>,
    verifier: Arc<JwtVerifier>,
    options: &HttpOptions,
    tls: Option<tls::Certificates>,
) -> Router {
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
        origins: cors::Origins::new(&options.cors),
        tls: tls.clone(),
        trusted_documents: options.trusted_documents.clone(),
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
    let router = router.layer(middleware::from_fn(crate::metrics::http_requests));
    // Outside every route, so a 413 or a 429 carries the CORS headers too (a script can read its Retry-After).
    let router = match cors::layer(&options.cors) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    let router = router.layer(request_context);
    match tls.and_then(|tls| HeaderValue::from_str(&tls.hsts()).ok()) {
        // Outermost: every answer over TLS, whatever produced it.
        Some(hsts) => router.layer(SetResponseHeaderLayer::overriding(STRICT_TRANSPORT_SECURITY, hsts)),
        None => router,
    }
}

/// Ready (200) when the audit writer is alive (every issue waits on it) and the database answers its ping; else
/// 503 with the failing component named in `problem`. The body is JSON with one entry per component (the audit
/// writer, the database, the keyring, the identity providers' key sets, the freeze, the audit stream): names,
/// states and counts, never a secret.
async fn readyz(State(state): State<AppState>) -> Response {
    let readiness = state.vault.readiness().await;
    let mut components = serde_json::Map::new();
    for component in &readiness.components {
        let mut detail = component.detail.clone();
        if let Some(object) = detail.as_object_mut() {
            object.insert("ok".into(), component.ok.into());
        }
        components.insert(component.name.into(), detail);
    }
    let issuers: Vec<serde_json::Value> = state
        .verifier
        .key_sets()
        .into_iter()
        .map(|set| {
            // A provider's keys that were never loaded refuse its tokens; a failed refresh keeps the old ones.
            let ok = set.keys.is_some_and(|n| n > 0);
            json!({
                "issuer": set.issuer,
                "source": if set.remote { "fetched" } else { "configured" },
                "keys": set.keys,
                "last_error": set.last_error,
                "ok": ok,
            })
        })
        .collect();
    components.insert("identity_providers".into(), issuers.into());
    let tls = state.tls.as_ref().map_or_else(|| json!({ "enabled": false, "ok": true }), tls::Certificates::report);
    components.insert("tls".into(), tls);
    let (code, status) = match readiness.blocking_problem() {
        None => (StatusCode::OK, "ready"),
        Some(problem) => {
            tracing::warn!(cause = problem, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    };
    let body = json!({
        "status": status,
        "problem": readiness.blocking_problem(),
        // A frozen vault is ready (it serves reads and writes): the body says so for the operator.
        "frozen": state.vault.frozen(),
        "components": components,
    });
    (code, axum::Json(body)).into_response()
}
