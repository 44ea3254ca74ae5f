//! `cdvault audit verify` in the real binary, on the development set-up: a healthy chain, a deleted tail with the
//! head moved back (seen only with a checkpoint taken before), the audit MAC key row edited or deleted, and no root
//! key at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use sea_orm::ConnectionTrait;

mod support;

use support::{Server, cdvault, run, text};

/// `cdvault audit verify` with these checkpoint files: its exit code and what it printed.
fn audit_verify(dir: &Path, checkpoints: &[&Path]) -> (Option<i32>, String, String) {
    let mut command = cdvault(dir);
    command.args(["audit", "verify"]);
    if !checkpoints.is_empty() {
        command.arg("--checkpoints").args(checkpoints);
    }
    let output = run(&mut command);
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

/// Starts the development set-up in `dir`, sends `refusals` requests with a bad token (each leaves an audit event),
/// and stops it with SIGTERM, so every event is committed.
fn dev_vault_with_events(dir: &Path, refusals: usize) {
    let server = Server::start(cdvault(dir));
    let address = server.address.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        for _ in 0..refusals {
            let answer: serde_json::Value = client
                .post(format!("http://{address}/graphql"))
                .bearer_auth("not-a-token")
                .json(&serde_json::json!({ "query": "{ viewer { subject } }" }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(answer["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        }
    });
    server.terminate();
}

fn data_dir(dir: &Path) -> PathBuf {
    dir.join("cdvault-data")
}

/// Runs `sql` on the development database, as someone with write access to the file would.
fn tamper(dir: &Path, sql: &str) {
    let url = format!("sqlite://{}?mode=rw", data_dir(dir).join("cdvault.db").display());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conn = sea_orm::Database::connect(url.as_str()).await.unwrap();
        conn.execute_unprepared(sql).await.unwrap();
        conn.close().await.unwrap();
    });
}

/// Writes a checkpoint of the head as it is now to `file`, among other log lines, signed with the audit MAC key
/// opened by the development root key (what a replica ships off the host).
fn write_checkpoint(dir: &Path, file: &Path) {
    let url = format!("sqlite://{}?mode=rw", data_dir(dir).join("cdvault.db").display());
    let root = std::fs::read_to_string(data_dir(dir).join("root.key")).unwrap();
    let root = cdvault_domain::crypto::RootKey::from_base64(root.trim()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let line = rt.block_on(async {
        let db = cdvault_storage::Database::connect(&url).await.unwrap();
        let key = cdvault_storage::audit::existing_key(&db, &root).await.unwrap().expect("the server made the key");
        let (seq, link) = cdvault_storage::audit::head(&db).await.unwrap();
        db.close().await.unwrap();
        key.checkpoint(seq, link, time::OffsetDateTime::now_utc(), "replica-a").to_line()
    });
    std::fs::write(file, format!("2026-11-27T10:00:00Z INFO serving\n2026-11-27T10:00:01Z {line}\n")).unwrap();
}

#[test]
fn audit_verify_sees_a_deleted_tail_with_the_head_moved_back_only_with_a_checkpoint_taken_before() {
    let dir = tempfile::tempdir().unwrap();
    dev_vault_with_events(dir.path(), 6);
    let (code, out, err) = audit_verify(dir.path(), &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("audit chain OK: 6 events"), "{out}");
    let checkpoints = dir.path().join("replica-a.log");
    write_checkpoint(dir.path(), &checkpoints);
    let (code, out, _) = audit_verify(dir.path(), &[&checkpoints]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 checkpoint(s) from 1 file(s) matched"), "{out}");

    // The last two events deleted and the head moved back onto the fourth.
    tamper(dir.path(), "DELETE FROM audit_events WHERE seq > 4");
    tamper(dir.path(), "UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit_events WHERE seq = 4)");

    // The development set-up's own checkpoint file (read by default) saw events 5 and 6.
    let (code, out, err) = audit_verify(dir.path(), &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("tail was deleted"), "{out}");
    // Without any checkpoint, nothing in the database shows it.
    std::fs::remove_file(dir.path().join("cdvault-data").join("audit-checkpoints.jsonl")).unwrap();
    let (code, out, err) = audit_verify(dir.path(), &[]);
    assert_eq!(code, Some(0), "nothing in the database shows it: {out}{err}");
    assert!(out.contains("audit chain OK: 4 events") && out.contains("pass --checkpoints"), "{out}");
    let (code, out, err) = audit_verify(dir.path(), &[&checkpoints]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("audit chain BROKEN") && out.contains("seq 6") && out.contains("tail was deleted"), "{out}");
}

#[test]
fn audit_verify_without_the_root_key_says_it_needs_it_and_never_says_ok() {
    let dir = tempfile::tempdir().unwrap();
    dev_vault_with_events(dir.path(), 1);
    std::fs::rename(data_dir(dir.path()).join("root.key"), dir.path().join("root.key.elsewhere")).unwrap();
    let (code, out, err) = audit_verify(dir.path(), &[]);
    assert_ne!(code, Some(0));
    assert!(err.contains("needs the root key"), "{err}");
    assert!(!out.contains("OK"), "{out}");

    // Another root key opens nothing either.
    let other = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let refused = run(cdvault(dir.path()).args(["audit", "verify"]).env("CDVAULT_ROOT_KEY", other));
    assert_ne!(refused.status.code(), Some(0));
    assert!(text(&refused.stderr).contains("cannot open the audit MAC key"), "{}", text(&refused.stderr));
    assert!(!text(&refused.stdout).contains("OK"), "{}", text(&refused.stdout));
}

#[test]
fn audit_verify_reports_an_edited_audit_key_row_as_an_error_and_a_deleted_one_as_broken() {
    let dir = tempfile::tempdir().unwrap();
    dev_vault_with_events(dir.path(), 2);
    // Where the keyed chain begins, moved past every event: it would let keyed rows pass as unkeyed ones.
    tamper(dir.path(), "UPDATE audit_keys SET v2_from = 100");
    let (code, out, err) = audit_verify(dir.path(), &[]);
    assert_ne!(code, Some(0), "{out}");
    assert!(!out.contains("OK"), "{out}");
    assert!(err.contains("cannot open the audit MAC key"), "{err}");

    tamper(dir.path(), "DELETE FROM audit_keys");
    let (code, out, err) = audit_verify(dir.path(), &[]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("audit chain BROKEN") && out.contains("audit MAC key is missing"), "{out}");
}
