//! The restore drill of docs/backups.md (`deploy/restore-drill.sh`), run against a live vault on SQLite and on
//! PostgreSQL: an online backup restored into a fresh database opens with the root key kept apart, serves an issue,
//! and its audit trail verifies; the source is left as it was; with another root key the drill fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use sea_orm::ConnectionTrait;

mod support;

use support::pg::{PgDatabase, settings_for};
use support::{BIN, Server, cdvault, graphql, run, text};

const PASSWORD: &str = "Drill-Passw0rd!";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/restore-drill.sh")
}

/// The vault's settings with the root key in a file of its own directory (never beside the database or a backup).
fn settings(dir: &Path, url: &str) -> Vec<(&'static str, String)> {
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let mut env = settings_for(url);
    let inline = env.iter().position(|(k, _)| *k == "CDVAULT_ROOT_KEY").unwrap();
    let (_, key) = env.remove(inline);
    std::fs::write(keys.join("root.key"), format!("{key}\n")).unwrap();
    env.push(("CDVAULT_ROOT_KEY_FILE", keys.join("root.key").display().to_string()));
    env
}

fn audit_rows(url: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conn = sea_orm::Database::connect(url).await.unwrap();
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                conn.get_database_backend(),
                "SELECT COUNT(*) AS n FROM audit_events",
            ))
            .await
            .unwrap()
            .unwrap();
        let n: i64 = row.try_get("", "n").unwrap();
        conn.close().await.unwrap();
        n
    })
}

fn drill(dir: &Path, env: &[(&'static str, String)], admin: Option<&str>) -> (bool, String) {
    let mut command = Command::new("bash");
    command.arg(script()).current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("CDVAULT_") || key.starts_with("DRILL_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().map(|(k, v)| (*k, v.as_str()))).env("CDVAULT_BIN", BIN).env("DRILL_SELLER", "drillshop");
    if let Some(admin) = admin {
        command.env("DRILL_ADMIN_URL", admin);
    }
    let output = run(&mut command);
    (output.status.success(), format!("{}{}", text(&output.stdout), text(&output.stderr)))
}

/// A live vault with one seller whose password was stored and issued, backed up and restored while it runs.
fn a_backup_restores_into_a_vault_that_issues_and_verifies(dir: &Path, url: &str, admin: Option<&str>) {
    let env = settings(dir, url);
    let mut command = cdvault(dir);
    command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let server = Server::start(command);
    let mut mint = cdvault(dir);
    mint.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let minted =
        run(mint.args(["token", "--sub", "ops", "--scope", "credentials:read credentials:write", "--sellers", "*"]));
    let token = text(&minted.stdout).trim().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let documents = [
            "mutation { registerSellerAccount(input: {login: \"drillshop\", displayName: \"D\"}) { id } }".to_owned(),
            format!("mutation {{ storeApiCredential(input: {{sellerLogin: \"drillshop\", password: \"{PASSWORD}\"}}) {{ warnings }} }}"),
            "mutation { issueApiCredential(sellerLogin: \"drillshop\", purpose: \"before the backup\") { password } }".to_owned(),
        ];
        for document in documents {
            let answer = graphql(&server.address, &token, &document, serde_json::json!({})).await;
            assert!(answer["errors"].is_null(), "{answer}");
        }
    });
    let before = audit_rows(url);

    let (ok, out) = drill(dir, &env, admin);
    assert!(ok, "{out}");
    println!("{out}");
    assert!(out.contains("audit chain OK: 3 events"), "the copy verifies as it was backed up: {out}");
    assert!(out.contains("issued drillshop-api's credential on the restored copy"), "{out}");
    assert!(out.contains("audit chain OK: 4 events"), "with the drill's own issue: {out}");
    assert!(out.contains("restore drill OK"), "{out}");
    assert!(!out.contains(PASSWORD), "the drill never prints the password: {out}");
    assert_eq!(audit_rows(url), before, "the drill issued on the copy, not on the source");

    // The backup alone, with another root key, opens nothing.
    let mut wrong = env.clone();
    std::fs::write(dir.join("other.key"), "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=\n").unwrap();
    let at = wrong.iter().position(|(k, _)| *k == "CDVAULT_ROOT_KEY_FILE").unwrap();
    wrong[at].1 = dir.join("other.key").display().to_string();
    let (ok, out) = drill(dir, &wrong, admin);
    assert!(!ok, "{out}");
    assert!(out.contains("restore drill FAILED: audit verify of the restored copy"), "{out}");
    assert!(!out.contains("restore drill OK"), "{out}");
    server.terminate();
}

#[test]
fn a_backup_restores_into_a_vault_that_issues_and_verifies_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("db")).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("db").join("cdvault.db").display());
    a_backup_restores_into_a_vault_that_issues_and_verifies(dir.path(), &url, None);
}

#[test]
fn a_backup_restores_into_a_vault_that_issues_and_verifies_on_postgres() {
    let Some(db) = PgDatabase::create("cdvault_drill_source") else { return };
    let dir = tempfile::tempdir().unwrap();
    a_backup_restores_into_a_vault_that_issues_and_verifies(dir.path(), &db.url, Some(db.admin()));
}
