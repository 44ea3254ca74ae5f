//! Who may do what: the authenticated caller and the checks every use case runs.

use std::collections::BTreeSet;

use crate::reason::Reason;

/// Permissions a token can carry in its `scope` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Issue credentials (and, later, access tokens).
    CredentialsRead,
    /// Register and (de)activate sellers, store and restore credentials.
    CredentialsWrite,
    /// Read the audit trail.
    AuditRead,
    /// Submit a change of a seller's payout bank account, and cancel one's own submission.
    KycSubmit,
    /// Review payout account changes submitted by others: start, request documents, approve, reject.
    KycReview,
    /// See and manage the encryption keyring: versions, their census, rotation.
    KeysAdmin,
    /// Issue brokered marketplace access tokens only, never passwords or client secrets (`credentials:read`
    /// implies it).
    CredentialsToken,
    /// Manage who may do what: access grants and token revocations.
    AccessAdmin,
    /// Freeze and unfreeze every secret-bearing operation (emergency response to a leak).
    VaultFreeze,
    /// Register, rotate and remove one's own webhook endpoints, and see and replay their dead letters.
    WebhooksAdmin,
}

impl Scope {
    pub const ALL: [Scope; 10] = [
        Scope::CredentialsRead,
        Scope::CredentialsWrite,
        Scope::AuditRead,
        Scope::KycSubmit,
        Scope::KycReview,
        Scope::KeysAdmin,
        Scope::CredentialsToken,
        Scope::AccessAdmin,
        Scope::VaultFreeze,
        Scope::WebhooksAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CredentialsRead => "credentials:read",
            Self::CredentialsWrite => "credentials:write",
            Self::AuditRead => "audit:read",
            Self::KycSubmit => "kyc:submit",
            Self::KycReview => "kyc:review",
            Self::KeysAdmin => "keys:admin",
            Self::CredentialsToken => "credentials:token",
            Self::AccessAdmin => "access:admin",
            Self::VaultFreeze => "vault:freeze",
            Self::WebhooksAdmin => "webhooks:admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// The sellers a token reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SellerReach {
    /// `sellers: ["*"]`.
    All,
    /// An explicit list; empty when the claim is absent.
    Only(BTreeSet<String>),
}

impl SellerReach {
    /// Reads the `sellers` claim: `["*"]` (or any list holding `*`) is all sellers, absent is none.
    pub fn from_claim(sellers: Option<Vec<String>>) -> Self {
        match sellers {
            None => Self::Only(BTreeSet::new()),
            Some(list) if list.iter().any(|s| s == "*") => Self::All,
            Some(list) => Self::Only(list.into_iter().collect()),
        }
    }

    pub fn includes(&self, seller_login: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(set) => set.contains(seller_login),
        }
    }
}

/// An authenticated caller, from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who vouches for the subject: the token's `iss`.
    pub issuer: String,
    pub subject: String,
    /// Scopes cdvault knows; unknown ones in the token are kept in `other_scopes` for display only.
    pub scopes: BTreeSet<Scope>,
    pub other_scopes: Vec<String>,
    pub sellers: SellerReach,
}

/// Why a caller was refused, as a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    MissingScope(Scope),
    SellerNotAllowed,
    SellerInactive,
    /// Four eyes: the subject that submitted a payout change tried to review it.
    SubmitterCannotReview,
    /// An access grant would match its creator's own identity (no self-escalation).
    SelfGrant,
    /// Someone other than the submitter tried to cancel a payout change.
    NotSubmitter,
}

impl Denial {
    pub fn reason(self) -> Reason {
        match self {
            Self::MissingScope(_) => Reason::MissingScope,
            Self::SellerNotAllowed => Reason::SellerNotAllowed,
            Self::SellerInactive => Reason::SellerInactive,
            Self::SubmitterCannotReview => Reason::FourEyes,
            Self::SelfGrant => Reason::SelfGrant,
            Self::NotSubmitter => Reason::NotSubmitter,
        }
    }

    pub fn message(self) -> String {
        match self {
            Self::MissingScope(scope) => format!("this needs the scope '{}'", scope.as_str()),
            Self::SellerNotAllowed => "this token does not reach that seller".to_owned(),
            Self::SellerInactive => "the seller account is deactivated: nothing is issued for it".to_owned(),
            Self::SubmitterCannotReview => "the subject that submitted a payout change cannot review it".to_owned(),
            Self::SelfGrant => "an access grant cannot match its creator's own identity".to_owned(),
            Self::NotSubmitter => "only the subject that submitted a payout change can cancel it".to_owned(),
        }
    }
}

impl Principal {
    pub fn from_claims(
        issuer: String,
        subject: String,
        scope_claim: Option<&str>,
        sellers: Option<Vec<String>>,
    ) -> Self {
        let mut scopes = BTreeSet::new();
        let mut other_scopes = Vec::new();
        for raw in scope_claim.unwrap_or_default().split_ascii_whitespace() {
            match Scope::parse(raw) {
                Some(scope) => {
                    scopes.insert(scope);
                }
                None => other_scopes.push(raw.to_owned()),
            }
        }
        Self { issuer, subject, scopes, other_scopes, sellers: SellerReach::from_claim(sellers) }
    }

    pub fn has_scope(&self, scope: Scope) -> bool {
        // Passwords and client secrets include the right to the tokens they broker.
        self.scopes.contains(&scope)
            || (scope == Scope::CredentialsToken && self.scopes.contains(&Scope::CredentialsRead))
    }

    /// The check for acting on one seller with one scope: scope first, then reach.
    pub fn authorize(&self, scope: Option<Scope>, seller_login: &str) -> Result<(), Denial> {
        if let Some(scope) = scope {
            self.require(scope)?;
        }
        if !self.sellers.includes(seller_login) {
            return Err(Denial::SellerNotAllowed);
        }
        Ok(())
    }

    pub fn require(&self, scope: Scope) -> Result<(), Denial> {
        if self.has_scope(scope) { Ok(()) } else { Err(Denial::MissingScope(scope)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(scope: &str, sellers: Option<Vec<&str>>) -> Principal {
        Principal::from_claims(
            "https://issuer.test".into(),
            "tool".into(),
            Some(scope),
            sellers.map(|s| s.into_iter().map(str::to_owned).collect()),
        )
    }

    #[test]
    fn credentials_read_implies_the_token_only_scope_and_not_the_reverse() {
        assert!(principal("credentials:read", None).has_scope(Scope::CredentialsToken));
        assert!(!principal("credentials:token", None).has_scope(Scope::CredentialsRead));
        assert!(principal("credentials:token", None).has_scope(Scope::CredentialsToken));
    }

    #[test]
    fn a_token_without_a_sellers_claim_reaches_no_seller() {
        let p = principal("credentials:read", None);
        assert_eq!(p.authorize(Some(Scope::CredentialsRead), "bestshop"), Err(Denial::SellerNotAllowed));
    }

    #[test]
    fn a_star_reaches_every_seller() {
        let p = principal("credentials:read", Some(vec!["*"]));
        assert_eq!(p.authorize(Some(Scope::CredentialsRead), "anyone"), Ok(()));
    }

    #[test]
    fn a_listed_seller_is_reached_and_others_are_not() {
        let p = principal("credentials:read", Some(vec!["a-shop"]));
        assert_eq!(p.authorize(Some(Scope::CredentialsRead), "a-shop"), Ok(()));
        assert_eq!(p.authorize(Some(Scope::CredentialsRead), "b-shop"), Err(Denial::SellerNotAllowed));
    }

    #[test]
    fn a_missing_scope_is_refused_before_the_seller_is_looked_at() {
        let p = principal("audit:read other:thing", Some(vec!["*"]));
        assert_eq!(
            p.authorize(Some(Scope::CredentialsWrite), "a-shop"),
            Err(Denial::MissingScope(Scope::CredentialsWrite))
        );
        assert_eq!(p.other_scopes, vec!["other:thing".to_owned()]);
    }

    #[test]
    fn kyc_scopes_are_read_from_the_scope_claim() {
        let p = principal("kyc:submit kyc:review", None);
        assert!(p.has_scope(Scope::KycSubmit) && p.has_scope(Scope::KycReview));
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
    }

    #[test]
    fn payout_review_denials_have_stable_reasons() {
        assert_eq!(Denial::SubmitterCannotReview.reason().as_str(), "FOUR_EYES");
        assert_eq!(Denial::NotSubmitter.reason().as_str(), "NOT_SUBMITTER");
    }
}
