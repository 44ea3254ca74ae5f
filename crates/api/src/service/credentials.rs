//! Storing credentials: new versions of a Marketplace API password or Octopia client credentials (checked with the
//! marketplace first when asked), restoring a kept version, and reading the versions' metadata.

use cdvault_domain::audit::{AuditAction, Outcome};
use cdvault_domain::credential::{ApiPassword, CredentialKind, CredentialMeta, OctopiaCredential, SecretSlot};
use cdvault_domain::policy::Scope;
use cdvault_domain::seller::SellerAccount;
use cdvault_domain::{Reason, ValidationError};
use cdvault_storage::StorageError;
use cdvault_storage::credentials::{self, NewCredential};
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use super::authorize::{Caller, RawLogin, SellerAct};
use super::vault::Vault;
use super::verification::Candidate;
use crate::error::ApiError;

/// A stored Marketplace API password: its version, and the password policy's warnings.
#[derive(Debug)]
pub struct StoredApiCredential {
    pub credential: CredentialMeta,
    /// Weaknesses that did not stop the store.
    pub warnings: Vec<String>,
}

/// New Octopia client credentials for a seller, as the caller gave them.
#[derive(Debug)]
pub struct NewOctopiaCredential<'a> {
    pub seller_login: &'a str,
    pub client_id: &'a str,
    pub client_secret: SecretString,
    /// The seller id at Octopia (tools send it in the `SellerId` header).
    pub seller_id: &'a str,
    /// Store only once Octopia accepted them.
    pub verify: bool,
}

fn new_version(kind: CredentialKind, created_by: &str, restored_from: Option<i32>) -> NewCredential {
    NewCredential {
        id: Uuid::now_v7(),
        kind,
        client_id: None,
        octopia_seller_id: None,
        restored_from,
        created_by: created_by.to_owned(),
        verification: None,
    }
}

impl Vault {
    /// Seals and stores a new version for an authorized act, audited as `act`.
    async fn store(
        &self,
        caller: &Caller,
        authorized: &SellerAct<'_>,
        act: AuditAction,
        new: NewCredential,
        secret: &[u8],
    ) -> Result<CredentialMeta, ApiError> {
        let SellerAct { principal: p, login } = authorized;
        let event = |meta: &CredentialMeta| {
            let details = json!({
                "kind": meta.kind.as_str(),
                "version": meta.version,
                "keyVersion": meta.key_version,
                "restoredFrom": meta.restored_from,
            });
            caller.audit_record(&p.subject, act, Outcome::Success).seller(login.as_str()).details(details)
        };
        let ring = self.keys.current();
        let seal = |slot: &SecretSlot<'_>| slot.seal(&ring, secret);
        let mut stored = credentials::store(&self.db, login.as_str(), new.clone(), seal, event).await;
        if let Err(StorageError::KeyNotActive(_)) = stored {
            // A rotation elsewhere: seal under the new active version.
            let ring = self.keys.reload().await?;
            let seal = |slot: &SecretSlot<'_>| slot.seal(&ring, secret);
            stored = credentials::store(&self.db, login.as_str(), new, seal, event).await;
        }
        self.cache.forget(login.as_str());
        match stored {
            Ok((meta, _change)) => {
                self.broker.poke_local();
                Ok(meta)
            }
            Err(StorageError::NotFound) => Err(ApiError::NotFound(format!("seller '{login}'"))),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a new Marketplace API password; with `verify`, only once Cdiscount accepted it.
    pub async fn store_api_credential(
        &self,
        caller: &Caller,
        seller_login: &str,
        password: SecretString,
        verify: bool,
    ) -> Result<StoredApiCredential, ApiError> {
        let act = AuditAction::CredentialStore;
        let authorized = self
            .authorize_seller_act(caller, act, Some(Scope::CredentialsWrite), RawLogin::seller_login(seller_login))
            .await?;
        let (password, warnings) = ApiPassword::parse("password", password)?;
        let mut new = new_version(CredentialKind::MarketplaceApi, &authorized.principal.subject, None);
        if verify {
            self.existing_seller(&authorized.login).await?;
            let secret = SecretString::from(password.expose().to_owned());
            let candidate =
                Candidate { kind: CredentialKind::MarketplaceApi, client_id: None, secret: &secret, field: "password" };
            new.verification = Some(self.verify_before_store(caller, &authorized, candidate).await?);
        }
        let credential = self.store(caller, &authorized, act, new, password.expose().as_bytes()).await?;
        Ok(StoredApiCredential { credential, warnings })
    }

    /// Stores new Octopia client credentials; with `verify`, only once Octopia accepted them.
    pub async fn store_octopia_credential(
        &self,
        caller: &Caller,
        input: NewOctopiaCredential<'_>,
    ) -> Result<CredentialMeta, ApiError> {
        let act = AuditAction::CredentialStore;
        let NewOctopiaCredential { seller_login, client_id, client_secret, seller_id, verify } = input;
        let authorized = self
            .authorize_seller_act(caller, act, Some(Scope::CredentialsWrite), RawLogin::seller_login(seller_login))
            .await?;
        let octopia = OctopiaCredential::parse(client_id, client_secret, seller_id)?;
        let secret = secrecy::ExposeSecret::expose_secret(&octopia.client_secret).as_bytes();
        let mut new = new_version(CredentialKind::Octopia, &authorized.principal.subject, None);
        if verify {
            self.existing_seller(&authorized.login).await?;
            let candidate = Candidate {
                kind: CredentialKind::Octopia,
                client_id: Some(octopia.client_id.as_str()),
                secret: &octopia.client_secret,
                field: "clientSecret",
            };
            new.verification = Some(self.verify_before_store(caller, &authorized, candidate).await?);
        }
        new.client_id = Some(octopia.client_id);
        new.octopia_seller_id = Some(octopia.seller_id);
        self.store(caller, &authorized, act, new, secret).await
    }

    /// Makes a new version equal to a kept older one.
    pub async fn restore_credential_version(
        &self,
        caller: &Caller,
        seller_login: &str,
        kind: CredentialKind,
        version: i32,
    ) -> Result<CredentialMeta, ApiError> {
        let act = AuditAction::CredentialRestore;
        let authorized = self
            .authorize_seller_act(caller, act, Some(Scope::CredentialsWrite), RawLogin::seller_login(seller_login))
            .await?;
        let login = &authorized.login;
        if version < 1 {
            return Err(ValidationError::new("version", Reason::OutOfRange, "versions start at 1").into());
        }
        let seller = self.existing_seller(login).await?;
        let old = credentials::get_version(&self.db, seller.id, kind, version).await?.ok_or_else(|| {
            ApiError::NotFound(format!(
                "{} credential version {version} of seller '{login}' (only the newest {} are kept)",
                kind.as_str(),
                cdvault_domain::credential::RETAINED_VERSIONS
            ))
        })?;
        let secret = self.open_credential(&old).await?;
        let mut new = new_version(kind, &authorized.principal.subject, Some(version));
        new.client_id = old.meta.client_id;
        new.octopia_seller_id = old.meta.octopia_seller_id;
        self.store(caller, &authorized, act, new, secret.as_bytes()).await
    }

    /// Metadata of the kept versions of a seller's credentials (the seller was reached when it was loaded).
    pub async fn credential_versions(
        &self,
        seller: &SellerAccount,
        kind: Option<CredentialKind>,
    ) -> Result<Vec<CredentialMeta>, ApiError> {
        Ok(credentials::list_meta(&self.db, seller.id, kind).await?)
    }
}
