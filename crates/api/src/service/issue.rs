//! Issuing a stored credential to a tool: the fail-closed path shared by Marketplace API and Octopia credentials.
//! Nothing leaves before its audit event is committed, and only while the seller is active and the version the
//! newest.

use serde_json::json;
use std::sync::Arc;

use cdvault_domain::Reason;
use cdvault_domain::audit::{AuditAction, Outcome};
use cdvault_domain::credential::CredentialKind;
use cdvault_domain::policy::{Denial, Principal, Scope};
use cdvault_domain::seller::SellerLogin;
use cdvault_domain::text::Purpose;
use cdvault_storage::audit::{AppendError, IssueCondition};
use cdvault_storage::{StorageError, issue_material};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::authorize::{Caller, RawLogin, SellerAct};
use super::vault::Vault;
use crate::cache::IssueMaterial;
use crate::error::ApiError;

/// A Marketplace API credential handed to a tool.
#[derive(Debug)]
pub struct IssuedApi {
    pub seller_login: String,
    pub api_login: String,
    pub password: Zeroizing<String>,
    pub version: i32,
    pub issued_at: OffsetDateTime,
}

/// Octopia client credentials handed to a tool.
#[derive(Debug)]
pub struct IssuedOctopia {
    pub seller_login: String,
    pub client_id: String,
    pub client_secret: Zeroizing<String>,
    pub seller_id: String,
    pub version: i32,
    pub issued_at: OffsetDateTime,
}

/// A field of an issue payload that carries a secret. The resolver reads which ones the query selects before the use
/// case runs, so each one's scope is checked, and the audit records them, before anything is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretField {
    /// `IssuedApiCredential.password`.
    Password,
    /// `IssuedOctopiaCredential.clientSecret`.
    ClientSecret,
    /// `IssuedAccessToken.token`: a brokered marketplace token.
    AccessToken,
}

impl SecretField {
    /// The field's name in the schema (and in the audit's `fields`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::ClientSecret => "clientSecret",
            Self::AccessToken => "token",
        }
    }

    /// The scope that reveals it: passwords and client secrets need `credentials:read`, a brokered token only
    /// `credentials:token` (which `credentials:read` implies).
    pub fn scope(self) -> Scope {
        match self {
            Self::Password | Self::ClientSecret => Scope::CredentialsRead,
            Self::AccessToken => Scope::CredentialsToken,
        }
    }
}

/// The names of `fields`, for the audit details.
pub(super) fn field_names(fields: &[SecretField]) -> Vec<&'static str> {
    fields.iter().map(|f| f.as_str()).collect()
}

/// The newest version of a credential, opened, once its issue is recorded.
struct Issued {
    login: SellerLogin,
    material: Arc<IssueMaterial>,
    secret: Zeroizing<String>,
}

/// The error of an Octopia credential stored without its client or seller id.
fn octopia_metadata_missing() -> ApiError {
    ApiError::internal(
        "reading Octopia metadata",
        StorageError::Corrupt("an Octopia credential without client or seller id".into()),
    )
}

impl Vault {
    /// The scope of every selected secret field, then the freeze: the checks of a secret-bearing act once its own
    /// scope and the seller's reach are checked. Each refusal is audited as a denial of `act`.
    pub(super) async fn authorize_secret_fields(
        &self,
        caller: &Caller,
        p: &Principal,
        act: AuditAction,
        login: &SellerLogin,
        fields: &[SecretField],
    ) -> Result<(), ApiError> {
        for field in fields {
            if let Err(denial) = p.require(field.scope()) {
                return Err(self.record_denial(caller, p, act, Some(login.as_str()), denial).await);
            }
        }
        self.refuse_if_frozen(caller, p, act, Some(login.as_str())).await
    }

    /// The newest credential of a seller, from the cache or the database. `NOT_FOUND` and `SELLER_INACTIVE` (audited
    /// as `act`) here.
    pub(super) async fn issue_material(
        &self,
        caller: &Caller,
        p: &Principal,
        login: &SellerLogin,
        kind: CredentialKind,
        act: AuditAction,
    ) -> Result<Arc<IssueMaterial>, ApiError> {
        if let Some(material) = self.cache.get(login.as_str(), kind) {
            return Ok(material);
        }
        let found = issue_material::newest_by_login(&self.db, login.as_str(), kind)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("seller '{login}'")))?;
        if !found.active {
            return Err(self.record_denial(caller, p, act, Some(login.as_str()), Denial::SellerInactive).await);
        }
        let stored = found
            .newest
            .ok_or_else(|| ApiError::NotFound(format!("{} credential of seller '{login}'", kind.as_str())))?;
        let material = Arc::new(IssueMaterial { seller_id: found.seller_id, stored });
        self.cache.put(login.as_str(), kind, material.clone());
        Ok(material)
    }

    /// The checks and audit shared by both issue paths: returns the newest version, opened.
    async fn issue(
        &self,
        caller: &Caller,
        seller_login: &str,
        purpose: &str,
        kind: CredentialKind,
        fields: &[SecretField],
    ) -> Result<Issued, ApiError> {
        let act = AuditAction::CredentialIssue;
        let SellerAct { principal: p, login } = self
            .authorize_seller_act(caller, act, Some(Scope::CredentialsRead), RawLogin::seller_login(seller_login))
            .await?;
        self.authorize_secret_fields(caller, p, act, &login, fields).await?;
        let purpose = Purpose::parse("purpose", purpose)?;
        // Another attempt only when a newer version was stored between our read and the audit commit, or once when
        // the cached ciphertext no longer opens.
        let mut reread = false;
        for _ in 0..4 {
            let material = self.issue_material(caller, p, &login, kind, act).await?;
            let stored = &material.stored;
            let base = |outcome| {
                caller.audit_record(&p.subject, act, outcome).seller(login.as_str()).purpose(purpose.as_str()).details(
                    json!({
                        "kind": kind.as_str(),
                        "version": stored.meta.version,
                        "fields": field_names(fields),
                    }),
                )
            };
            let secret = match self.open_credential(stored).await {
                Ok(secret) => secret,
                Err(_) if !reread => {
                    // The cached ciphertext may predate a rewrap whose old version is now retired: read it again.
                    reread = true;
                    self.cache.forget(login.as_str());
                    continue;
                }
                Err(e) => {
                    self.cache.forget(login.as_str());
                    self.record_best_effort(base(Outcome::Failed).reason(Reason::DecryptFailed)).await;
                    return Err(e);
                }
            };
            if kind == CredentialKind::Octopia
                && (stored.meta.client_id.is_none() || stored.meta.octopia_seller_id.is_none())
            {
                return Err(octopia_metadata_missing());
            }
            // Fail closed: nothing leaves before its audit event is committed, and only if the seller is still
            // active and the version still the newest at that moment.
            let condition = IssueCondition { seller_id: material.seller_id, kind, version: stored.meta.version };
            match self.audit.append_issue(base(Outcome::Success), condition).await {
                Ok(()) => return Ok(Issued { login, material, secret }),
                Err(AppendError::SellerInactive) => {
                    self.cache.forget(login.as_str());
                    return Err(self.record_denial(caller, p, act, Some(login.as_str()), Denial::SellerInactive).await);
                }
                Err(AppendError::Stale) => self.cache.forget(login.as_str()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::Conflict(format!("the credential of seller '{login}' keeps changing; try again")))
    }

    /// `fields`: the secret fields the query selects (see [`SecretField`]).
    pub async fn issue_api_credential(
        &self,
        caller: &Caller,
        seller_login: &str,
        purpose: &str,
        fields: &[SecretField],
    ) -> Result<IssuedApi, ApiError> {
        let Issued { login, material, secret } =
            self.issue(caller, seller_login, purpose, CredentialKind::MarketplaceApi, fields).await?;
        Ok(IssuedApi {
            api_login: login.api_login(),
            seller_login: login.as_str().to_owned(),
            password: secret,
            version: material.stored.meta.version,
            issued_at: OffsetDateTime::now_utc(),
        })
    }

    /// `fields`: the secret fields the query selects (see [`SecretField`]).
    pub async fn issue_octopia_credential(
        &self,
        caller: &Caller,
        seller_login: &str,
        purpose: &str,
        fields: &[SecretField],
    ) -> Result<IssuedOctopia, ApiError> {
        let Issued { login, material, secret } =
            self.issue(caller, seller_login, purpose, CredentialKind::Octopia, fields).await?;
        let meta = &material.stored.meta;
        Ok(IssuedOctopia {
            seller_login: login.as_str().to_owned(),
            client_id: meta.client_id.clone().ok_or_else(octopia_metadata_missing)?,
            seller_id: meta.octopia_seller_id.clone().ok_or_else(octopia_metadata_missing)?,
            client_secret: secret,
            version: meta.version,
            issued_at: OffsetDateTime::now_utc(),
        })
    }
}
