//! Token revocation: one token (its issuer and `jti`) or every token of an identity issued before a time. The set
//! is kept in memory by each replica, so checking a request costs no query.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;

use crate::identity::Identity;
use crate::{Reason, ValidationError};

/// The longest issuer, subject or `jti` kept (longer ones are refused, not cut: a cut value would revoke another).
pub const MAX_CLAIM_CHARS: usize = 512;

/// How long a token revocation is kept when no expiry is given: past the lifetime of any token we accept.
pub const DEFAULT_TOKEN_REVOCATION: time::Duration = time::Duration::days(90);

/// A claim value as the token carries it: compared byte for byte, so it is not trimmed.
fn claim_value(field: &'static str, raw: &str) -> Result<String, ValidationError> {
    if raw.trim().is_empty() {
        return Err(ValidationError::new(field, Reason::Empty, "must not be empty"));
    }
    if raw.chars().count() > MAX_CLAIM_CHARS {
        return Err(ValidationError::new(field, Reason::TooLong, format!("at most {MAX_CLAIM_CHARS} characters")));
    }
    if raw.chars().any(char::is_control) {
        return Err(ValidationError::new(field, Reason::ControlCharacter, "control characters are not allowed"));
    }
    Ok(raw.to_owned())
}

/// What is revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One token, until `expires_at` (its `exp`, or later): after it the token is refused as expired anyway.
    Token { issuer: String, jti: String, expires_at: OffsetDateTime },
    /// Every token of the identity (issuer, subject) issued before `before`. Tokens without `iat` are refused too,
    /// since nothing says when they were issued.
    Subject { issuer: String, subject: String, before: OffsetDateTime },
}

impl Revocation {
    /// A token revocation, validated: `expires_at` must not be past (it would revoke nothing).
    pub fn token(
        issuer: &str,
        jti: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Self, ValidationError> {
        let issuer = claim_value("issuer", issuer)?;
        let jti = claim_value("jti", jti)?;
        if expires_at <= now {
            return Err(ValidationError::new("expiresAt", Reason::OutOfRange, "must be in the future"));
        }
        Ok(Self::Token { issuer, jti, expires_at })
    }

    /// A subject revocation, validated: `before` must not be in the future (tokens not yet issued are not revoked;
    /// a future time would also refuse the new tokens meant to replace the old ones).
    pub fn subject(
        issuer: &str,
        subject: &str,
        before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Self, ValidationError> {
        let issuer = claim_value("issuer", issuer)?;
        let subject = claim_value("subject", subject)?;
        if before > now {
            return Err(ValidationError::new("before", Reason::OutOfRange, "must not be in the future"));
        }
        Ok(Self::Subject { issuer, subject, before })
    }

    pub fn issuer(&self) -> &str {
        match self {
            Self::Token { issuer, .. } | Self::Subject { issuer, .. } => issuer,
        }
    }
}

/// Every revocation in force, indexed for a check per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationSet {
    /// (issuer, jti).
    tokens: HashSet<(String, String)>,
    /// (issuer, subject) -> the latest `before` (a later revocation covers an earlier one).
    subjects: HashMap<(String, String), OffsetDateTime>,
}

impl RevocationSet {
    /// The set of `revocations`, leaving out token revocations that expired by `now`.
    pub fn new(revocations: impl IntoIterator<Item = Revocation>, now: OffsetDateTime) -> Self {
        let mut set = Self::default();
        for revocation in revocations {
            set.insert(revocation, now);
        }
        set
    }

    pub fn insert(&mut self, revocation: Revocation, now: OffsetDateTime) {
        match revocation {
            Revocation::Token { expires_at, .. } if expires_at <= now => {}
            Revocation::Token { issuer, jti, .. } => {
                self.tokens.insert((issuer, jti));
            }
            Revocation::Subject { issuer, subject, before } => {
                let at = self.subjects.entry((issuer, subject)).or_insert(before);
                *at = (*at).max(before);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.tokens.len() + self.subjects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a token is refused although its signature and claims are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its `jti` is revoked.
    TokenRevoked,
    /// It was issued before a revocation of its identity.
    IssuedBeforeRevocation,
    /// Its identity has a revocation and it carries no `iat` to show it was issued after.
    NoIssuedAt,
}

impl Refusal {
    /// The audit reason and `extensions.reason`: the same for all three (a caller needs a new token either way).
    pub fn reason(self) -> Reason {
        Reason::TokenRevoked
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::TokenRevoked => "this token is revoked",
            Self::IssuedBeforeRevocation => "this token was issued before its identity's tokens were revoked",
            Self::NoIssuedAt => "tokens of this identity must carry 'iat' (its earlier tokens are revoked)",
        }
    }
}

/// Whether the token of `identity` is revoked by `set`.
pub fn is_revoked(identity: &Identity, set: &RevocationSet) -> Result<(), Refusal> {
    if set.is_empty() {
        return Ok(());
    }
    if let Some(jti) = &identity.jti {
        // One lookup without cloning on the hot path would need a borrowed-pair key; the set is small and the
        // strings short.
        if set.tokens.contains(&(identity.issuer.clone(), jti.clone())) {
            return Err(Refusal::TokenRevoked);
        }
    }
    let Some(before) = set.subjects.get(&(identity.issuer.clone(), identity.subject.clone())) else {
        return Ok(());
    };
    let Some(issued_at) = identity.issued_at else {
        return Err(Refusal::NoIssuedAt);
    };
    // `iat` has whole seconds: a token of the revocation's own second counts as before it (refused, not let in).
    // An `iat` no date can hold fails closed, as if issued at the epoch.
    let issued = i64::try_from(issued_at)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    if issued < *before { Err(Refusal::IssuedBeforeRevocation) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IssuerMode;

    const ISS: &str = "https://idp.test";

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    fn token(subject: &str, jti: Option<&str>, iat: Option<u64>) -> Identity {
        let mut identity = Identity::new(ISS, subject, IssuerMode::Grants);
        identity.jti = jti.map(str::to_owned);
        identity.issued_at = iat;
        identity
    }

    fn set(revocations: Vec<Revocation>) -> RevocationSet {
        RevocationSet::new(revocations, at(1_000))
    }

    fn revoke_jti(jti: &str) -> Revocation {
        Revocation::Token { issuer: ISS.into(), jti: jti.into(), expires_at: at(5_000) }
    }

    fn revoke_subject(subject: &str, before: i64) -> Revocation {
        Revocation::Subject { issuer: ISS.into(), subject: subject.into(), before: at(before) }
    }

    #[test]
    fn a_revoked_jti_is_refused_and_other_tokens_of_the_subject_pass() {
        let set = set(vec![revoke_jti("a")]);
        assert_eq!(is_revoked(&token("tool", Some("a"), Some(900)), &set), Err(Refusal::TokenRevoked));
        assert_eq!(is_revoked(&token("tool", Some("b"), Some(900)), &set), Ok(()));
        assert_eq!(is_revoked(&token("tool", None, None), &set), Ok(()));
    }

    #[test]
    fn a_jti_revoked_at_another_issuer_does_not_match() {
        let set = set(vec![Revocation::Token { issuer: "other".into(), jti: "a".into(), expires_at: at(5_000) }]);
        assert_eq!(is_revoked(&token("tool", Some("a"), Some(900)), &set), Ok(()));
    }

    #[test]
    fn a_subject_revocation_refuses_tokens_issued_before_and_accepts_later_ones() {
        let set = set(vec![revoke_subject("tool", 800)]);
        assert_eq!(is_revoked(&token("tool", None, Some(799)), &set), Err(Refusal::IssuedBeforeRevocation));
        assert_eq!(is_revoked(&token("tool", None, Some(800)), &set), Ok(()));
        assert_eq!(is_revoked(&token("tool", None, Some(801)), &set), Ok(()));
        assert_eq!(is_revoked(&token("other", None, Some(1)), &set), Ok(()));
    }

    #[test]
    fn a_token_issued_in_the_same_second_as_the_revocation_is_refused() {
        let before = at(800) + time::Duration::milliseconds(500);
        let set = set(vec![Revocation::Subject { issuer: ISS.into(), subject: "tool".into(), before }]);
        assert_eq!(is_revoked(&token("tool", None, Some(800)), &set), Err(Refusal::IssuedBeforeRevocation));
        assert_eq!(is_revoked(&token("tool", None, Some(801)), &set), Ok(()));
    }

    #[test]
    fn a_token_without_iat_is_refused_only_while_its_identity_has_a_subject_revocation() {
        let set = set(vec![revoke_subject("tool", 800)]);
        assert_eq!(is_revoked(&token("tool", None, None), &set), Err(Refusal::NoIssuedAt));
        assert_eq!(is_revoked(&token("other", None, None), &set), Ok(()));
    }

    #[test]
    fn an_iat_no_date_holds_fails_closed() {
        let set = set(vec![revoke_subject("tool", 800)]);
        assert_eq!(is_revoked(&token("tool", None, Some(u64::MAX)), &set), Err(Refusal::IssuedBeforeRevocation));
    }

    #[test]
    fn the_latest_subject_revocation_wins() {
        let set = set(vec![revoke_subject("tool", 900), revoke_subject("tool", 800)]);
        assert_eq!(is_revoked(&token("tool", None, Some(850)), &set), Err(Refusal::IssuedBeforeRevocation));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn an_expired_token_revocation_is_left_out_of_the_set() {
        let expired = Revocation::Token { issuer: ISS.into(), jti: "a".into(), expires_at: at(1_000) };
        assert!(set(vec![expired]).is_empty());
    }

    #[test]
    fn revocation_inputs_are_validated() {
        let now = at(1_000);
        assert!(Revocation::token(ISS, "a", at(2_000), now).is_ok());
        assert_eq!(Revocation::token(ISS, "", at(2_000), now).unwrap_err().field, "jti");
        assert_eq!(Revocation::token(ISS, "a", at(1_000), now).unwrap_err().reason, Reason::OutOfRange);
        assert_eq!(Revocation::token(" ", "a", at(2_000), now).unwrap_err().field, "issuer");
        assert_eq!(Revocation::subject(ISS, "tool", at(1_001), now).unwrap_err().field, "before");
        assert_eq!(Revocation::subject(ISS, "a\nb", now, now).unwrap_err().reason, Reason::ControlCharacter);
        let long = "x".repeat(MAX_CLAIM_CHARS + 1);
        assert_eq!(Revocation::subject(ISS, &long, now, now).unwrap_err().reason, Reason::TooLong);
    }

    #[test]
    fn every_refusal_is_reported_as_token_revoked() {
        for refusal in [Refusal::TokenRevoked, Refusal::IssuedBeforeRevocation, Refusal::NoIssuedAt] {
            assert_eq!(refusal.reason().as_str(), "TOKEN_REVOKED");
        }
    }
}
