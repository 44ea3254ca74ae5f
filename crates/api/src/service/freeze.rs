//! The emergency freeze: `vault:freeze` stops every operation that returns a secret, on every replica, until it is
//! lifted. Reads and writes that hand out no secret go on (responders rotate credentials while frozen).

use cdvault_domain::Reason;
use cdvault_domain::audit::{AuditAction, Outcome};
use cdvault_domain::freeze::{Freeze, FreezeReason};
use cdvault_domain::policy::{Principal, Scope};
use cdvault_storage::freeze;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::authorize::Caller;
use super::vault::Vault;
use crate::error::ApiError;

impl Vault {
    /// Whether the vault is frozen, as this replica last read it (at most one access poll old).
    pub fn frozen(&self) -> bool {
        self.freeze.is_frozen()
    }

    /// The freeze in force, if any, as this replica last read it.
    pub fn current_freeze(&self) -> Option<Freeze> {
        self.freeze.current()
    }

    /// The freeze as it changes (for a readiness probe's detail).
    pub fn freeze_changed(&self) -> watch::Receiver<Option<Freeze>> {
        self.freeze.subscribe()
    }

    /// `FROZEN` while the vault is frozen, recorded (best effort) as a denial of `act`. Secret-bearing acts call it
    /// once authorized, before they read the secret.
    pub(super) async fn refuse_if_frozen(
        &self,
        caller: &Caller,
        p: &Principal,
        act: AuditAction,
        seller: Option<&str>,
    ) -> Result<(), ApiError> {
        if !self.frozen() {
            return Ok(());
        }
        let mut record = caller.audit_record(&p.subject, act, Outcome::Denied).reason(Reason::Frozen);
        if let Some(seller) = seller {
            record = record.seller(seller);
        }
        self.record_best_effort(record).await;
        Err(ApiError::Frozen)
    }

    /// Freezes the vault (`vault:freeze`). Freezing a frozen vault records the new reason.
    pub async fn freeze_vault(&self, caller: &Caller, reason: &str) -> Result<Freeze, ApiError> {
        let act = AuditAction::VaultFreeze;
        let p = self.authorize_scope(caller, act, Scope::VaultFreeze).await?;
        let reason = FreezeReason::parse("reason", reason)?;
        let freeze = Freeze { by: p.subject.clone(), at: OffsetDateTime::now_utc(), reason };
        let event =
            caller.audit_record(&p.subject, act, Outcome::Success).details(json!({ "reason": freeze.reason.as_str() }));
        let state = freeze::set(&self.db, Some(&freeze), event).await?;
        self.freeze.set(state.freeze);
        Ok(freeze)
    }

    /// Lifts the freeze (`vault:freeze`); returns the freeze lifted, if there was one.
    pub async fn unfreeze_vault(&self, caller: &Caller) -> Result<Option<Freeze>, ApiError> {
        let act = AuditAction::VaultUnfreeze;
        let p = self.authorize_scope(caller, act, Scope::VaultFreeze).await?;
        let lifted = freeze::state(&self.db).await?.freeze;
        let details = json!({ "wasFrozen": lifted.is_some() });
        let event = caller.audit_record(&p.subject, act, Outcome::Success).details(details);
        let state = freeze::set(&self.db, None, event).await?;
        self.freeze.set(state.freeze);
        Ok(lifted)
    }
}
