//! Access grants kept in the vault: who (an issuer and a subject, or a claim of its tokens) may do what (scopes) on
//! which sellers, and how a verified [`Identity`] resolves to a [`Principal`] through them.
//!
//! Grants only ever add to what a grants-mode identity has (nothing); a token's `scope` claim may narrow the union,
//! never widen it. Grants of one issuer never match another issuer's tokens.

use std::collections::BTreeSet;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::identity::{Identity, IssuerMode};
use crate::policy::{Principal, Scope, SellerReach};
use crate::seller::SellerLogin;
use crate::text::bounded_text;
use crate::{Reason, ValidationError};

#[cfg(test)]
mod tests;

/// The prefix of a Kubernetes service account's subject: `system:serviceaccount:NS:NAME`.
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// An access grant: tokens of `issuer` that `matcher` matches get `scopes` on `sellers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: Uuid,
    pub issuer: GrantIssuer,
    pub matcher: GrantMatch,
    pub scopes: BTreeSet<Scope>,
    pub sellers: SellerReach,
    pub created_by: Creator,
    pub created_at: OffsetDateTime,
}

/// Who made a grant: an authenticated caller (issuer and subject) or an operator at the command line (no issuer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creator {
    pub issuer: Option<String>,
    pub subject: String,
}

/// The `iss` a grant applies to: exactly as the tokens carry it (1 to 512 characters, no control character or
/// surrounding space).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantIssuer(String);

impl GrantIssuer {
    pub const MAX_CHARS: usize = 512;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ValidationError> {
        exact_text(field, raw, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which tokens of the issuer a grant matches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrantMatch {
    /// `sub` equals this.
    Subject(ClaimValue),
    /// `client_id` (RFC 9068) or `azp` (OpenID Connect) equals this.
    ClientId(ClaimValue),
    /// `groups` holds this.
    Group(ClaimValue),
    /// A Kubernetes service account: `sub` is `system:serviceaccount:NAMESPACE:NAME`.
    ServiceAccount { namespace: K8sName, name: K8sName },
}

impl GrantMatch {
    /// Whether a token with this identity is matched (the issuer is compared by the caller).
    pub fn matches(&self, identity: &Identity) -> bool {
        match self {
            Self::Subject(subject) => identity.subject == subject.0,
            Self::ClientId(client) => {
                identity.client_id.as_deref() == Some(&client.0) || identity.azp.as_deref() == Some(&client.0)
            }
            Self::Group(group) => identity.groups.contains(&group.0),
            Self::ServiceAccount { namespace, name } => identity
                .subject
                .strip_prefix(SERVICE_ACCOUNT_PREFIX)
                .and_then(|rest| rest.split_once(':'))
                .is_some_and(|(ns, n)| ns == namespace.0 && n == name.0),
        }
    }

    /// The stable name of the kind of match (stored, shown).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Subject(_) => "SUBJECT",
            Self::ClientId(_) => "CLIENT_ID",
            Self::Group(_) => "GROUP",
            Self::ServiceAccount { .. } => "SERVICE_ACCOUNT",
        }
    }

    /// The matched value as one string: the subject, client id or group, or `NAMESPACE/NAME`.
    pub fn value(&self) -> String {
        match self {
            Self::Subject(v) | Self::ClientId(v) | Self::Group(v) => v.0.clone(),
            Self::ServiceAccount { namespace, name } => format!("{}/{}", namespace.0, name.0),
        }
    }

    /// The inverse of [`Self::kind`] and [`Self::value`] (a stored row).
    pub fn from_parts(kind: &str, value: &str) -> Result<Self, ValidationError> {
        match kind {
            "SUBJECT" => ClaimValue::parse("subject", value).map(Self::Subject),
            "CLIENT_ID" => ClaimValue::parse("clientId", value).map(Self::ClientId),
            "GROUP" => ClaimValue::parse("group", value).map(Self::Group),
            "SERVICE_ACCOUNT" => match value.split_once('/') {
                Some((namespace, name)) => Self::service_account(namespace, name),
                None => Err(ValidationError::new("serviceAccount", Reason::InvalidFormat, "NAMESPACE/NAME")),
            },
            _ => Err(ValidationError::new("match", Reason::InvalidFormat, "an unknown kind of match")),
        }
    }

    /// The one match given among the four ways of naming who a grant is for (refused as `match` when none or several
    /// are given).
    pub fn one_of(
        subject: Option<&str>,
        client_id: Option<&str>,
        group: Option<&str>,
        service_account: Option<(&str, &str)>,
    ) -> Result<Self, ValidationError> {
        let given = [subject.is_some(), client_id.is_some(), group.is_some(), service_account.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(ValidationError::new(
                "match",
                Reason::InvalidFormat,
                "give exactly one of subject, clientId, group or serviceAccount",
            ));
        }
        match (subject, client_id, group, service_account) {
            (Some(s), _, _, _) => ClaimValue::parse("subject", s).map(Self::Subject),
            (_, Some(c), _, _) => ClaimValue::parse("clientId", c).map(Self::ClientId),
            (_, _, Some(g), _) => ClaimValue::parse("group", g).map(Self::Group),
            (_, _, _, Some((namespace, name))) => Self::service_account(namespace, name),
            (None, None, None, None) => Err(ValidationError::new("match", Reason::Empty, "nothing to match")),
        }
    }

    /// A service account match, both names checked.
    pub fn service_account(namespace: &str, name: &str) -> Result<Self, ValidationError> {
        Ok(Self::ServiceAccount {
            namespace: K8sName::parse("serviceAccount.namespace", namespace, K8sName::MAX_NAMESPACE)?,
            name: K8sName::parse("serviceAccount.name", name, K8sName::MAX_NAME)?,
        })
    }
}

/// A claim value a grant matches exactly: 1 to 256 characters, no control character or surrounding space.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClaimValue(String);

impl ClaimValue {
    pub const MAX_CHARS: usize = 256;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, ValidationError> {
        exact_text(field, raw, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Kubernetes namespace or service account name: lower-case letters, digits, `-` and (names only) `.`, starting
/// and ending with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct K8sName(String);

impl K8sName {
    pub const MAX_NAMESPACE: usize = 63;
    pub const MAX_NAME: usize = 253;

    fn parse(field: &'static str, raw: &str, max: usize) -> Result<Self, ValidationError> {
        if raw.is_empty() {
            return Err(ValidationError::new(field, Reason::Empty, "must not be empty"));
        }
        if raw.len() > max {
            return Err(ValidationError::new(field, Reason::TooLong, format!("at most {max} characters")));
        }
        let dots = max == Self::MAX_NAME;
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
        let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !raw.chars().all(allowed) || !edge(raw.chars().next()) || !edge(raw.chars().last()) {
            return Err(ValidationError::new(
                field,
                Reason::InvalidCharacters,
                "a Kubernetes name has lower-case letters, digits and '-' (and '.' in a service account name)",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated request for a new grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantInput {
    pub issuer: GrantIssuer,
    pub matcher: GrantMatch,
    pub scopes: BTreeSet<Scope>,
    pub sellers: SellerReach,
}

impl GrantInput {
    /// Checks every part of a new grant: the issuer, the scopes (known ones, at least one) and the sellers (logins,
    /// or `*` alone for all; none is allowed, for scopes that reach no seller).
    pub fn parse(
        issuer: &str,
        matcher: GrantMatch,
        scopes: &[String],
        sellers: &[String],
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            issuer: GrantIssuer::parse("issuer", issuer)?,
            matcher,
            scopes: parse_scopes(scopes)?,
            sellers: parse_sellers(sellers)?,
        })
    }

    /// A new grant (with a new id) by `created_by` at `created_at`.
    pub fn into_new_grant(self, created_by: Creator, created_at: OffsetDateTime) -> Grant {
        self.into_grant(Uuid::now_v7(), created_by, created_at)
    }

    /// The grant this input makes, by `created_by` at `created_at`.
    pub fn into_grant(self, id: Uuid, created_by: Creator, created_at: OffsetDateTime) -> Grant {
        let Self { issuer, matcher, scopes, sellers } = self;
        Grant { id, issuer, matcher, scopes, sellers, created_by, created_at }
    }
}

/// A grant's id as a caller gives it: a UUID.
pub fn parse_grant_id(field: &'static str, raw: &str) -> Result<Uuid, ValidationError> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| ValidationError::new(field, Reason::InvalidId, "an access grant id is a UUID"))
}

/// The scopes of a grant: each a scope cdvault knows, at least one.
pub fn parse_scopes(raw: &[String]) -> Result<BTreeSet<Scope>, ValidationError> {
    let mut scopes = BTreeSet::new();
    for text in raw {
        let scope = Scope::parse(text.trim()).ok_or_else(|| {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            ValidationError::new("scopes", Reason::InvalidFormat, format!("a scope is one of {}", known.join(", ")))
        })?;
        scopes.insert(scope);
    }
    if scopes.is_empty() {
        return Err(ValidationError::new("scopes", Reason::Empty, "a grant gives at least one scope"));
    }
    Ok(scopes)
}

/// The sellers of a grant: `["*"]` for all, else seller logins (possibly none).
pub fn parse_sellers(raw: &[String]) -> Result<SellerReach, ValidationError> {
    if raw.iter().any(|s| s.trim() == "*") {
        if raw.len() > 1 {
            return Err(ValidationError::new("sellers", Reason::InvalidFormat, "'*' (all sellers) stands alone"));
        }
        return Ok(SellerReach::All);
    }
    let logins = raw.iter().map(|s| SellerLogin::parse("sellers", s.trim()).map(|l| l.as_str().to_owned()));
    logins.collect::<Result<BTreeSet<_>, _>>().map(SellerReach::Only)
}

/// A bounded text compared exactly: surrounding space is refused rather than trimmed, since it would never match.
fn exact_text(field: &'static str, raw: &str, max: usize) -> Result<String, ValidationError> {
    let text = bounded_text(field, raw, max, "must not be empty")?;
    if text != raw {
        return Err(ValidationError::new(field, Reason::InvalidCharacters, "no leading or trailing space"));
    }
    Ok(text)
}

/// What an identity resolves to: its principal, and the grants that gave it (none in claims mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub principal: Principal,
    pub matched: Vec<Uuid>,
}

/// The principal of `identity`. Claims mode: the token's own `scope` and `sellers` claims. Grants mode: the union of
/// every grant of the same issuer that matches, narrowed to the `scope` claim when the token has one.
pub fn resolve(identity: &Identity, grants: &[Grant]) -> Resolved {
    let issuer = identity.issuer.clone();
    let subject = identity.subject.clone();
    if identity.mode == IssuerMode::Claims {
        let principal = Principal::from_claims(issuer, subject, identity.scope.as_deref(), identity.sellers.clone());
        return Resolved { principal, matched: Vec::new() };
    }
    let mut scopes = BTreeSet::new();
    let mut sellers = SellerReach::Only(BTreeSet::new());
    let mut matched = Vec::new();
    for grant in grants.iter().filter(|g| g.issuer.0 == identity.issuer && g.matcher.matches(identity)) {
        matched.push(grant.id);
        scopes.extend(grant.scopes.iter().copied());
        sellers = union(sellers, &grant.sellers);
    }
    let mut other_scopes = Vec::new();
    if let Some(claim) = identity.scope.as_deref() {
        let claimed = Principal::from_claims(String::new(), String::new(), Some(claim), None);
        // Implied scopes on both sides first: a grant of `credentials:read` narrowed by a `credentials:token`
        // claim gives `credentials:token`.
        scopes = implied(&scopes).intersection(&implied(&claimed.scopes)).copied().collect();
        other_scopes = claimed.other_scopes;
    }
    Resolved { principal: Principal { issuer, subject, scopes, other_scopes, sellers }, matched }
}

/// `scopes` with the ones they imply.
fn implied(scopes: &BTreeSet<Scope>) -> BTreeSet<Scope> {
    let mut all = scopes.clone();
    if scopes.contains(&Scope::CredentialsRead) {
        all.insert(Scope::CredentialsToken);
    }
    all
}

fn union(left: SellerReach, right: &SellerReach) -> SellerReach {
    match (left, right) {
        (SellerReach::All, _) | (_, SellerReach::All) => SellerReach::All,
        (SellerReach::Only(mut a), SellerReach::Only(b)) => {
            a.extend(b.iter().cloned());
            SellerReach::Only(a)
        }
    }
}

/// Whether `new` would match its own creator's identity: such a grant is refused (no self-escalation), whatever
/// the creator's issuer mode.
pub fn would_grant_itself(creator: &Identity, new: &GrantInput) -> bool {
    new.issuer.0 == creator.issuer && new.matcher.matches(creator)
}

/// Whether `now` has everything `before` had: every scope (with the ones it implies) and every seller. A session
/// opened with `before` ends when its identity now resolves to less.
pub fn keeps_everything(before: &Principal, now: &Principal) -> bool {
    let scopes = before.scopes.iter().all(|s| now.has_scope(*s));
    let sellers = match (&before.sellers, &now.sellers) {
        (_, SellerReach::All) => true,
        (SellerReach::All, SellerReach::Only(_)) => false,
        (SellerReach::Only(b), SellerReach::Only(n)) => b.is_subset(n),
    };
    scopes && sellers
}
