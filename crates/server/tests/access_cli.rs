//! `cdvault access grant | grants | revoke-grant` in the real binary, on a SQLite database of its own: each write
//! audited as the operator, refusals with exit status 1 (2 for a command line clap refuses), a grant removed once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use sea_orm::{ConnectionTrait, Statement};

const BIN: &str = env!("CARGO_BIN_EXE_cdvault");

/// `cdvault` on `dir/vault.db` with a root key of its own, and no other `CDVAULT_*` setting inherited.
fn cdvault(dir: &Path, root_key: &str) -> Command {
    let mut command = Command::new(BIN);
    command.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("CDVAULT_") {
            command.env_remove(key);
        }
    }
    command.env("CDVAULT_DATABASE_URL", database_url(dir)).env("CDVAULT_ROOT_KEY", root_key).env("USER", "ops-on-call");
    command
}

fn database_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("vault.db").display())
}

fn run(command: &mut Command) -> (Option<i32>, String) {
    let Output { status, stdout, stderr } = command.output().unwrap();
    (status.code(), format!("{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr)))
}

/// `(action, subject, outcome)` of every audit event, oldest first.
fn audit_events(dir: &Path) -> Vec<(String, String, String)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let conn = sea_orm::Database::connect(database_url(dir).as_str()).await.unwrap();
        let sql = "SELECT action, subject, outcome FROM audit_events ORDER BY seq";
        let rows = conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql)).await.unwrap();
        let events = rows
            .iter()
            .map(|r| {
                (r.try_get("", "action").unwrap(), r.try_get("", "subject").unwrap(), r.try_get("", "outcome").unwrap())
            })
            .collect();
        conn.close().await.unwrap();
        events
    })
}

#[test]
fn an_operator_grants_lists_and_revokes_access_and_each_write_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let cli = || cdvault(dir.path(), &key);
    assert_eq!(run(cli().arg("migrate")).0, Some(0));

    let (code, out) = run(cli().args([
        "access",
        "grant",
        "--issuer",
        "https://kubernetes.default.svc",
        "--service-account",
        "payments/sync-job",
        "--scope",
        "credentials:token",
        "--sellers",
        "bestshop,othershop",
    ]));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("SERVICE_ACCOUNT=payments/sync-job") && out.contains("by=cli:ops-on-call"), "{out}");

    let (code, listed) = run(cli().args(["access", "grants"]));
    assert_eq!(code, Some(0), "{listed}");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 1, "{listed}");
    assert!(lines[0].contains("scopes=credentials:token") && lines[0].contains("sellers=bestshop,othershop"));
    let id = lines[0].split_whitespace().next().unwrap().to_owned();

    assert_eq!(run(cli().args(["access", "revoke-grant", &id])).0, Some(0));
    let (code, again) = run(cli().args(["access", "revoke-grant", &id]));
    assert_eq!(code, Some(1), "{again}");
    assert!(again.contains("no access grant"), "{again}");
    assert_eq!(run(cli().args(["access", "grants"])).1, "");

    let who = "cli:ops-on-call".to_owned();
    assert_eq!(
        audit_events(dir.path()),
        [
            ("access.grant".to_owned(), who.clone(), "SUCCESS".to_owned()),
            ("access.revoke_grant".to_owned(), who, "SUCCESS".to_owned()),
        ]
    );
}

#[test]
fn invalid_grants_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let cli = || cdvault(dir.path(), &key);
    assert_eq!(run(cli().arg("migrate")).0, Some(0));
    let grant = |extra: &[&str]| {
        let mut command = cli();
        command.args(["access", "grant", "--issuer", "https://idp.example"]).args(extra);
        run(&mut command)
    };
    let (code, out) = grant(&["--subject", "erp", "--scope", "root"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("scopes"), "{out}");
    assert_eq!(grant(&["--service-account", "no-slash", "--scope", "audit:read"]).0, Some(1));
    assert_eq!(grant(&["--subject", "erp", "--sellers", "*,bestshop", "--scope", "audit:read"]).0, Some(1));
    assert_eq!(grant(&["--subject", "erp", "--group", "ops", "--scope", "audit:read"]).0, Some(2), "one match only");
    assert_eq!(grant(&["--scope", "audit:read"]).0, Some(2), "a match is required");
    assert_eq!(run(cli().args(["access", "revoke-grant", "not-a-uuid"])).0, Some(1));
    assert_eq!(run(cli().args(["access", "grants"])).1, "");
    assert!(audit_events(dir.path()).is_empty());
}
