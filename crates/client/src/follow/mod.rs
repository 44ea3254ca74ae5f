//! The background `credentialChanged` subscription that keeps the cache honest.
//!
//! One socket, one subscription. Each change invalidates what the cache holds for that seller and kind. After a
//! disconnect it reconnects with backoff, builds `connection_init` from the token source again, and resumes after
//! the last cursor, so no change is lost; while it is away the cache serves no issued credential. When the server
//! says the cursor was pruned (`CURSOR_EXPIRED`), the whole cache is dropped and the feed goes on from now.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::session::Session;
use crate::types::CredentialChange;

mod protocol;

use protocol::AfterClose;

/// How long to wait for `connection_ack`.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the close that follows a `complete` from the server.
const CLOSE_AFTER_COMPLETE: Duration = Duration::from_secs(2);
/// Pings well within the server's 60 s silence limit.
const PING_EVERY: Duration = Duration::from_secs(20);
/// The first wait before a reconnection, doubled on each failed try up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The first wait after a close that a quick retry will not fix (a limit, a refused token).
const SLOW_BACKOFF: Duration = Duration::from_secs(5);

/// What to follow.
#[derive(Debug, Clone, Default)]
pub struct FollowOptions {
    /// Only this seller's changes (default: every seller the token reaches).
    pub seller_login: Option<String>,
    /// Resume after this cursor (one the tool kept from an earlier run); default: from now on.
    pub after: Option<String>,
}

/// What happened on the feed, for a tool that wants to log or react.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum FeedEvent {
    /// The subscription is running (again); `resumed_after` is the cursor it resumed from.
    Subscribed {
        /// The cursor sent as `after`.
        resumed_after: Option<String>,
    },
    /// A credential changed; the cache has already forgotten it.
    Changed(CredentialChange),
    /// The cursor was pruned on the server: the whole cache was dropped.
    CursorExpired,
    /// The connection ended; the follower reconnects.
    Disconnected(String),
    /// The follower stopped for good (a client bug, or an error that retrying would repeat).
    Stopped(String),
}

/// The running follower. Dropping it stops it (and the cache stops serving issued credentials).
#[derive(Debug)]
pub struct Following {
    task: JoinHandle<()>,
    state: Arc<State>,
    session: Arc<Session>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    cursor: Mutex<Option<String>>,
    events: Option<broadcast::Sender<FeedEvent>>,
}

impl State {
    fn cursor(&self) -> Option<String> {
        self.cursor.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_cursor(&self, cursor: Option<String>) {
        *self.cursor.lock().unwrap_or_else(PoisonError::into_inner) = cursor;
    }

    fn emit(&self, event: FeedEvent) {
        if let Some(events) = &self.events {
            // Nobody listening is fine.
            let _ = events.send(event);
        }
    }
}

impl Following {
    /// The cursor of the last change received: keep it to resume from in a later run ([`FollowOptions::after`]).
    pub fn cursor(&self) -> Option<String> {
        self.state.cursor()
    }

    /// The feed's events from now on.
    pub fn events(&self) -> broadcast::Receiver<FeedEvent> {
        match &self.state.events {
            Some(events) => events.subscribe(),
            None => broadcast::channel(1).1,
        }
    }

    /// Stops following.
    pub fn stop(self) {}
}

impl Drop for Following {
    fn drop(&mut self) {
        self.task.abort();
        self.session.set_following(false);
    }
}

/// Starts following in a task of the current Tokio runtime.
pub(crate) fn start(session: Arc<Session>, options: FollowOptions) -> Following {
    let (events, _) = broadcast::channel(256);
    let state = Arc::new(State { cursor: Mutex::new(options.after.clone()), events: Some(events) });
    let task = tokio::spawn(run(Arc::clone(&session), options.seller_login, Arc::clone(&state)));
    Following { task, state, session }
}

/// How a session ended.
enum Ended {
    Reconnect(String, AfterClose),
    Stop(String),
}

async fn run(vault: Arc<Session>, seller: Option<String>, state: Arc<State>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let ended = session(&vault, seller.as_deref(), &state, &mut backoff).await;
        // Away from the feed, changes may be missed until the resume: issued credentials are asked for again.
        vault.set_following(false);
        match ended {
            Ended::Stop(why) => {
                tracing::warn!(reason = %why, "cdvault: stopped following credential changes");
                state.emit(FeedEvent::Stopped(why));
                return;
            }
            Ended::Reconnect(why, after) => {
                if after == AfterClose::ReconnectSlowly {
                    backoff = backoff.max(SLOW_BACKOFF);
                }
                tracing::info!(reason = %why, wait = ?backoff, "cdvault: credential feed disconnected, reconnecting");
                state.emit(FeedEvent::Disconnected(why));
                tokio::time::sleep(jitter(backoff)).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Between half and all of `wait`, so a fleet of tools restarted together does not reconnect in step.
fn jitter(wait: Duration) -> Duration {
    use rand::Rng;
    wait.mul_f64(rand::rng().random_range(0.5..=1.0))
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One connection: open, acknowledge, subscribe, then deliver changes until it ends.
async fn session(vault: &Session, seller: Option<&str>, state: &State, backoff: &mut Duration) -> Ended {
    let mut socket = match open(vault).await {
        Ok(socket) => socket,
        Err(ended) => return ended,
    };
    *backoff = FIRST_BACKOFF;
    let mut id = 0_u64;
    let mut expired = false;
    if let Err(ended) = subscribe(&mut socket, vault, seller, state, &mut id).await {
        return ended;
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let message = tokio::select! {
            message = socket.next() => message,
            _ = ping.tick() => {
                if socket.send(Message::text(protocol::PING)).await.is_err() {
                    return reconnect("the connection was lost");
                }
                continue;
            }
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => return closed(frame),
            Some(Ok(_)) => continue,
            Some(Err(error)) => return reconnect(&format!("the connection failed: {error}")),
            None => return reconnect("the connection was lost"),
        };
        let Ok(message) = serde_json::from_str::<Value>(&text) else {
            return Ended::Stop("the server sent a message that is not JSON".into());
        };
        match message["type"].as_str() {
            Some("next") => match deliver(vault, state, &message["payload"]) {
                Delivered::Change => {}
                Delivered::CursorExpired => expired = true,
                Delivered::Refused(why) => return Ended::Stop(why),
            },
            Some("complete") if expired => {
                // The server ended the stale subscription: go on from now.
                expired = false;
                if let Err(ended) = subscribe(&mut socket, vault, seller, state, &mut id).await {
                    return ended;
                }
            }
            // The server ends a subscription just before it closes the socket (an expired or revoked token): the
            // close says why.
            Some("complete") => return completed(&mut socket).await,
            Some("ping") if socket.send(Message::text(protocol::PONG)).await.is_err() => {
                return reconnect("the connection was lost");
            }
            Some("error") => return Ended::Stop(format!("the subscription was refused: {}", message["payload"])),
            _ => {}
        }
    }
}

/// After the server completed the subscription: the reason of the close that usually follows.
async fn completed(socket: &mut Socket) -> Ended {
    let close = tokio::time::timeout(CLOSE_AFTER_COMPLETE, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return Some(closed(frame)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    });
    close.await.ok().flatten().unwrap_or_else(|| reconnect("the server completed the subscription"))
}

fn reconnect(why: &str) -> Ended {
    Ended::Reconnect(why.to_owned(), AfterClose::Reconnect)
}

fn closed(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> Ended {
    let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
    let why = format!("closed with {code} {reason}");
    match protocol::after_close(code, &reason) {
        AfterClose::Stop => Ended::Stop(why),
        after => Ended::Reconnect(why, after),
    }
}

/// Opens the socket and waits for `connection_ack`, with a token read now.
async fn open(vault: &Session) -> Result<Socket, Ended> {
    let token = vault.token().await.map_err(|e| {
        let after = if e.is_transient() { AfterClose::Reconnect } else { AfterClose::ReconnectSlowly };
        Ended::Reconnect(format!("no token: {e}"), after)
    })?;
    let mut request =
        vault.ws_url().as_str().into_client_request().map_err(|e| Ended::Stop(format!("bad WebSocket URL: {e}")))?;
    request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static(protocol::SUBPROTOCOL));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| match e {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            let after = if response.status() == 429 { AfterClose::ReconnectSlowly } else { AfterClose::Reconnect };
            Ended::Reconnect(format!("the upgrade was refused with HTTP {}", response.status()), after)
        }
        other => reconnect(&format!("cannot connect: {other}")),
    })?;
    if socket.send(Message::text(protocol::connection_init(&token))).await.is_err() {
        return Err(reconnect("the connection was lost"));
    }
    let ack = tokio::time::timeout(ACK_TIMEOUT, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(&text).unwrap_or_default();
                    if message["type"] == "connection_ack" {
                        return Ok(());
                    }
                }
                Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(reconnect("the connection was lost before its acknowledgement")),
            }
        }
    });
    match ack.await {
        Ok(Ok(())) => Ok(socket),
        Ok(Err(ended)) => Err(ended),
        Err(_) => Err(reconnect("no connection_ack in time")),
    }
}

/// Subscribes after the last cursor. Without one, what changed while away is unknown: the cache is dropped.
async fn subscribe(
    socket: &mut Socket,
    vault: &Session,
    seller: Option<&str>,
    state: &State,
    id: &mut u64,
) -> Result<(), Ended> {
    *id += 1;
    let cursor = state.cursor();
    if cursor.is_none() {
        vault.cache().clear();
    }
    let message = protocol::subscribe(&id.to_string(), seller, cursor.as_deref());
    if socket.send(Message::text(message)).await.is_err() {
        return Err(reconnect("the connection was lost"));
    }
    vault.set_following(true);
    tracing::debug!(after = ?cursor, "cdvault: following credential changes");
    state.emit(FeedEvent::Subscribed { resumed_after: cursor });
    Ok(())
}

enum Delivered {
    Change,
    CursorExpired,
    Refused(String),
}

/// One `next`: a change to forget, a pruned cursor, or an error that retrying would repeat.
fn deliver(vault: &Session, state: &State, payload: &Value) -> Delivered {
    if let Some(first) = payload["errors"].as_array().and_then(|errors| errors.first()) {
        let error = crate::error::ServerError::from_json(first);
        // A cursor the server cannot use any more (pruned, or unreadable after an upgrade): re-read everything.
        let stale = error.code == crate::ErrorCode::CursorExpired
            || (error.code == crate::ErrorCode::BadUserInput && error.field.as_deref() == Some("after"));
        if stale {
            vault.cache().clear();
            state.set_cursor(None);
            state.emit(FeedEvent::CursorExpired);
            return Delivered::CursorExpired;
        }
        return Delivered::Refused(format!("the feed answered {error}"));
    }
    match serde_json::from_value::<CredentialChange>(payload["data"]["credentialChanged"].clone()) {
        Ok(change) => {
            vault.cache().invalidate(&change.seller_login, change.kind);
            state.set_cursor(Some(change.cursor.clone()));
            state.emit(FeedEvent::Changed(change));
            Delivered::Change
        }
        Err(e) => Delivered::Refused(format!("a change of unexpected shape: {e}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::StaticToken;
    use crate::cache::{Entry, Slot};

    fn client() -> Session {
        let ws = reqwest::Url::parse("ws://127.0.0.1:9/graphql/ws").unwrap();
        Session::new(Arc::new(StaticToken::new("t")), ws)
    }

    fn entry() -> Entry {
        let credential = json!({
            "sellerLogin": "bestshop", "apiLogin": "bestshop-api", "password": "p", "version": 1,
            "issuedAt": "2026-12-03T10:00:00Z"
        });
        Entry::Api(Arc::new(serde_json::from_value(credential).unwrap()))
    }

    fn fill(client: &Session, seller: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        client.cache().put(seller, Slot::ApiCredential, entry(), deadline, client.cache().generation());
    }

    #[test]
    fn a_pruned_cursor_drops_the_whole_cache_and_the_cursor() {
        let (client, state) = (client(), State { cursor: Mutex::new(Some("c-1".into())), events: None });
        fill(&client, "bestshop");
        fill(&client, "othershop");
        let expired =
            json!({ "errors": [{ "message": "m", "extensions": { "code": "CURSOR_EXPIRED", "field": "after" } }] });
        assert!(matches!(deliver(&client, &state, &expired), Delivered::CursorExpired));
        assert_eq!(client.cache().len(), 0);
        assert_eq!(state.cursor(), None);
    }

    #[test]
    fn a_change_forgets_its_seller_and_moves_the_cursor() {
        let (client, state) = (client(), State::default());
        fill(&client, "bestshop");
        fill(&client, "othershop");
        let change = json!({ "data": { "credentialChanged": {
            "cursor": "c-2", "sellerLogin": "bestshop", "kind": "MARKETPLACE_API", "version": 2, "change": "STORED",
            "changedBy": "admin", "occurredAt": "2026-12-03T10:00:00Z"
        } } });
        assert!(matches!(deliver(&client, &state, &change), Delivered::Change));
        assert!(client.cache().get("bestshop", Slot::ApiCredential).is_none());
        assert!(client.cache().get("othershop", Slot::ApiCredential).is_some());
        assert_eq!(state.cursor().as_deref(), Some("c-2"));
    }

    #[test]
    fn another_error_on_the_feed_stops_it() {
        let (client, state) = (client(), State::default());
        let forbidden = json!({ "errors": [{ "message": "m", "extensions": { "code": "FORBIDDEN" } }] });
        assert!(matches!(deliver(&client, &state, &forbidden), Delivered::Refused(_)));
    }
}
