//! The registry of `extensions.code` values: every code a client can see, from a resolver, from the HTTP layer or
//! from a query limit. A variant's doc comment is its meaning; `docs/errors.md` is generated from it
//! (`cdvault error-reference`), so adding a code is one entry here.

use axum::http::StatusCode;

/// Where an error comes from, which is also how the reference groups the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFamily {
    /// Raised by a use case while the query runs (HTTP 200), or by authentication before it.
    Outcome,
    /// Raised about the request itself: its body, its syntax, its fit to the schema.
    Request,
    /// Raised when a query is valid but too big to run.
    Limit,
}

/// Declares [`ErrorCode`] from one list, so that the code string, the family, the HTTP status and the meaning (the
/// doc comment, also returned by `description`) of each code are written once.
macro_rules! error_codes {
    ($(
        $(#[doc = $doc:literal])+
        $variant:ident = $code:literal, $family:ident, $status:expr;
    )+) => {
        /// A stable `extensions.code`. Clients test the code, never the message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl ErrorCode {
            /// Every code, in the order of the reference.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$variant),+];

            /// The code as it appears in `extensions.code`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// Whether the code comes from a use case, the request or a limit.
            pub const fn family(self) -> ErrorFamily {
                match self {
                    $(Self::$variant => ErrorFamily::$family,)+
                }
            }

            /// The status of the response when the error refuses a request before the query runs; `None` when it
            /// only appears in a GraphQL response (HTTP 200).
            pub const fn http_status(self) -> Option<StatusCode> {
                match self {
                    $(Self::$variant => $status,)+
                }
            }

            /// The meaning of the code: its doc comment, one line per doc line. Placeholders in braces
            /// (`{max_depth}`) stand for limits the reference fills in.
            pub const fn description(self) -> &'static str {
                match self {
                    $(Self::$variant => concat!($($doc, "\n"),+),)+
                }
            }
        }
    };
}

error_codes! {
    /// No valid token. **HTTP 401** when the `Authorization` header is malformed or the token is invalid (bad
    /// signature, expired, not yet valid, wrong `iss`/`aud`/algorithm, missing claim) or revoked
    /// (`extensions.reason` `TOKEN_REVOKED`: its `jti` was revoked, or every token of its identity issued before a
    /// time, which also refuses its tokens without `iat`): the query is not run, and the response has
    /// `extensions.requestId`. Without any `Authorization` header, the request runs and every field that
    /// needs a token fails with this code (HTTP 200).
    Unauthenticated = "UNAUTHENTICATED", Outcome, Some(StatusCode::UNAUTHORIZED);
    /// The token is valid but not enough. `extensions.reason` says why: `MISSING_SCOPE`, `SELLER_NOT_ALLOWED` (the
    /// token's `sellers` claim does not reach the seller), `SELLER_INACTIVE` (the seller is deactivated and nothing
    /// is issued for it, neither credentials nor access tokens), `FOUR_EYES` (the submitter of a payout change tried
    /// to review it), `NOT_SUBMITTER` (someone other than the submitter tried to cancel it) or `SELF_GRANT` (an access
    /// grant would match its creator's own identity).
    Forbidden = "FORBIDDEN", Outcome, None;
    /// The seller, the credential (version), the payout change request or the active payout account asked for does
    /// not exist. For `issueAccessToken` and `verifyCredential` without `kind`: the seller has no credential of
    /// either kind. For `retireEncryptionKey`: no keyring version has that number. For `rotationProgress`: no
    /// rotation job has that id (`rotationJob` answers `null` instead).
    NotFound = "NOT_FOUND", Outcome, None;
    /// An input is invalid. `extensions.field` names it (e.g. `login`, `purpose`, `first`, `iban`) and
    /// `extensions.reason` gives a stable cause (e.g. `EMPTY`, `TOO_LONG`, `INVALID_CHARACTERS`, `OUT_OF_RANGE`). For
    /// payout changes: `INVALID_TRANSITION` (field `id`; the diagram has no such move from the current state, which
    /// the message names), and the bank-detail reasons `UNKNOWN_COUNTRY`, `WRONG_LENGTH`, `INVALID_FORMAT`,
    /// `BAD_CHECKSUM`, `COUNTRY_MISMATCH`, `CONTROL_CHARACTER` (see [Validation](payouts.md#validation)). For a store
    /// with `verify: true`: `MARKETPLACE_REJECTED` (field `password` or `clientSecret`; the marketplace refused the
    /// new credential and nothing was stored). For `credentialChanged` and the lists: `INVALID_CURSOR` (field
    /// `after`). For `rotationJob` and `rotationProgress`: `INVALID_ID` (field `id`) when the id is not a UUID. For
    /// webhook endpoints (field `url`): `INVALID_URL`, `NOT_HTTPS` (plain `http` not allowed) or `ADDRESS_NOT_ALLOWED`
    /// (a loopback, private, link-local or other non-public address not allowed by configuration).
    BadUserInput = "BAD_USER_INPUT", Outcome, None;
    /// The change conflicts with the current state, e.g. a seller login that is already registered (logins that
    /// differ only in case count as the same), a payout change submitted while the seller has an open one (the
    /// message names it), or a payout move with a stale `expectedVersion`. For `issueAccessToken`:
    /// `extensions.reason` `MARKETPLACE_REJECTED` when the marketplace rejected the stored credential version (store
    /// a new one; see [When the marketplace rejects a stored
    /// credential](marketplace.md#when-the-marketplace-rejects-a-stored-credential)). For `rotateEncryptionKey`: a
    /// rotation job is still running (the message names it). For `retireEncryptionKey`: the version is `ACTIVE` or
    /// already `RETIRED`, a rotation job is running, or ciphertexts still use the version (the message gives the
    /// count); see [Key rotation](key-rotation.md#key-rotation-runbook).
    Conflict = "CONFLICT", Outcome, None;
    /// A change feed subscription (`credentialChanged`, `payoutChangeFeed`) gave as `after` (`extensions.field`) a
    /// cursor older than the oldest change still kept: changes after it were pruned (they are kept for
    /// `CDVAULT_CHANGE_FEED_RETENTION`, 7 days by default), so a resume would miss some. Read the current state
    /// again (the credentials or the payout change requests the tool follows), then subscribe without `after` and
    /// keep the new cursors. The error arrives as the subscription's only result, then it completes.
    CursorExpired = "CURSOR_EXPIRED", Outcome, None;
    /// The marketplace could not be used: down, too slow, rate-limited, a bot-protection page or an answer of
    /// unknown shape. `extensions.reason` holds the code (`CONNECTION_FAILED`, `TIMEOUT`, `TRANSPORT_ERROR`,
    /// `SERVER_ERROR`, `RATE_LIMITED`, `BOT_PROTECTION`, `UNEXPECTED_RESPONSE`, or `TOKEN_FETCH_PENDING`; see [How
    /// cdvault calls the marketplace](marketplace.md#how-cdvault-calls-the-marketplace)). Raised by
    /// `issueAccessToken` and by stores with `verify: true`, which then store nothing; `verifyCredential` returns
    /// `UNREACHABLE` instead. Try again later.
    UpstreamUnavailable = "UPSTREAM_UNAVAILABLE", Outcome, None;
    /// The vault is frozen (`freezeVault`, or `cdvault freeze`, in response to a leak): every operation that
    /// returns a secret (`issueApiCredential`, `issueOctopiaCredential`, `issueAccessToken`, `revealPayoutDetails`,
    /// `revealPayoutAccount`) is refused on every replica, within a second of the freeze, until `unfreezeVault`.
    /// Reads and every other operation keep working, so credentials can be rotated while frozen; `viewer.frozen`
    /// tells. Like every outcome, in a response with HTTP 200: the other fields of the request are answered.
    Frozen = "FROZEN", Outcome, None;
    /// **HTTP 429**: too many requests from the caller, per verified identity (issuer and subject) or, without a
    /// token or with a refused one, per source address; the query is not run, and the token not checked. The
    /// response has a `Retry-After` header (seconds), `extensions.reason` `RATE_LIMITED` and `extensions.requestId`.
    /// Limits are per replica and configured; the first few denials per caller and minute are audited one by one,
    /// the rest summarised.
    RateLimited = "RATE_LIMITED", Outcome, Some(StatusCode::TOO_MANY_REQUESTS);
    /// The vault's database cannot be reached now (down, restarting, failing over, or no pooled connection free
    /// within 10 s): the request failed instead of hanging (an issue within about 3 s, its audit writer's bound;
    /// a request that reads the database within 10 s), and no credential left. Try again shortly, with backoff. An issue is safe to retry: each try that hands out a
    /// credential is audited once, and a try whose connection broke while it committed may be audited although its
    /// answer never reached the caller (see [Faults](faults.md)).
    ServiceUnavailable = "SERVICE_UNAVAILABLE", Outcome, None;
    /// Anything else. The client gets a generic message and `extensions.requestId`; the detail goes only to the
    /// server log, under that request id.
    InternalServerError = "INTERNAL_SERVER_ERROR", Outcome, None;
    /// The body is larger than {max_body}.
    RequestTooLarge = "REQUEST_TOO_LARGE", Request, Some(StatusCode::PAYLOAD_TOO_LARGE);
    /// **HTTP 400**: the body is not a JSON GraphQL request (`{"query": ..., "variables": ...}`). HTTP 200: the
    /// request names an unknown `operationName` or needs one.
    BadRequest = "BAD_REQUEST", Request, Some(StatusCode::BAD_REQUEST);
    /// **HTTP 403**: a WebSocket upgrade (`/graphql/ws`) carries an `Origin` header that is not one of
    /// `CDVAULT_CORS_ORIGINS`: refused before the upgrade. An upgrade without `Origin` (a tool, not a browser) and
    /// every upgrade when no origin is configured are let through.
    OriginNotAllowed = "ORIGIN_NOT_ALLOWED", Request, Some(StatusCode::FORBIDDEN);
    /// **HTTP 400**: trusted documents are on (`CDVAULT_TRUSTED_DOCUMENTS`) and the request's document is in none of
    /// the configured manifests, or its `extensions.persistedQuery.sha256Hash` is not the sha256 of the `query` sent
    /// with it: nothing in the request is parsed or run. Introspection queries (GraphiQL's included) are refused
    /// too. Send the client's own documents, and deploy its manifest with the server (see [Trusted
    /// documents](security.md#trusted-documents)). Over WebSocket, the `subscribe` gets an `error` message.
    DocumentNotTrusted = "DOCUMENT_NOT_TRUSTED", Request, Some(StatusCode::BAD_REQUEST);
    /// **HTTP 400**: trusted documents are on and the request sent only a hash
    /// (`extensions.persistedQuery.sha256Hash`, Apollo's persisted-query format) that no configured manifest has:
    /// the client is newer than the manifests deployed with the server. Nothing runs.
    PersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND", Request, Some(StatusCode::BAD_REQUEST);
    /// The query is not valid GraphQL syntax, or nests its selections or directives beyond what the parser accepts.
    GraphqlParseFailed = "GRAPHQL_PARSE_FAILED", Request, None;
    /// The query does not match the schema (unknown field, wrong argument or variable type, ...).
    GraphqlValidationFailed = "GRAPHQL_VALIDATION_FAILED", Request, None;
    /// The query asks for introspection (`__schema` or `__type`) and this server has it switched off
    /// (`CDVAULT_INTROSPECTION=false`): nothing in the request runs. The schema is published as `schema.graphql`
    /// instead. `__typename` is always answered.
    IntrospectionDisabled = "INTROSPECTION_DISABLED", Request, None;
    /// The selection is nested deeper than {max_depth}. Under `__schema` or `__type` (introspection) the bound is
    /// 15 instead, which graphql-js's standard introspection query fits.
    QueryTooDeep = "QUERY_TOO_DEEP", Limit, None;
    /// The query's complexity is above {max_complexity}: one per field, lists weighted by their size (`first` for
    /// connections, 10 for `credentialVersions`, `timeline` and `payoutAccountHistory`).
    QueryTooComplex = "QUERY_TOO_COMPLEX", Limit, None;
    /// An operation asks for more than 10 secret-bearing root fields (`issueApiCredential`, `issueOctopiaCredential`,
    /// `issueAccessToken`, `revealPayoutDetails`, `revealPayoutAccount`), each alias and each spread of a fragment
    /// counting once: nothing in the request runs, so nothing is issued. Split the work over several requests.
    TooManySecretFields = "TOO_MANY_SECRET_FIELDS", Limit, None;
    /// An operation has more than 50 root fields (fragments spread at the root counted each time): nothing runs.
    TooManyRootFields = "TOO_MANY_ROOT_FIELDS", Limit, None;
    /// The document has more than 100 aliased fields: nothing runs.
    TooManyAliases = "TOO_MANY_ALIASES", Limit, None;
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn every_code_is_a_distinct_shouty_string() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(code.as_str().chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{code}");
            assert!(seen.insert(code.as_str()), "{code} twice");
        }
    }

    #[test]
    fn every_code_has_a_meaning() {
        assert!(ErrorCode::ALL.iter().all(|code| code.description().trim().len() > 20));
    }
}
