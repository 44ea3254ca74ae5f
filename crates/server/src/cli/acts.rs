//! The commands that change keys: each opens the audit MAC key with the root key, since a
//! key act commits with its audit event (no event, no act) and verification checks keyed links.

use std::path::PathBuf;

use anyhow::Context;
use cdvault_domain::audit::{AuditAction, AuditRecord, Outcome};
use cdvault_domain::crypto::RootKey;
use cdvault_storage::Database;
use serde_json::json;

use crate::config::Settings;

/// The database, with the audit MAC key opened (made on first use) by the configured root key.
pub(super) async fn open_keyed(settings: &Settings) -> anyhow::Result<(Database, RootKey)> {
    let db = Database::connect(&settings.existing_database_url()?).await.context("cannot open the database")?;
    let root = settings.root_key()?;
    let key = cdvault_storage::audit::open_key(&db, &root)
        .await
        .context("cannot open the audit MAC key (is CDVAULT_ROOT_KEY the key this database was created with?)")?;
    Ok((db.with_audit_key(key), root))
}

/// The operator acting from the command line.
pub(super) fn operator() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "operator".into()))
}

/// An audit record of an operator's act from the command line.
pub(super) fn record(who: &str, act: AuditAction, details: serde_json::Value) -> AuditRecord {
    let request_id = format!("cli-{}-{}", std::process::id(), time::OffsetDateTime::now_utc().unix_timestamp_nanos());
    AuditRecord::new(who, act, Outcome::Success, &request_id).details(details)
}

pub(super) async fn rotate(settings: &Settings) -> anyhow::Result<i32> {
    let (db, root) = open_keyed(settings).await?;
    let who = operator();
    let event = |job: &cdvault_storage::rewrap::RotationJob| {
        let details =
            json!({ "job": job.id.to_string(), "toVersion": job.to_version, "total": job.total, "via": "cli" });
        record(&who, AuditAction::KeysRotate, details)
    };
    match cdvault_storage::rewrap::start(&db, &root, &who, event).await {
        Ok(job) => {
            println!(
                "rotation job {} started: version {} is active, {} ciphertexts to rewrap",
                job.id, job.to_version, job.total
            );
            println!("the running servers rewrap in the background; follow it with `cdvault keys status`");
            Ok(0)
        }
        Err(cdvault_storage::rewrap::StartError::AlreadyRunning(id)) => {
            println!("refused: rotation job {id} is still running");
            Ok(1)
        }
        Err(e) => Err(e).context("cannot start the rotation"),
    }
}

pub(super) async fn rotate_root(settings: &Settings, new_root_key_file: &PathBuf) -> anyhow::Result<i32> {
    let (db, old) = open_keyed(settings).await?;
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(new_root_key_file)
            .with_context(|| format!("cannot read {}", new_root_key_file.display()))?,
    );
    let new = RootKey::from_base64(&text).map_err(|e| anyhow::anyhow!("{}: {e}", new_root_key_file.display()))?;
    let who = operator();
    let event = |count: usize| record(&who, AuditAction::KeysRotateRoot, json!({ "versions": count, "via": "cli" }));
    match cdvault_storage::keyring::rotate_root(&db, &old, &new, event).await {
        Ok(count) => {
            println!(
                "root key rotated: {count} keyring versions re-wrapped (and the audit MAC key); start the servers with the new key"
            );
            Ok(0)
        }
        Err(cdvault_storage::keyring::RootRotationError::Storage(e)) => Err(e).context("cannot rotate the root key"),
        Err(refused) => {
            println!("refused: {refused}");
            Ok(1)
        }
    }
}

pub(super) async fn retire(settings: &Settings, version: i32) -> anyhow::Result<i32> {
    let (db, _) = open_keyed(settings).await?;
    let event = record(
        &operator(),
        AuditAction::KeysRetire,
        json!({ "version": version, "material": "destroyed", "via": "cli" }),
    );
    match cdvault_storage::keyring::retire(&db, version, event).await {
        Ok(()) => {
            println!("keyring version {version} retired: its material is destroyed");
            Ok(0)
        }
        Err(cdvault_storage::keyring::RetireError::Storage(e)) => Err(e).context("cannot retire the version"),
        Err(refused) => {
            println!("refused: {refused}");
            Ok(1)
        }
    }
}
