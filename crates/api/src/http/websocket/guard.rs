//! What a socket may say, and when: the rules async-graphql does not enforce, checked on each message before it is
//! handed over. `connection_init` first (anything else before the acknowledgement closes 4401), only once (4429),
//! messages the protocols have (4400), and at most so many subscriptions running at once (4429), counted as
//! `subscribe` minus `complete` from either side.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;

use super::close::Close;

/// Where a socket stands in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Nothing received yet: only `connection_init` is accepted.
    AwaitingInit,
    /// `connection_init` accepted and handed over; its acknowledgement not sent yet.
    Initialising,
    /// Acknowledged: operations may run.
    Ready,
}

/// What an accepted message asks for.
#[derive(Debug, PartialEq)]
pub(super) enum Incoming {
    /// The first `connection_init`, with its payload (where the token is).
    Init(Value),
    /// A new operation (`subscribe`, or `start` in graphql-ws), within the socket's cap: its message type, id and
    /// payload (the request: `query`, `variables`, `extensions`).
    Subscribe { kind: String, id: String, payload: Value },
    /// Anything else the protocols have: `complete`/`stop`, `ping`, `pong`, `connection_terminate`.
    Other,
}

/// The envelope every message of both protocols shares; the rest is async-graphql's to parse.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    payload: Option<Value>,
}

/// The protocol state of one socket.
#[derive(Debug)]
pub(super) struct Guard {
    phase: Phase,
    running: HashSet<String>,
    max_running: usize,
}

impl Guard {
    pub(super) fn new(max_running: usize) -> Self {
        Self { phase: Phase::AwaitingInit, running: HashSet::new(), max_running }
    }

    pub(super) fn phase(&self) -> Phase {
        self.phase
    }

    /// Operations running now on the socket.
    pub(super) fn running(&self) -> usize {
        self.running.len()
    }

    /// Checks a message from the client; an error is the close it deserves.
    pub(super) fn incoming(&mut self, message: &[u8]) -> Result<Incoming, Close> {
        // Before the acknowledgement, anything but the one `connection_init` closes the socket, malformed JSON too.
        let envelope: Envelope = match serde_json::from_slice(message) {
            Ok(envelope) => envelope,
            Err(_) if self.phase != Phase::Ready => return Err(Close::Unauthorized),
            Err(e) => return Err(Close::BadRequest(e.to_string())),
        };
        match (self.phase, envelope.kind.as_str()) {
            (Phase::AwaitingInit, "connection_init") => {
                self.phase = Phase::Initialising;
                Ok(Incoming::Init(envelope.payload.unwrap_or(Value::Null)))
            }
            (Phase::AwaitingInit, _) => Err(Close::Unauthorized),
            (_, "connection_init") => Err(Close::TooManyInits),
            (Phase::Initialising, _) => Err(Close::Unauthorized),
            (Phase::Ready, "subscribe" | "start") => {
                let Some(id) = envelope.id else { return Err(Close::BadRequest("a subscribe without an id".into())) };
                if self.running.contains(&id) {
                    return Err(Close::DuplicateId(id));
                }
                if self.running.len() >= self.max_running {
                    return Err(Close::TooManySubscriptions);
                }
                self.running.insert(id.clone());
                let kind = envelope.kind.clone();
                Ok(Incoming::Subscribe { kind, id, payload: envelope.payload.unwrap_or(Value::Null) })
            }
            (Phase::Ready, "complete" | "stop") => {
                if let Some(id) = envelope.id {
                    self.running.remove(&id);
                }
                Ok(Incoming::Other)
            }
            (Phase::Ready, "ping" | "pong" | "connection_terminate") => Ok(Incoming::Other),
            (Phase::Ready, other) => Err(Close::BadRequest(format!("unknown message type '{other}'"))),
        }
    }

    /// Notes a message sent to the client: the acknowledgement opens the socket, a `complete` or an `error` (ours:
    /// a refused document) ends an operation.
    pub(super) fn outgoing(&mut self, message: &str) {
        // Results are most of the traffic and change nothing here: not parsed again when they look like one.
        if message.starts_with(r#"{"type":"next""#) || message.starts_with(r#"{"type":"data""#) {
            return;
        }
        let Ok(envelope) = serde_json::from_str::<Envelope>(message) else { return };
        match envelope.kind.as_str() {
            "connection_ack" if self.phase == Phase::Initialising => self.phase = Phase::Ready,
            "complete" | "error" => {
                if let Some(id) = envelope.id {
                    self.running.remove(&id);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn bytes(message: serde_json::Value) -> Vec<u8> {
        message.to_string().into_bytes()
    }

    fn subscribe(id: &str) -> Vec<u8> {
        bytes(json!({ "type": "subscribe", "id": id, "payload": { "query": "subscription { x }" } }))
    }

    fn ready(max: usize) -> Guard {
        let mut guard = Guard::new(max);
        let init = guard.incoming(&bytes(json!({ "type": "connection_init", "payload": { "authorization": "b" } })));
        assert_eq!(init, Ok(Incoming::Init(json!({ "authorization": "b" }))));
        guard.outgoing(r#"{"type":"connection_ack"}"#);
        assert_eq!(guard.phase(), Phase::Ready);
        guard
    }

    #[test]
    fn anything_but_connection_init_before_the_acknowledgement_is_unauthorized() {
        for first in [subscribe("1"), bytes(json!({ "type": "ping" })), b"not json".to_vec()] {
            assert_eq!(Guard::new(10).incoming(&first), Err(Close::Unauthorized));
        }
        let mut initialising = Guard::new(10);
        initialising.incoming(&bytes(json!({ "type": "connection_init" }))).unwrap();
        assert_eq!(initialising.incoming(&subscribe("1")), Err(Close::Unauthorized));
        assert_eq!(initialising.incoming(&bytes(json!({ "type": "connection_init" }))), Err(Close::TooManyInits));
    }

    #[test]
    fn subscriptions_are_counted_until_either_side_completes_them() {
        let mut guard = ready(2);
        assert!(matches!(guard.incoming(&subscribe("1")), Ok(Incoming::Subscribe { id, .. }) if id == "1"));
        assert_eq!(guard.incoming(&subscribe("1")), Err(Close::DuplicateId("1".into())));
        assert!(matches!(guard.incoming(&subscribe("2")), Ok(Incoming::Subscribe { .. })));
        assert_eq!(guard.incoming(&subscribe("3")), Err(Close::TooManySubscriptions));

        guard.outgoing(r#"{"type":"complete","id":"1"}"#);
        assert_eq!(guard.running(), 1);
        assert_eq!(guard.incoming(&bytes(json!({ "type": "complete", "id": "2" }))), Ok(Incoming::Other));
        assert_eq!(guard.running(), 0);
        guard.outgoing(r#"{"type":"next","id":"3","payload":{}}"#);
        let legacy = guard.incoming(&bytes(json!({ "type": "start", "id": "4", "payload": {} })));
        assert!(matches!(legacy, Ok(Incoming::Subscribe { kind, .. }) if kind == "start"), "graphql-ws's own type");
        guard.outgoing(r#"{"type":"complete","id":"4"}"#);
        let third = guard.incoming(&subscribe("3"));
        assert!(matches!(third, Ok(Incoming::Subscribe { payload, .. }) if payload["query"] == "subscription { x }"));
        guard.outgoing(r#"{"type":"error","id":"3","payload":[]}"#);
        assert_eq!(guard.running(), 0, "an error ends the operation");
    }

    #[test]
    fn an_unknown_or_malformed_message_after_the_acknowledgement_is_a_bad_request() {
        let mut guard = ready(2);
        assert!(matches!(guard.incoming(&bytes(json!({ "type": "hello" }))), Err(Close::BadRequest(_))));
        assert!(matches!(guard.incoming(b"{"), Err(Close::BadRequest(_))));
        assert!(matches!(guard.incoming(&bytes(json!({ "type": "subscribe" }))), Err(Close::BadRequest(_))));
        assert_eq!(guard.incoming(&bytes(json!({ "type": "ping" }))), Ok(Incoming::Other));
    }
}
