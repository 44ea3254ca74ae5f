//! graphql-transport-ws as the vault speaks it (docs/websocket.md): the messages the follower sends, and what each
//! close code means for it.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::documents::CREDENTIAL_CHANGED;

/// The subprotocol offered in `Sec-WebSocket-Protocol`.
pub(super) const SUBPROTOCOL: &str = "graphql-transport-ws";

/// `connection_init`, with the token read for this connection.
pub(super) fn connection_init(token: &SecretString) -> String {
    json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", token.expose_secret()) } })
        .to_string()
}

/// `subscribe` to `credentialChanged`, resuming after `after` when there is one.
pub(super) fn subscribe(id: &str, seller: Option<&str>, after: Option<&str>) -> String {
    let variables = json!({ "sellerLogin": seller, "after": after });
    let payload = crate::http::request_body(&CREDENTIAL_CHANGED, &variables);
    json!({ "id": id, "type": "subscribe", "payload": payload }).to_string()
}

/// A client `ping` (the server closes a socket silent for 60 s) and the `pong` owed to a server `ping`.
pub(super) const PING: &str = r#"{"type":"ping"}"#;
pub(super) const PONG: &str = r#"{"type":"pong"}"#;

/// What a close asks the follower to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterClose {
    /// Reconnect with the usual backoff (a deploy, a network failure, an expired token).
    Reconnect,
    /// Reconnect, but wait longer first: a limit, or a token or access that an operator or the token source has
    /// to renew.
    ReconnectSlowly,
    /// Never again: the follower sent something wrong, and would again.
    Stop,
}

/// The table of docs/websocket.md, for a tool: everything that a later try may fix is retried.
pub(super) fn after_close(code: u16, reason: &str) -> AfterClose {
    match code {
        1009 | 4400 | 4409 => AfterClose::Stop,
        4429 if reason.starts_with("Too many initialisation requests") => AfterClose::Stop,
        4403 | 4429 => AfterClose::ReconnectSlowly,
        _ => AfterClose::Reconnect,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::Value;

    use super::*;

    #[test]
    fn a_deploy_an_expired_token_and_a_silence_reconnect_and_client_bugs_stop() {
        assert_eq!(after_close(1001, "Going away"), AfterClose::Reconnect);
        assert_eq!(after_close(1006, ""), AfterClose::Reconnect);
        assert_eq!(after_close(4401, "Token expired"), AfterClose::Reconnect);
        assert_eq!(after_close(3008, "timeout"), AfterClose::Reconnect);
        assert_eq!(after_close(4403, "Token revoked"), AfterClose::ReconnectSlowly);
        assert_eq!(after_close(4429, "Too many sockets"), AfterClose::ReconnectSlowly);
        assert_eq!(after_close(4429, "Too many initialisation requests"), AfterClose::Stop);
        assert_eq!(after_close(4400, "Bad request: x"), AfterClose::Stop);
        assert_eq!(after_close(4409, "Subscriber for 1 already exists"), AfterClose::Stop);
    }

    #[test]
    fn a_resume_sends_its_cursor_and_the_document_hash() {
        let message: Value = serde_json::from_str(&subscribe("2", Some("bestshop"), Some("c-9"))).unwrap();
        assert_eq!(message["type"], "subscribe");
        assert_eq!(message["payload"]["variables"], json!({ "sellerLogin": "bestshop", "after": "c-9" }));
        assert_eq!(message["payload"]["extensions"]["persistedQuery"]["sha256Hash"], CREDENTIAL_CHANGED.sha256());
        let init = connection_init(&SecretString::from("t0ken".to_owned()));
        assert!(init.contains("Bearer t0ken"));
    }
}
