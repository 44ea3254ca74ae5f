//! The caller of a request, as an extractor: the bearer token of the `Authorization` header checked by the verifier.
//! No header is an anonymous caller (each use case decides what that may do); a malformed or refused token is
//! answered `401 UNAUTHENTICATED` and audited, even where a token is optional. Rate limits come first: a request
//! without a token is limited by its source address before anything else ([`limit_token_less`], before its body is
//! read); one with a token, by its identity once the token is verified, or by its address when the token is refused
//! (`429 RATE_LIMITED`).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::Response;
use tracing::Span;

use super::rate_limit::{self, LimitKey};
use super::request_id::{CallerRequestId, RequestId};
use super::state::AppState;
use super::transport::refusal;
use crate::error::ErrorCode;
use crate::service::Caller;

/// Charges a request without a token to its source address, before anything else is done for it (its body is not
/// read yet): there is nothing to verify, and a flood of such requests must cost the replica as little as it can.
/// The [`Caller`] extractor does not charge such a request again.
pub(super) async fn limit_token_less(parts: &mut Parts, state: &AppState) -> Result<(), Response> {
    if parts.headers.contains_key(header::AUTHORIZATION) {
        return Ok(());
    }
    let address = state.limiter.source_address(parts);
    match state.limiter.check(&address) {
        Ok(()) => Ok(()),
        Err(denied) => {
            let Ok(RequestId(request_id)) = RequestId::from_request_parts(parts, state).await;
            Err(rate_limit::refuse(&state.vault, &address, denied, &request_id, "http").await)
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(RequestId(request_id)) = RequestId::from_request_parts(parts, state).await;
        let Ok(CallerRequestId(caller_request_id)) = CallerRequestId::from_request_parts(parts, state).await;
        // A header that is not visible ASCII is there, and malformed.
        let authorization = parts.headers.get(header::AUTHORIZATION).map(|value| value.to_str().unwrap_or(""));
        let address = state.limiter.source_address(parts);
        match state.verifier.authenticate(authorization).await {
            Ok(identity) => {
                if let Some(identity) = &identity {
                    // On the request span: every line of the request names its caller (never the token).
                    Span::current()
                        .record("issuer", identity.issuer.as_str())
                        .record("subject", identity.subject.as_str());
                    let key = LimitKey::Identity { issuer: identity.issuer.clone(), subject: identity.subject.clone() };
                    if let Err(denied) = state.limiter.check(&key) {
                        return Err(rate_limit::refuse(&state.vault, &key, denied, &request_id, "http").await);
                    }
                    // A revoked token is refused like an invalid one (audited by the check).
                    if let Err(e) = state.vault.check_not_revoked(identity, &request_id).await {
                        let reason = Some(cdvault_domain::Reason::TokenRevoked);
                        return Err(refusal(ErrorCode::Unauthenticated, &e.to_string(), reason, &request_id));
                    }
                }
                // Scopes and sellers: from the claims, or from the grants kept in the vault (by the issuer's mode).
                let principal = identity.as_ref().map(|identity| state.vault.principal_for(identity));
                Ok(Caller { request_id, caller_request_id, identity, principal, expires_at: None })
            }
            Err(err) => {
                // A refused token is anyone's to send: its address pays, and a flood of them is not audited one by one.
                if let Err(denied) = state.limiter.check(&address) {
                    return Err(rate_limit::refuse(&state.vault, &address, denied, &request_id, "http").await);
                }
                tracing::info!(reason = %err, "token refused");
                state.vault.record_authentication_failure(&request_id, err.reason()).await;
                Err(refusal(ErrorCode::Unauthenticated, &err.to_string(), Some(err.reason()), &request_id))
            }
        }
    }
}
