//! The one error type of the crate: each variant is one outcome a tool acts on.

use std::time::Duration;

use crate::code::ErrorCode;
use crate::token::TokenError;

/// What went wrong with a call to the vault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with a GraphQL error carrying `extensions.code`.
    #[error("{0}")]
    Server(ServerError),
    /// Too many requests (HTTP 429); `retry_after` is the server's `Retry-After`.
    #[error("RATE_LIMITED: retry after {retry_after:?}")]
    RateLimited {
        /// How long the server asked to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The request did not reach the server or its answer did not arrive (connection refused, timeout).
    #[error("the vault could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
    /// The tool's own JWT could not be obtained.
    #[error("no token for the vault: {0}")]
    Token(#[from] TokenError),
    /// The server answered something that is not the expected GraphQL response (a bug or a proxy in the way).
    #[error("unexpected answer from the vault: {0}")]
    Protocol(String),
}

/// A GraphQL error of the server, with its stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// `extensions.code`.
    pub code: ErrorCode,
    /// The message, for people (match on the code, not on this).
    pub message: String,
    /// `extensions.reason`, when the code has several causes (e.g. `MISSING_SCOPE`).
    pub reason: Option<String>,
    /// `extensions.field`, for input errors.
    pub field: Option<String>,
    /// `extensions.requestId`: quote it when asking the vault's operators.
    pub request_id: Option<String>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl Error {
    /// The server's code, when the server answered with one (`RATE_LIMITED` included).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server(error) => Some(error.code.clone()),
            Self::RateLimited { .. } => Some(ErrorCode::RateLimited),
            _ => None,
        }
    }

    /// Whether trying again later may succeed: the marketplace or the database was unavailable, a rate limit, or
    /// the vault was unreachable. `FROZEN`, refusals and bad input are never retried.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Server(error) => {
                matches!(error.code, ErrorCode::UpstreamUnavailable | ErrorCode::ServiceUnavailable)
            }
            Self::RateLimited { .. } => true,
            Self::Transport(error) => error.is_connect() || error.is_timeout() || error.is_request(),
            Self::Token(error) => error.is_transient(),
            Self::Protocol(_) => false,
        }
    }

    /// The wait the server asked for before a retry.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

impl ServerError {
    /// Reads one entry of a GraphQL `errors` array; an entry without a code is `INTERNAL_SERVER_ERROR`.
    pub(crate) fn from_json(error: &serde_json::Value) -> Self {
        let extensions = &error["extensions"];
        let text = |value: &serde_json::Value| value.as_str().map(str::to_owned);
        Self {
            code: ErrorCode::parse(extensions["code"].as_str().unwrap_or("INTERNAL_SERVER_ERROR")),
            message: text(&error["message"]).unwrap_or_default(),
            reason: text(&extensions["reason"]),
            field: text(&extensions["field"]),
            request_id: text(&extensions["requestId"]),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn frozen_and_refusals_are_not_transient_and_upstream_trouble_is() {
        let server = |code: &str| {
            Error::Server(ServerError::from_json(&json!({ "message": "m", "extensions": { "code": code } })))
        };
        assert!(server("UPSTREAM_UNAVAILABLE").is_transient());
        assert!(server("SERVICE_UNAVAILABLE").is_transient());
        assert!(Error::RateLimited { retry_after: None }.is_transient());
        for code in ["FROZEN", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "BAD_USER_INPUT"] {
            assert!(!server(code).is_transient(), "{code}");
        }
    }

    #[test]
    fn an_error_keeps_the_server_code_reason_and_request_id() {
        let error = ServerError::from_json(&json!({
            "message": "missing scope",
            "extensions": { "code": "FORBIDDEN", "reason": "MISSING_SCOPE", "requestId": "r-1" }
        }));
        assert_eq!(error.code, ErrorCode::Forbidden);
        assert_eq!(error.reason.as_deref(), Some("MISSING_SCOPE"));
        assert_eq!(error.request_id.as_deref(), Some("r-1"));
        assert_eq!(Error::Server(error).code(), Some(ErrorCode::Forbidden));
    }
}
