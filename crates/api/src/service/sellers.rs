//! Seller accounts: registering, (de)activating and reading them, and the lookup other use cases start from.

use cdvault_domain::Reason;
use cdvault_domain::audit::{AuditAction, Outcome};
use cdvault_domain::policy::{Principal, Scope};
use cdvault_domain::seller::{SellerAccount, SellerLogin, SellerStatus};
use cdvault_domain::text::DisplayName;
use cdvault_storage::{StorageError, sellers};
use time::OffsetDateTime;
use uuid::Uuid;

use super::authorize::{Caller, RawLogin, SellerAct};
use super::vault::Vault;
use crate::error::ApiError;

impl Vault {
    /// The seller of an authorized act, or `NOT_FOUND`.
    pub(super) async fn existing_seller(&self, login: &SellerLogin) -> Result<SellerAccount, ApiError> {
        sellers::find_by_login(&self.db, login.as_str())
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("seller '{login}'")))
    }

    pub async fn register_seller(
        &self,
        caller: &Caller,
        login: &str,
        display_name: &str,
    ) -> Result<SellerAccount, ApiError> {
        let act = AuditAction::SellerRegister;
        let SellerAct { principal: p, login } =
            self.authorize_seller_act(caller, act, Some(Scope::CredentialsWrite), RawLogin::login(login)).await?;
        let display_name = DisplayName::parse("displayName", display_name)?;
        let now = OffsetDateTime::now_utc();
        let account = SellerAccount {
            id: Uuid::now_v7(),
            login,
            display_name,
            status: SellerStatus::Active,
            created_at: now,
            updated_at: now,
        };
        let event = caller.audit_record(&p.subject, act, Outcome::Success).seller(account.login.as_str());
        match sellers::insert(&self.db, &account, event).await {
            Ok(()) => Ok(account),
            Err(StorageError::Taken(_)) => {
                let record = caller
                    .audit_record(&p.subject, act, Outcome::Failed)
                    .seller(account.login.as_str())
                    .reason(Reason::LoginTaken);
                self.record_best_effort(record).await;
                Err(ApiError::Conflict(format!("a seller with login '{}' is already registered", account.login)))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn set_seller_status(
        &self,
        caller: &Caller,
        login: &str,
        status: SellerStatus,
    ) -> Result<SellerAccount, ApiError> {
        let act = match status {
            SellerStatus::Active => AuditAction::SellerReactivate,
            SellerStatus::Inactive => AuditAction::SellerDeactivate,
        };
        let SellerAct { principal: p, login } =
            self.authorize_seller_act(caller, act, Some(Scope::CredentialsWrite), RawLogin::login(login)).await?;
        let event = caller.audit_record(&p.subject, act, Outcome::Success).seller(login.as_str());
        let changed = sellers::set_status(&self.db, login.as_str(), status, event).await;
        // After the write: an issue racing it cannot put the old state back.
        self.cache.forget(login.as_str());
        match changed {
            Ok(account) => Ok(account),
            Err(StorageError::NotFound) => Err(ApiError::NotFound(format!("seller '{login}'"))),
            Err(e) => Err(e.into()),
        }
    }

    /// The caller's own principal (the `viewer` query).
    pub async fn viewer(&self, caller: &Caller) -> Result<Principal, ApiError> {
        self.authenticate(caller, AuditAction::Viewer).await.cloned()
    }

    /// One seller, if it exists and the caller reaches it.
    pub async fn seller(&self, caller: &Caller, login: &str) -> Result<Option<SellerAccount>, ApiError> {
        let SellerAct { login, .. } =
            self.authorize_seller_act(caller, AuditAction::SellerRead, None, RawLogin::login(login)).await?;
        Ok(sellers::find_by_login(&self.db, login.as_str()).await?)
    }

    /// A page of the sellers the caller reaches, by login, after `after`.
    pub async fn sellers(
        &self,
        caller: &Caller,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<SellerAccount>, ApiError> {
        let p = self.authenticate(caller, AuditAction::SellerRead).await?;
        Ok(sellers::list(&self.db, &p.sellers, after, limit).await?)
    }
}
