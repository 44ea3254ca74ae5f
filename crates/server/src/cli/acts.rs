//! The commands that change keys or read the audit chain: each opens the audit MAC key with the root key, since a
//! key act commits with its audit event (no event, no act) and verification checks keyed links.

use std::path::PathBuf;

use anyhow::Context;
use cdvault_api::service::CheckpointSink;
use cdvault_domain::audit::{AuditAction, AuditRecord, Checkpoint, Outcome};
use cdvault_domain::crypto::RootKey;
use cdvault_storage::{Database, StorageError};
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

/// Reads every checkpoint line of `files` (lines that are not checkpoints, such as other log lines, are skipped; a
/// line that claims to be one and is malformed is an error).
fn read_checkpoints(files: &[PathBuf]) -> anyhow::Result<Vec<Checkpoint>> {
    let mut checkpoints = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        for (n, line) in text.lines().enumerate() {
            if !line.contains("\"checkpoint\"") {
                continue;
            }
            let checkpoint =
                Checkpoint::parse_line(line).with_context(|| format!("{} line {}", file.display(), n + 1))?;
            checkpoints.push(checkpoint);
        }
    }
    Ok(checkpoints)
}

pub(super) async fn verify(settings: &Settings, files: Vec<PathBuf>) -> anyhow::Result<i32> {
    let db = Database::connect(&settings.existing_database_url()?).await.context("cannot open the database")?;
    let root = settings.root_key().context(
        "audit verify checks keyed links: it needs the root key (CDVAULT_ROOT_KEY or CDVAULT_ROOT_KEY_FILE)",
    )?;
    let Some(key) = cdvault_storage::audit::existing_key(&db, &root)
        .await
        .context("cannot open the audit MAC key (is CDVAULT_ROOT_KEY the key this database was created with?)")?
    else {
        println!(
            "audit chain BROKEN: the audit MAC key is missing (deleted, or no server has started on this database)"
        );
        return Ok(1);
    };
    let db = db.with_audit_key(key);
    // Without --checkpoints, the configured checkpoint file (the development set-up's default) if there is one.
    let files = match &settings.checkpoints.sink {
        CheckpointSink::File(path) if files.is_empty() && path.exists() => {
            println!("reading checkpoints from {} (CDVAULT_AUDIT_CHECKPOINTS)", path.display());
            vec![path.clone()]
        }
        _ => files,
    };
    let checkpoints = read_checkpoints(&files)?;
    match cdvault_storage::audit::verify(&db, &checkpoints).await {
        Ok(verified) => {
            println!(
                "audit chain OK: {} events verified up to seq {}, {} checkpoint(s) from {} file(s) matched",
                verified.checked,
                verified.head.0,
                verified.checkpoints,
                files.len()
            );
            if files.is_empty() {
                println!(
                    "without checkpoints a deleted tail with the head moved back cannot be seen: pass --checkpoints"
                );
            }
            Ok(0)
        }
        Err(StorageError::ChainBroken(link)) => {
            println!("audit chain BROKEN: {link}");
            Ok(1)
        }
        Err(e) => Err(e).context("cannot read the audit trail"),
    }
}
