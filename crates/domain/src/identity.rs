//! Who a verified token says the caller is: the pair (issuer, subject) and the claims that grants can match. Made by
//! the API's token verifier; turned into a [`Principal`](crate::policy::Principal) by the issuer's mode.

use std::time::SystemTime;

use crate::policy::Principal;

/// Where a caller's scopes and sellers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerMode {
    /// From the token's own `scope` and `sellers` claims (static-key issuers: HS256, a PEM key).
    Claims,
    /// From access grants kept in the vault; a `scope` claim may only narrow them (JWKS and discovery issuers).
    Grants,
}

/// A verified token's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `iss`, equal to a configured issuer.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    pub mode: IssuerMode,
    /// `scope`: space-separated.
    pub scope: Option<String>,
    /// `sellers` (only read in [`IssuerMode::Claims`]).
    pub sellers: Option<Vec<String>>,
    /// `client_id` (RFC 9068).
    pub client_id: Option<String>,
    /// `azp` (OpenID Connect).
    pub azp: Option<String>,
    /// `groups`.
    pub groups: Vec<String>,
    /// `jti`.
    pub jti: Option<String>,
    /// `iat`, in seconds since the epoch.
    pub issued_at: Option<u64>,
    /// `exp`, when the clock type can hold it.
    pub expires_at: Option<SystemTime>,
}

impl Identity {
    /// A claims-mode identity with only an issuer and a subject (tests, tools).
    pub fn new(issuer: &str, subject: &str, mode: IssuerMode) -> Self {
        Self {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            mode,
            scope: None,
            sellers: None,
            client_id: None,
            azp: None,
            groups: Vec::new(),
            jti: None,
            issued_at: None,
            expires_at: None,
        }
    }

    /// The principal of a [`IssuerMode::Claims`] identity: scopes and sellers from the token's own claims.
    pub fn claims_principal(&self) -> Principal {
        Principal::from_claims(self.issuer.clone(), self.subject.clone(), self.scope.as_deref(), self.sellers.clone())
    }

    /// The identity alone: no scope, no seller (what a [`IssuerMode::Grants`] identity reaches until grants apply).
    pub fn bare_principal(&self) -> Principal {
        Principal::from_claims(self.issuer.clone(), self.subject.clone(), None, None)
    }
}
