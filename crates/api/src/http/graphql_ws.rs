//! `GET /graphql/ws`: subscriptions (and reads) over WebSocket, graphql-transport-ws or the older graphql-ws; no
//! mutations.

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};

use super::request_id::{CallerRequestId, RequestId};
use super::state::AppState;
use crate::service::Caller;

/// How long a subscription connection may stay silent (no ping) before it is closed.
const WS_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(60);

/// The bearer token comes in the `connection_init` payload as `authorization` (browsers cannot set headers on a
/// WebSocket); a missing or bad token closes the connection before anything runs, and is audited. The session
/// ends with its token, and when the server shuts down.
pub(super) async fn graphql_ws(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    CallerRequestId(caller_request_id): CallerRequestId,
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
                    let (refused, reason) = match verifier.authenticate(header).await {
                        Ok(Some(identity)) if vault.is_revoked_now(&identity) => {
                            ("the token is revoked".to_owned(), cdvault_domain::Reason::TokenRevoked)
                        }
                        Ok(Some(identity)) => {
                            let mut data = async_graphql::Data::default();
                            data.insert(Caller {
                                request_id,
                                caller_request_id,
                                principal: Some(vault.principal_for(&identity)),
                                expires_at: identity.expires_at,
                                identity: Some(identity),
                            });
                            return Ok(data);
                        }
                        Ok(None) => (
                            "a bearer token is required in the connection_init payload".to_owned(),
                            cdvault_domain::Reason::InvalidToken,
                        ),
                        Err(err) => (err.to_string(), err.reason()),
                    };
                    tracing::info!(reason = %refused, "subscription token refused");
                    vault.record_authentication_failure(&request_id, reason).await;
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
