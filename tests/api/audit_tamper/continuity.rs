//! A chain begun before audit record v2 keeps verifying once the server runs the v2 migration on it: the first keyed
//! event links to the last unkeyed one, and no unkeyed event may follow it.

use cdvault_domain::audit::link_v1;
use cdvault_domain::audit::{AuditAction, AuditRecord, ChainBreak, ChainedEvent, GENESIS_HASH, Outcome, RecordVersion};
use cdvault_tests::{ALL_SCOPES, Engine, TestApp, TestDb, on_both_engines};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::{chain_break, events, move_head, plant, verify};

/// The migration that brought audit record v2, as sea-orm-migration records it.
const AUDIT_V2_MIGRATION: &str = "m20261127_000006_audit_v2";

/// A database at the schema before audit record v2: migrated to the end, then that migration undone by hand (its
/// `down`, written out: the tests do not link the migrator).
async fn database_before_audit_v2(engine: Engine) -> TestDb {
    let db = TestDb::create(engine).await;
    let storage = cdvault_storage::Database::connect(&db.url).await.unwrap();
    storage.migrate().await.unwrap();
    storage.close().await.unwrap();
    let conn = db.raw().await;
    for column in ["caller_request_id", "issuer", "record_version"] {
        conn.execute_unprepared(&format!("ALTER TABLE audit_events DROP COLUMN {column}")).await.unwrap();
    }
    conn.execute_unprepared("DROP TABLE audit_keys").await.unwrap();
    let forget = "DELETE FROM seaql_migrations WHERE version = ?";
    conn.execute_raw(db.statement(forget, vec![AUDIT_V2_MIGRATION.into()])).await.unwrap();
    conn.close().await.unwrap();
    db
}

/// Three v1 events, linked with SHA-256 as the vault linked them before v2, stored with the columns v1 had.
async fn write_v1_events(db: &TestDb) -> Vec<ChainedEvent> {
    let records = [
        AuditRecord::new("legacy-tool", AuditAction::SellerRegister, Outcome::Success, "req-1").seller("old-shop"),
        AuditRecord::new("legacy-tool", AuditAction::CredentialStore, Outcome::Success, "req-2").seller("old-shop"),
        AuditRecord::new("legacy-tool", AuditAction::CredentialIssue, Outcome::Success, "req-3")
            .seller("old-shop")
            .purpose("nightly order sync"),
    ];
    let conn = db.raw().await;
    let mut prev = GENESIS_HASH;
    let mut chain = Vec::new();
    for (seq, mut record) in (1i64..).zip(records) {
        // v1 details were free text.
        record.detail = Some("kind=MARKETPLACE_API version=1".into());
        let event = link_v1(seq, record, prev);
        prev = event.hash;
        let r = &event.record;
        let sql = "INSERT INTO audit_events (seq, id, occurred_at, subject, action, seller_login, purpose, outcome, \
                   reason, detail, request_id, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        let values = vec![
            seq.into(),
            r.id.into(),
            r.occurred_at.into(),
            r.subject.clone().into(),
            r.action.as_str().into(),
            r.seller_login.clone().into(),
            r.purpose.clone().into(),
            r.outcome.as_str().into(),
            Option::<String>::None.into(),
            r.detail.clone().into(),
            r.request_id.clone().into(),
            event.prev_hash.to_vec().into(),
            event.hash.to_vec().into(),
        ];
        conn.execute_raw(db.statement(sql, values)).await.unwrap();
        chain.push(event);
    }
    let head = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1";
    conn.execute_raw(db.statement(head, vec![3i64.into(), prev.to_vec().into()])).await.unwrap();
    conn.close().await.unwrap();
    chain
}

async fn a_chain_begun_before_audit_v2_still_verifies_and_the_keyed_chain_links_to_it(engine: Engine) {
    let db = database_before_audit_v2(engine).await;
    let v1 = write_v1_events(&db).await;
    let app = TestApp::builder_on(db).spawn().await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.seller_with_password("new-shop", "New-Passw0rd!").await;
    app.issue_password(&admin, "new-shop").await.data();

    assert_eq!(verify(&app, &[]).await.unwrap().checked, 6);
    let key = app.keyed_db().await.audit_key().unwrap().clone();
    assert_eq!(key.v2_from(), 4, "the first event after the v1 head is the first keyed one");
    let chain = events(&app).await;
    assert_eq!(chain[..3], v1[..], "the v1 events read back as written");
    let versions: Vec<RecordVersion> = chain.iter().map(|e| e.version).collect();
    use RecordVersion::{V1, V2};
    assert_eq!(versions, [V1, V1, V1, V2, V2, V2]);
    assert_eq!(chain[3].prev_hash, chain[2].hash, "the first v2 link covers the last v1 event");

    let listed = app.audit(json!({})).await;
    let versions: Vec<i64> = listed.iter().map(|e| e["recordVersion"].as_i64().unwrap()).collect();
    assert_eq!(versions, [2, 2, 2, 1, 1, 1]);
    let oldest = &listed[5];
    assert_eq!((oldest["detail"].as_str(), &oldest["details"]), (Some("kind=MARKETPLACE_API version=1"), &json!(null)));

    // No v1 event may follow the first v2 one: one appended now is a downgrade, whatever its SHA-256 link.
    let mut record = chain[5].record.clone();
    record.id = uuid::Uuid::now_v7();
    let appended = link_v1(7, record, chain[5].hash);
    plant(&app, &appended).await;
    move_head(&app, 7, appended.hash).await;
    assert_eq!(chain_break(verify(&app, &[]).await), ChainBreak::Downgraded { seq: 7, v2_from: 4 });
}
on_both_engines!(a_chain_begun_before_audit_v2_still_verifies_and_the_keyed_chain_links_to_it);
