//! The errors a client can see, and their one mapping to GraphQL `extensions.code`.

use async_graphql::ErrorExtensions;
use cdvault_domain::ValidationError;
use cdvault_domain::policy::Denial;
use cdvault_storage::StorageError;

/// Outcomes a client can see. Each variant is one stable `extensions.code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid token: `UNAUTHENTICATED`.
    #[error("{0}")]
    Unauthenticated(String),
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
    /// The marketplace could not be used (down, slow, rate-limited, blocked): `UPSTREAM_UNAVAILABLE` with the
    /// client's reason code.
    #[error("{message}")]
    Upstream { reason: &'static str, message: String },
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

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadUserInput(_) => "BAD_USER_INPUT",
            Self::Conflict(_) | Self::CredentialRejected(_) => "CONFLICT",
            Self::Upstream { .. } => "UPSTREAM_UNAVAILABLE",
            Self::Internal { .. } => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The GraphQL error for this outcome. Internal errors are logged here, with their whole source chain.
    pub fn into_graphql(self, request_id: &str) -> async_graphql::Error {
        let code = self.code();
        match self {
            Self::Internal { .. } => {
                tracing::error!(request_id, error = %error_chain(&self), "request failed");
                async_graphql::Error::new(format!("internal error (request id {request_id})")).extend_with(|_, e| {
                    e.set("code", code);
                    e.set("requestId", request_id);
                })
            }
            Self::BadUserInput(ref v) => {
                let (field, reason) = (v.field, v.reason);
                async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
                    e.set("code", code);
                    e.set("field", field);
                    e.set("reason", reason.as_str());
                    e.set("requestId", request_id);
                })
            }
            Self::Forbidden(denial) => async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
                e.set("code", code);
                e.set("reason", denial.reason().as_str());
                e.set("requestId", request_id);
            }),
            Self::CredentialRejected(_) => async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
                e.set("code", code);
                e.set("reason", "MARKETPLACE_REJECTED");
                e.set("requestId", request_id);
            }),
            Self::Upstream { reason, .. } => async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
                e.set("code", code);
                e.set("reason", reason);
                e.set("requestId", request_id);
            }),
            _ => async_graphql::Error::new(self.to_string()).extend_with(|_, e| {
                e.set("code", code);
                e.set("requestId", request_id);
            }),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        Self::internal("storage", err)
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
