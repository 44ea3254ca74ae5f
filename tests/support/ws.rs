//! A graphql-transport-ws client for the subscription tests.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::TestApp;

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/graphql/ws` with the graphql-transport-ws protocol and sends `connection_init` with `token`.
pub async fn connect(app: &TestApp, token: Option<&str>) -> Socket {
    let mut socket = open(app).await;
    let payload = token.map_or(json!({}), |t| json!({ "authorization": format!("Bearer {t}") }));
    send(&mut socket, json!({ "type": "connection_init", "payload": payload })).await;
    socket
}

/// Opens `/graphql/ws` with the graphql-transport-ws protocol and sends nothing.
pub async fn open(app: &TestApp) -> Socket {
    try_open(app).await.unwrap_or_else(|status| panic!("the upgrade was refused with {status}"))
}

/// Opens `/graphql/ws` with the graphql-transport-ws protocol, or the HTTP status the upgrade was refused with.
pub async fn try_open(app: &TestApp) -> Result<Socket, u16> {
    try_open_at(&app.address.to_string()).await
}

/// Opens `/graphql/ws` of the server at `address` (`host:port`, e.g. a `cdvault` child process) and sends
/// `connection_init` with `token`.
pub async fn connect_at(address: &str, token: &str) -> Socket {
    let mut socket =
        try_open_at(address).await.unwrap_or_else(|status| panic!("the upgrade was refused with {status}"));
    let payload = json!({ "authorization": format!("Bearer {token}") });
    send(&mut socket, json!({ "type": "connection_init", "payload": payload })).await;
    socket
}

async fn try_open_at(address: &str) -> Result<Socket, u16> {
    let mut request = format!("ws://{address}/graphql/ws").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(error) => panic!("the upgrade failed: {error}"),
    }
}

/// Opens `/graphql/ws` as a browser page on `origin` would (or a tool, with `None`): the socket, or the status and
/// JSON body the upgrade was refused with.
pub async fn try_open_from(app: &TestApp, origin: Option<&str>) -> Result<Socket, (u16, Value)> {
    let mut request = app.url("/graphql/ws").replace("http://", "ws://").into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    if let Some(origin) = origin {
        request.headers_mut().insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().map_or(Value::Null, |b| serde_json::from_slice(b).unwrap());
            Err((response.status().as_u16(), body))
        }
        Err(error) => panic!("the upgrade failed: {error}"),
    }
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::Text(message.to_string().into())).await.unwrap();
}

/// The next JSON message, or `None` if the server closed the connection or nothing came within `wait`.
pub async fn next(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ping" || value["type"] == "pong" {
                    continue;
                }
                return Some(value);
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// The close code and reason the server closes the socket with, skipping the messages before it; panics when the
/// socket stays open for `wait` or ends without a close frame.
pub async fn closed(socket: &mut Socket, wait: Duration) -> (u16, String) {
    let read = async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(Some(frame)))) => return (u16::from(frame.code), frame.reason.to_string()),
                Some(Ok(Message::Close(None))) => panic!("closed without a code"),
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("the socket failed before its close frame: {error}"),
                None => panic!("the socket ended without a close frame"),
            }
        }
    };
    tokio::time::timeout(wait, read).await.expect("the server did not close the socket")
}

/// Subscribes (`id`) to `query` on an acknowledged socket.
pub async fn subscribe(socket: &mut Socket, id: &str, query: &str, variables: Value) {
    send(socket, json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })).await;
}
