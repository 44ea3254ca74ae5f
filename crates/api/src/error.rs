//! The errors a client can see, and their one mapping to GraphQL `extensions.code`.
//!
//! `code` is the registry of every `extensions.code` (resolver, transport and limit codes); `reference` renders it
//! as `docs/errors.md`.

mod code;
mod reference;

pub use code::{ErrorCode, ErrorFamily};
pub use reference::reference_markdown;

use async_graphql::ErrorExtensions;
use cdvault_domain::policy::Denial;
use cdvault_domain::{Reason, ValidationError};
use cdvault_storage::StorageError;

/// Outcomes a client can see. Each variant is one stable `extensions.code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid token: `UNAUTHENTICATED`.
    #[error("{0}")]
    Unauthenticated(String),
    /// The token is revoked: `UNAUTHENTICATED` with reason `TOKEN_REVOKED`.
    #[error("{}", .0.message())]
    TokenRevoked(cdvault_domain::revocation::Refusal),
    /// The vault is frozen: `FROZEN` (secret-bearing operations only).
    #[error("the vault is frozen: no secret is handed out until it is unfrozen")]
    Frozen,
    /// A scope is missing, the seller is out of reach, or the seller is inactive: `FORBIDDEN`.
    #[error("{}", .0.message())]
    Forbidden(Denial),
    /// The named thing does not exist: `NOT_FOUND`.
    #[error("{0} not found")]
    NotFound(String),
    /// An input is invalid: `BAD_USER_INPUT` with `field` and `reason`.
    #[error(transparent)]
    BadUserInput(#[from] ValidationError),
    /// The change conflicts with the current state (e.g. a taken login): `CONFLICT`.
    #[error("{0}")]
    Conflict(String),
    /// The marketplace rejected the stored credential a request needs: `CONFLICT` with reason
    /// `MARKETPLACE_REJECTED` (store a new credential).
    #[error("{0}")]
    CredentialRejected(String),
    /// A change feed subscription resumed from a cursor whose following changes were pruned by retention:
    /// `CURSOR_EXPIRED` (field `after`).
    #[error(
        "the changes after this cursor are no longer kept: read the current state again, then subscribe without `after`"
    )]
    CursorExpired,
    /// The marketplace could not be used (down, slow, rate-limited, blocked): `UPSTREAM_UNAVAILABLE` with the
    /// client's reason code.
    #[error("{message}")]
    Upstream { reason: &'static str, message: String },
    /// The database cannot be reached now; nothing was done: `SERVICE_UNAVAILABLE` (try again shortly).
    #[error("the vault's database is unavailable; try again shortly")]
    Unavailable,
    /// Anything else. The client sees a generic message and the request id; the log gets the chain.
    #[error("internal error: {context}")]
    Internal {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ApiError {
    pub fn internal(context: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal { context, source: Box::new(source) }
    }

    /// The marketplace could not be used: the caller may try again later.
    pub fn upstream(reason: &'static str) -> Self {
        Self::Upstream { reason, message: format!("the marketplace could not be used ({reason}); try again later") }
    }

    /// The `extensions.code` of this outcome.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthenticated(_) | Self::TokenRevoked(_) => ErrorCode::Unauthenticated,
            Self::Frozen => ErrorCode::Frozen,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::BadUserInput(_) => ErrorCode::BadUserInput,
            Self::Conflict(_) | Self::CredentialRejected(_) => ErrorCode::Conflict,
            Self::CursorExpired => ErrorCode::CursorExpired,
            Self::Upstream { .. } => ErrorCode::UpstreamUnavailable,
            Self::Unavailable => ErrorCode::ServiceUnavailable,
            Self::Internal { .. } => ErrorCode::InternalServerError,
        }
    }

    /// The input field at fault (`extensions.field`), for invalid input only.
    fn field(&self) -> Option<&'static str> {
        match self {
            Self::BadUserInput(invalid) => Some(invalid.field),
            Self::CursorExpired => Some("after"),
            _ => None,
        }
    }

    /// The stable cause within the code (`extensions.reason`), where the code has causes.
    fn reason(&self) -> Option<&'static str> {
        match self {
            Self::BadUserInput(invalid) => Some(invalid.reason.as_str()),
            Self::Forbidden(denial) => Some(denial.reason().as_str()),
            Self::CredentialRejected(_) => Some(Reason::MarketplaceRejected.as_str()),
            Self::TokenRevoked(refusal) => Some(refusal.reason().as_str()),
            Self::Upstream { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The GraphQL error for this outcome: the one place `code`, `field`, `reason` and `requestId` are set. Internal
    /// errors are logged here, with their whole source chain, and reach the client as a generic message.
    pub fn into_graphql(self, request_id: &str) -> async_graphql::Error {
        let (code, field, reason) = (self.code(), self.field(), self.reason());
        let message = match self {
            Self::Internal { .. } => {
                tracing::error!(request_id, error = %error_chain(&self), "request failed");
                format!("internal error (request id {request_id})")
            }
            _ => self.to_string(),
        };
        async_graphql::Error::new(message).extend_with(|_, e| {
            e.set("code", code.as_str());
            if let Some(field) = field {
                e.set("field", field);
            }
            if let Some(reason) = reason {
                e.set("reason", reason);
            }
            e.set("requestId", request_id);
        })
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        if err.is_unavailable() {
            // Not an internal error: the client may retry. Logged once here, without the request's data.
            tracing::warn!(error = %error_chain(&err), "the database is unavailable");
            return Self::Unavailable;
        }
        Self::internal("storage", err)
    }
}

impl From<cdvault_storage::audit::AppendError> for ApiError {
    /// An audit event that could not be made durable: whatever it was for did not happen (fail closed). With the
    /// database out of reach the caller may try again (`SERVICE_UNAVAILABLE`); anything else is internal. The
    /// other append outcomes (an inactive seller, a stale version) are decided by the use case.
    fn from(err: cdvault_storage::audit::AppendError) -> Self {
        match err {
            cdvault_storage::audit::AppendError::Unreachable => Self::Unavailable,
            other => Self::internal("recording an audit event", other),
        }
    }
}

/// `error: cause: cause ...`, for the log.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
