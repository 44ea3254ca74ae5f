//! One socket's side of the checks that need the vault: the token of `connection_init` (verified, not revoked,
//! within its identity's socket cap), the rate limit each `subscribe` pays, its document checked against the trusted
//! documents when they are configured, and when the session must end.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_graphql::Data;
use axum::body::Bytes;
use futures::FutureExt;
use serde_json::{Value, json};

use super::close::Close;
use super::guard::{Guard, Incoming, Phase};
use crate::auth::{AuthError, JwtVerifier};
use crate::http::open_sockets::{Slot, Sockets};
use crate::http::rate_limit::{self, LimitKey, Limiter};
use crate::http::state::AppState;
use crate::http::trusted_documents::{self, TrustedDocuments};
use crate::service::{Caller, Vault};

/// Resolves with the close a session ends with.
pub(super) type SessionEnd = Pin<Box<dyn Future<Output = Close> + Send>>;

/// What to do with a message the client sent.
pub(super) enum Step {
    /// Hand it to async-graphql.
    Forward,
    /// Hand this instead to async-graphql: the `subscribe` of a trusted document sent by hash only, its text added.
    Rewritten(Bytes),
    /// Hand nothing over; send this to the client (a `subscribe` refused with an `error` message).
    Answer(String),
    /// The `connection_init` was accepted: hand it over with the session's data (its caller); the session ends
    /// when `end` resolves.
    Accepted { data: Data, end: SessionEnd },
}

/// The state of one socket that the checks need.
pub(super) struct Session {
    vault: Arc<Vault>,
    verifier: Arc<JwtVerifier>,
    limiter: Arc<Limiter>,
    sockets: Arc<Sockets>,
    trusted_documents: Option<TrustedDocuments>,
    request_id: String,
    caller_request_id: Option<String>,
    pub(super) guard: Guard,
    /// The identity's rate limit, once its token is accepted.
    limit_key: Option<LimitKey>,
    /// This socket's place among its identity's, held until the socket is dropped.
    slot: Option<Slot>,
}

impl Session {
    pub(super) fn new(state: &AppState, request_id: String, caller_request_id: Option<String>) -> Self {
        Self {
            vault: state.vault.clone(),
            verifier: state.verifier.clone(),
            limiter: state.limiter.clone(),
            sockets: state.websocket.clone(),
            trusted_documents: state.trusted_documents.clone(),
            request_id,
            caller_request_id,
            guard: Guard::new(state.websocket.limits().subscriptions_per_socket),
            limit_key: None,
            slot: None,
        }
    }

    pub(super) fn phase(&self) -> Phase {
        self.guard.phase()
    }

    /// Checks a message from the client; an error is the close it deserves.
    pub(super) async fn incoming(&mut self, message: &[u8]) -> Result<Step, Close> {
        if message.len() > crate::http::MAX_BODY_BYTES {
            return Err(Close::TooBig);
        }
        match self.guard.incoming(message)? {
            Incoming::Init(payload) => self.accept(&payload).await,
            Incoming::Subscribe { kind, id, payload } => {
                self.charge().await?;
                Ok(self.trust(&kind, id, payload))
            }
            Incoming::Other => Ok(Step::Forward),
        }
    }

    /// Verifies the token of `connection_init`; refusals are audited like those of HTTP.
    async fn accept(&mut self, payload: &Value) -> Result<Step, Close> {
        let header = payload.get("authorization").or_else(|| payload.get("Authorization")).and_then(Value::as_str);
        let identity = match self.verifier.authenticate(header).await {
            Ok(Some(identity)) => identity,
            Ok(None) => {
                self.vault.record_authentication_failure(&self.request_id, cdvault_domain::Reason::MissingToken).await;
                return Err(Close::Forbidden("a bearer token is required in the connection_init payload".into()));
            }
            Err(err) => {
                tracing::info!(reason = %err, "subscription token refused");
                self.vault.record_authentication_failure(&self.request_id, err.reason()).await;
                return Err(match err {
                    AuthError::KeysUnavailable => Close::TryAgainLater,
                    err => Close::Forbidden(err.to_string()),
                });
            }
        };
        // Audited by the check, as over HTTP.
        if self.vault.check_not_revoked(&identity, &self.request_id).await.is_err() {
            return Err(Close::TokenRevoked);
        }
        let Some(slot) = self.sockets.admit(&identity.issuer, &identity.subject) else {
            tracing::info!(subject = %identity.subject, "socket refused: its identity holds as many as it may");
            return Err(Close::TooManySockets);
        };
        self.slot = Some(slot);
        self.limit_key =
            Some(LimitKey::Identity { issuer: identity.issuer.clone(), subject: identity.subject.clone() });
        let caller = Caller {
            request_id: self.request_id.clone(),
            caller_request_id: self.caller_request_id.clone(),
            principal: Some(self.vault.principal_for(&identity)),
            expires_at: identity.expires_at,
            identity: Some(identity),
        };
        let end = session_end(&self.vault, &caller);
        let mut data = Data::default();
        data.insert(caller);
        Ok(Step::Accepted { data, end })
    }

    /// Checks a `subscribe`'s document against the trusted documents, when configured, before async-graphql parses
    /// it. A refusal is the operation's `error` message (both protocols' clients read an array of GraphQL errors
    /// there): the socket stays open for the client's other, trusted, operations.
    fn trust(&self, kind: &str, id: String, mut payload: Value) -> Step {
        let Some(trusted) = &self.trusted_documents else { return Step::Forward };
        let query = payload.get("query").and_then(Value::as_str);
        match trusted.admit(query, trusted_documents::persisted_hash(&payload)) {
            Ok(None) => Step::Forward,
            Ok(Some(text)) => {
                payload["query"] = Value::String(text.to_owned());
                // The message as sent (`subscribe`, or graphql-ws's `start`), the text added.
                Step::Rewritten(json!({ "type": kind, "id": id, "payload": payload }).to_string().into())
            }
            Err(refused) => {
                tracing::info!(code = %refused.code(), "document refused: not trusted");
                let extensions = json!({ "code": refused.code().as_str(), "requestId": self.request_id });
                let error = json!({ "message": refused.message(), "extensions": extensions });
                Step::Answer(json!({ "type": "error", "id": id, "payload": [error] }).to_string())
            }
        }
    }

    /// Takes one request from the identity's budget for a `subscribe`; a denial is audited as over HTTP.
    async fn charge(&self) -> Result<(), Close> {
        let Some(key) = &self.limit_key else { return Err(Close::Unauthorized) };
        match self.limiter.check(key) {
            Ok(()) => Ok(()),
            Err(denied) => {
                crate::metrics::rate_limit_refused(key.kind(), "websocket");
                rate_limit::audit_denial(&self.vault, key, &denied, &self.request_id).await;
                Err(Close::RateLimited)
            }
        }
    }
}

/// Resolves when a socket must close before any authentication: the server shuts down.
pub(super) fn shutdown(vault: &Vault) -> SessionEnd {
    vault.sessions_closed().map(|()| Close::GoingAway).boxed()
}

/// Resolves when an authenticated session must end, with its close: the server shuts down, the token is revoked,
/// expires, or the grants it was opened under no longer give it access. The subscriptions of the session end on
/// their own at the same moments (`graphql::context::session_end`); this closes the socket too.
fn session_end(vault: &Vault, caller: &Caller) -> SessionEnd {
    let closed = vault.sessions_closed();
    let revoked = match &caller.identity {
        Some(identity) => vault.revocation_end(identity.clone()).boxed(),
        None => futures::future::pending().boxed(),
    };
    let expired = match caller.expires_at {
        Some(at) => {
            let left = at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
            tokio::time::sleep(left).boxed()
        }
        None => futures::future::pending().boxed(),
    };
    let lost = vault.access_lost(caller);
    async move {
        tokio::select! {
            biased;
            () = closed => Close::GoingAway,
            () = revoked => Close::TokenRevoked,
            () = expired => Close::TokenExpired,
            () = lost => Close::AccessLost,
        }
    }
    .boxed()
}
