//! Key acts commit with their audit event or not at all: with inserts of their event refused by a trigger, a
//! retirement, a rotation and a root-key rotation through GraphQL and through storage (as the CLI calls it) fail and
//! leave the keyring as it was.

use cdvault_domain::audit::{AuditAction, AuditRecord, Outcome};
use cdvault_domain::crypto::RootKey;
use cdvault_storage::keyring::{self, RetireError, RootRotationError};
use cdvault_storage::rewrap::{self, StartError};
use cdvault_tests::{ALL_SCOPES, Engine, TestApp, on_both_engines, spawn_app, token_for};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::verify;

const ROTATE: &str = "mutation { rotateEncryptionKey { id toVersion } }";
const RETIRE: &str = "mutation($v: Int!) { retireEncryptionKey(version: $v) { version state } }";

/// Makes the database refuse to store audit events of `action` (and only those).
async fn refuse_audit_of(app: &TestApp, action: &str) {
    let name = format!("refuse_{}", action.replace('.', "_"));
    let conn = app.db.raw().await;
    match app.db.engine {
        Engine::Sqlite => {
            let trigger = format!(
                "CREATE TRIGGER {name} BEFORE INSERT ON audit_events WHEN NEW.action = '{action}' \
                 BEGIN SELECT RAISE(ABORT, 'refused'); END"
            );
            conn.execute_unprepared(&trigger).await.unwrap();
        }
        Engine::Postgres => {
            let function = format!(
                "CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql"
            );
            conn.execute_unprepared(&function).await.unwrap();
            let trigger = format!(
                "CREATE TRIGGER {name} BEFORE INSERT ON audit_events FOR EACH ROW \
                 WHEN (NEW.action = '{action}') EXECUTE FUNCTION {name}()"
            );
            conn.execute_unprepared(&trigger).await.unwrap();
        }
    }
}

/// Lets audit events of `action` be stored again.
async fn allow_audit_of(app: &TestApp, action: &str) {
    let name = format!("refuse_{}", action.replace('.', "_"));
    let drop = match app.db.engine {
        Engine::Sqlite => format!("DROP TRIGGER {name}"),
        Engine::Postgres => format!("DROP TRIGGER {name} ON audit_events"),
    };
    app.db.raw().await.execute_unprepared(&drop).await.unwrap();
}

/// Each keyring version: its state and whether it still holds its wrapped material.
async fn keyring_rows(app: &TestApp) -> Vec<(i32, String, bool)> {
    let sql =
        "SELECT version, state, CAST(length(wrapped_key) AS BIGINT) AS material FROM keyring_keys ORDER BY version";
    let rows = app.db.raw().await.query_all_raw(app.db.statement(sql, vec![])).await.unwrap();
    rows.iter()
        .map(|r| {
            let material: i64 = r.try_get("", "material").unwrap();
            (r.try_get("", "version").unwrap(), r.try_get("", "state").unwrap(), material > 0)
        })
        .collect()
}

async fn rotation_jobs(app: &TestApp) -> i64 {
    let sql = "SELECT COUNT(*) AS n FROM rotation_jobs";
    let row = app.db.raw().await.query_one_raw(app.db.statement(sql, vec![])).await.unwrap().unwrap();
    row.try_get("", "n").unwrap()
}

/// The audit record of a key act from the command line.
fn cli_record(action: AuditAction) -> AuditRecord {
    AuditRecord::new("cli:test", action, Outcome::Success, "cli-test").details(json!({ "via": "cli" }))
}

fn keyring_with(versions: &[(i32, &str)]) -> Vec<(i32, String, bool)> {
    versions.iter().map(|&(v, state)| (v, state.to_owned(), true)).collect()
}

async fn a_retirement_whose_audit_event_cannot_be_written_does_not_happen(engine: Engine) {
    let app = spawn_app(engine).await;
    let root = RootKey::from_base64(&app.options.root_key).unwrap();
    let db = app.keyed_db().await;
    // Version 1 becomes DECRYPT_ONLY with nothing sealed under it: retirable.
    keyring::rotate(&db, &root, |_| cli_record(AuditAction::KeysRotate)).await.unwrap();
    let before = keyring_with(&[(1, "DECRYPT_ONLY"), (2, "ACTIVE")]);
    assert_eq!(keyring_rows(&app).await, before);
    refuse_audit_of(&app, "keys.retire").await;

    let keys_admin = token_for("security-team", "keys:admin", None);
    let refused = app.graphql(Some(&keys_admin), RETIRE, json!({ "v": 1 })).await;
    assert_eq!(refused.code(), "INTERNAL_SERVER_ERROR");
    assert_eq!(keyring_rows(&app).await, before, "the material is kept");
    let from_cli = keyring::retire(&db, 1, cli_record(AuditAction::KeysRetire)).await;
    assert!(matches!(from_cli, Err(RetireError::Storage(_))), "{from_cli:?}");
    assert_eq!(keyring_rows(&app).await, before, "the material is kept");

    // Once its event can be stored, the same retirement goes through, with its event.
    allow_audit_of(&app, "keys.retire").await;
    let retired = app.graphql(Some(&keys_admin), RETIRE, json!({ "v": 1 })).await;
    assert_eq!(retired.data()["retireEncryptionKey"]["state"], "RETIRED");
    assert_eq!(keyring_rows(&app).await[0], (1, "RETIRED".to_owned(), false));
    let events = app.audit(json!({ "action": "keys.retire" })).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "SUCCESS");
    assert!(verify(&app, &[]).await.is_ok());
    db.close().await.unwrap();
}
on_both_engines!(a_retirement_whose_audit_event_cannot_be_written_does_not_happen);

async fn a_rotation_whose_audit_event_cannot_be_written_does_not_happen(engine: Engine) {
    let app = TestApp::builder(engine).seller_with_password("bestshop", "Sup3r-Secret!").spawn().await;
    let root = RootKey::from_base64(&app.options.root_key).unwrap();
    refuse_audit_of(&app, "keys.rotate").await;
    let before = keyring_with(&[(1, "ACTIVE")]);

    let keys_admin = token_for("security-team", "keys:admin", None);
    assert_eq!(app.graphql(Some(&keys_admin), ROTATE, json!({})).await.code(), "INTERNAL_SERVER_ERROR");
    assert_eq!((keyring_rows(&app).await, rotation_jobs(&app).await), (before.clone(), 0), "no version, no job");
    let db = app.keyed_db().await;
    let from_cli = rewrap::start(&db, &root, "cli:test", |_| cli_record(AuditAction::KeysRotate)).await;
    assert!(matches!(from_cli, Err(StartError::Storage(_))), "{from_cli:?}");
    assert!(keyring::rotate(&db, &root, |_| cli_record(AuditAction::KeysRotate)).await.is_err());
    assert_eq!((keyring_rows(&app).await, rotation_jobs(&app).await), (before, 0), "no version, no job");
    let admin = app.token(ALL_SCOPES, &["*"]);
    assert_eq!(app.issue_password(&admin, "bestshop").await.data()["issueApiCredential"]["password"], "Sup3r-Secret!");

    allow_audit_of(&app, "keys.rotate").await;
    let rotated = app.graphql(Some(&keys_admin), ROTATE, json!({})).await;
    assert_eq!(rotated.data()["rotateEncryptionKey"]["toVersion"], 2);
    assert_eq!(app.audit(json!({ "action": "keys.rotate" })).await.len(), 1);
    db.close().await.unwrap();
}
on_both_engines!(a_rotation_whose_audit_event_cannot_be_written_does_not_happen);

async fn a_root_key_rotation_whose_audit_event_cannot_be_written_does_not_happen(engine: Engine) {
    let app = spawn_app(engine).await;
    let old = RootKey::from_base64(&app.options.root_key).unwrap();
    let new = RootKey::from_base64(&RootKey::generate_base64()).unwrap();
    refuse_audit_of(&app, "keys.rotate_root").await;
    let db = app.keyed_db().await;

    let refused = keyring::rotate_root(&db, &old, &new, |_| cli_record(AuditAction::KeysRotateRoot)).await;
    assert!(matches!(refused, Err(RootRotationError::Storage(_))), "{refused:?}");
    // The old root key still opens the keyring and the audit MAC key; the new one opens neither.
    assert!(keyring::load_or_init(&db, &old).await.is_ok());
    assert!(cdvault_storage::audit::existing_key(&db, &old).await.unwrap().is_some());
    assert!(cdvault_storage::audit::existing_key(&db, &new).await.is_err());
    db.close().await.unwrap();
}
on_both_engines!(a_root_key_rotation_whose_audit_event_cannot_be_written_does_not_happen);
