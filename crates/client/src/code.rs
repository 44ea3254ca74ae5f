//! The server's `extensions.code` values (docs/errors.md), so a tool matches on a variant instead of a string.

use std::fmt;

/// Generates [`ErrorCode`] with its wire names from one list.
macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $wire:literal,)*) => {
        /// A stable error code of the server (`extensions.code`). Codes a newer server sends that this crate does
        /// not know yet arrive as [`ErrorCode::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
            /// A code this version of the crate does not know.
            Other(String),
        }

        impl ErrorCode {
            /// Every code this crate knows, in the order of docs/errors.md.
            pub const KNOWN: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as the server spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(code) => code,
                }
            }

            /// Reads a code as the server spells it.
            pub fn parse(code: &str) -> Self {
                match code {
                    $($wire => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }
    };
}

codes! {
    /// No valid token (HTTP 401), or a field that needs one was asked without any.
    Unauthenticated = "UNAUTHENTICATED",
    /// The token is valid but not enough (`extensions.reason` says why).
    Forbidden = "FORBIDDEN",
    /// The seller or credential does not exist.
    NotFound = "NOT_FOUND",
    /// An input is invalid (`extensions.field`, `extensions.reason`).
    BadUserInput = "BAD_USER_INPUT",
    /// The change conflicts with the current state (e.g. a credential the marketplace rejected).
    Conflict = "CONFLICT",
    /// A change feed's resume cursor was pruned: read everything again.
    CursorExpired = "CURSOR_EXPIRED",
    /// The marketplace could not be used: try again later.
    UpstreamUnavailable = "UPSTREAM_UNAVAILABLE",
    /// The vault is frozen: no secret leaves it until it is unfrozen. Not retried.
    Frozen = "FROZEN",
    /// Too many requests (HTTP 429, `Retry-After`).
    RateLimited = "RATE_LIMITED",
    /// The vault's database cannot be reached now: try again shortly.
    ServiceUnavailable = "SERVICE_UNAVAILABLE",
    /// Anything else; the detail is in the server log under the request id.
    InternalServerError = "INTERNAL_SERVER_ERROR",
    /// The body is larger than the server accepts.
    RequestTooLarge = "REQUEST_TOO_LARGE",
    /// The body is not a GraphQL request.
    BadRequest = "BAD_REQUEST",
    /// A browser origin the server does not allow.
    OriginNotAllowed = "ORIGIN_NOT_ALLOWED",
    /// The server accepts only trusted documents, and this one is in none of its manifests.
    DocumentNotTrusted = "DOCUMENT_NOT_TRUSTED",
    /// Only a persisted-query hash was sent, and no manifest of the server has it.
    PersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND",
    /// The document is not valid GraphQL.
    GraphqlParseFailed = "GRAPHQL_PARSE_FAILED",
    /// The document does not match the server's schema.
    GraphqlValidationFailed = "GRAPHQL_VALIDATION_FAILED",
    /// Introspection is switched off.
    IntrospectionDisabled = "INTROSPECTION_DISABLED",
    /// The selection is nested too deep.
    QueryTooDeep = "QUERY_TOO_DEEP",
    /// The query is too complex.
    QueryTooComplex = "QUERY_TOO_COMPLEX",
    /// Too many secret-bearing root fields in one operation.
    TooManySecretFields = "TOO_MANY_SECRET_FIELDS",
    /// Too many root fields in one operation.
    TooManyRootFields = "TOO_MANY_ROOT_FIELDS",
    /// Too many aliases in one document.
    TooManyAliases = "TOO_MANY_ALIASES",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// The codes of the first column of docs/errors.md's tables.
    fn documented_codes(doc: &str) -> Vec<String> {
        doc.lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split('`').next())
            .filter(|code| code.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_crate_knows_exactly_the_codes_of_docs_errors_md() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/errors.md");
        // Outside the repository (a packaged crate) there is nothing to compare with.
        let Ok(doc) = std::fs::read_to_string(path) else { return };
        let documented = documented_codes(&doc);
        let known: Vec<String> = ErrorCode::KNOWN.iter().map(|c| c.as_str().to_owned()).collect();
        assert_eq!(known, documented, "update src/code.rs from docs/errors.md");
    }

    #[test]
    fn a_code_reads_back_as_itself_and_an_unknown_one_is_kept() {
        for code in ErrorCode::KNOWN {
            assert_eq!(&ErrorCode::parse(code.as_str()), code);
        }
        assert_eq!(ErrorCode::parse("NEW_CODE"), ErrorCode::Other("NEW_CODE".into()));
        assert_eq!(ErrorCode::parse("NEW_CODE").as_str(), "NEW_CODE");
    }
}
