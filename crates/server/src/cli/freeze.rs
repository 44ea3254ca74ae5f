//! `cdvault freeze --reason` and `cdvault unfreeze`: the emergency freeze from the command line, for when no token
//! with `vault:freeze` is at hand. The running servers see it at their next poll (within a second).

use anyhow::Context;
use cdvault_domain::audit::AuditAction;
use cdvault_domain::freeze::{Freeze, FreezeReason};
use serde_json::json;

use super::acts::{open_keyed, operator, record};
use crate::config::Settings;

pub(super) async fn freeze(settings: &Settings, reason: &str) -> anyhow::Result<i32> {
    let reason = match FreezeReason::parse("reason", reason) {
        Ok(reason) => reason,
        Err(invalid) => {
            println!("refused: --reason {}", invalid.message);
            return Ok(1);
        }
    };
    let (db, _) = open_keyed(settings).await?;
    let who = operator();
    let event = record(&who, AuditAction::VaultFreeze, json!({ "reason": reason.as_str(), "via": "cli" }));
    let freeze = Freeze { by: who, at: time::OffsetDateTime::now_utc(), reason };
    cdvault_storage::freeze::set(&db, Some(&freeze), event).await.context("cannot freeze the vault")?;
    println!("the vault is frozen: no secret is handed out until `cdvault unfreeze`");
    Ok(0)
}

pub(super) async fn unfreeze(settings: &Settings) -> anyhow::Result<i32> {
    let (db, _) = open_keyed(settings).await?;
    let was = cdvault_storage::freeze::state(&db).await.context("cannot read the vault state")?.freeze;
    let event = record(&operator(), AuditAction::VaultUnfreeze, json!({ "wasFrozen": was.is_some(), "via": "cli" }));
    cdvault_storage::freeze::set(&db, None, event).await.context("cannot unfreeze the vault")?;
    match was {
        Some(freeze) => println!("the vault is unfrozen (frozen by {} for: {})", freeze.by, freeze.reason.as_str()),
        None => println!("the vault was not frozen"),
    }
    Ok(0)
}
