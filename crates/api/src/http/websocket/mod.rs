//! `GET /graphql/ws`: subscriptions (and reads) over WebSocket, graphql-transport-ws or the older graphql-ws; no
//! mutations. async-graphql runs the operations; this module stands between it and the socket, since async-graphql
//! has no hooks for what HTTP enforces: the upgrade pays the source address's rate limit; every message meets the
//! HTTP body limit; `connection_init` must come first and within the initialisation timeout, with a token that is
//! verified, not revoked and within its identity's socket cap; each `subscribe` pays the identity's rate limit,
//! counts against the socket's cap and, with trusted documents configured, must name one of them (else an `error`
//! message answers it, and async-graphql never parses it); the socket closes when its token expires or is revoked,
//! its access is lost or the server shuts down. Every close code is in `docs/websocket.md`.

mod close;
mod guard;
mod session;

use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::http::header::SEC_WEBSOCKET_PROTOCOL;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use self::close::Close;
use self::guard::Phase;
use self::session::{Session, Step};
use super::request_id::{CallerRequestId, RequestId};
use super::state::AppState;
use super::transport::MAX_BODY_BYTES;
use super::{cors, rate_limit};

/// How long a session may stay silent (no message, not even a ping) before async-graphql closes it (3008).
const WS_KEEPALIVE: Duration = Duration::from_secs(60);
/// How long the client has to answer our close frame before the connection is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Messages checked and waiting for async-graphql to read them.
const INBOX: usize = 16;

/// The upgrade: refused with `403 ORIGIN_NOT_ALLOWED` when CORS origins are configured and its `Origin` is another,
/// with `429 RATE_LIMITED` when the source address is over its limit (the request carries no token: browsers
/// cannot set headers on a WebSocket), else served with tungstenite reading no message or frame
/// larger than the HTTP body limit.
pub(super) async fn graphql_ws(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
    CallerRequestId(caller_request_id): CallerRequestId,
    parts: Parts,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = protocol(&parts) else { return StatusCode::BAD_REQUEST.into_response() };
    // CORS does not cover WebSockets: a page on a foreign origin is refused here, before it costs a rate-limit token.
    if !state.origins.allow(&parts.headers) {
        return cors::refuse(&request_id);
    }
    let address = state.limiter.source_address(&parts);
    if let Err(denied) = state.limiter.check(&address) {
        return rate_limit::refuse(&state.vault, &address, denied, &request_id, "websocket").await;
    }
    let span = tracing::info_span!("graphql_ws", %request_id);
    let session = Session::new(&state, request_id, caller_request_id);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(MAX_BODY_BYTES)
        .max_frame_size(MAX_BODY_BYTES)
        .on_upgrade(move |socket| serve(socket, state, session, protocol).instrument(span))
        .into_response()
}

/// The first protocol the client offers that async-graphql speaks (axum answers with the same one).
fn protocol(parts: &Parts) -> Option<WebSocketProtocols> {
    let offered = parts.headers.get(SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    offered.split(',').find_map(|protocol| protocol.trim().parse().ok())
}

/// Serves one socket until it closes: each client message checked before async-graphql reads it, each message of
/// async-graphql watched on its way out (the acknowledgement, completions), and the close sent with its code.
async fn serve(socket: WebSocket, state: AppState, mut session: Session, protocol: WebSocketProtocols) {
    let _open = crate::metrics::websocket_opened();
    let (mut sink, mut source) = socket.split();
    // async-graphql acknowledges `connection_init` with the data sent here once the token is accepted.
    let (accepted, acceptance) = oneshot::channel::<Data>();
    let mut accepted = Some(accepted);
    let (inbox, input) = mpsc::channel::<Bytes>(INBOX);
    let input = futures::stream::unfold(input, |mut input| async move { input.recv().await.map(|m| (m, input)) });
    let mut graphql = Box::pin(
        async_graphql::http::WebSocket::new(state.sessions.clone(), input, protocol)
            .on_connection_init(move |_| async move {
                acceptance.await.map_err(|_| async_graphql::Error::new("the connection was not accepted"))
            })
            .keepalive_timeout(WS_KEEPALIVE),
    );
    let init_timeout = tokio::time::sleep(state.websocket.limits().init_timeout);
    tokio::pin!(init_timeout);
    let mut end = session::shutdown(&state.vault);
    // A checked message async-graphql has no room for yet: the socket is not read meanwhile.
    let mut waiting: Option<Bytes> = None;
    let close = loop {
        tokio::select! {
            permit = inbox.reserve(), if waiting.is_some() => match (permit, waiting.take()) {
                (Ok(permit), Some(message)) => permit.send(message),
                _ => break None,
            },
            message = source.next(), if waiting.is_none() => {
                let message = match message {
                    Some(Ok(Message::Text(text))) => Bytes::from(text),
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    // tungstenite answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Err(error)) if too_big(&error) => break Some(Close::TooBig),
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
                };
                match session.incoming(&message).await {
                    Ok(Step::Forward) => waiting = Some(message),
                    Ok(Step::Rewritten(message)) => waiting = Some(message),
                    Ok(Step::Answer(text)) => {
                        session.guard.outgoing(&text);
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break None;
                        }
                    }
                    Ok(Step::Accepted { data, end: session_end }) => {
                        if let Some(accepted) = accepted.take() {
                            let _ = accepted.send(data);
                        }
                        end = session_end;
                        waiting = Some(message);
                    }
                    Err(close) => break Some(close),
                }
            }
            out = graphql.next() => match out {
                Some(WsMessage::Text(text)) => {
                    session.guard.outgoing(&text);
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break None;
                    }
                }
                // A message async-graphql could not parse (1002), or its keep-alive timeout.
                Some(WsMessage::Close(1002, reason)) => break Some(Close::BadRequest(reason)),
                Some(WsMessage::Close(code, reason)) => break Some(Close::Other(code, reason)),
                // `connection_terminate` (graphql-ws).
                None => break Some(Close::Other(1000, "Normal closure".to_owned())),
            },
            () = &mut init_timeout, if session.phase() == Phase::AwaitingInit => break Some(Close::InitTimeout),
            close = &mut end => break Some(close),
        }
    };
    // The operations end now, not after the closing handshake.
    drop(graphql);
    crate::metrics::websocket_closed(close.as_ref().map(Close::code));
    let Some(close) = close else { return };
    tracing::info!(code = close.code(), reason = %close.reason(), running = session.guard.running(), "closing a WebSocket");
    if protocol == WebSocketProtocols::SubscriptionsTransportWS && session.phase() != Phase::Ready {
        // graphql-ws clients learn of a refused connection from this message, not from the close.
        let refused = serde_json::json!({ "type": "connection_error", "payload": { "message": close.reason() } });
        let _ = sink.send(Message::Text(refused.to_string().into())).await;
    }
    let frame = CloseFrame { code: close.code(), reason: close.reason().into() };
    if sink.send(Message::Close(Some(frame))).await.is_ok() {
        // Read on until the client's close (or anything failing), so the client reads ours before the connection
        // drops.
        let _ = tokio::time::timeout(CLOSE_GRACE, async { while let Some(Ok(_)) = source.next().await {} }).await;
    }
}

/// Whether a read failed on a message or frame over the size limit. axum does not expose tungstenite's error type,
/// only its text ("Space limit exceeded: Message too long: ..."); the end-to-end test of the limit holds it.
fn too_big(error: &axum::Error) -> bool {
    error.to_string().contains("Message too long")
}
