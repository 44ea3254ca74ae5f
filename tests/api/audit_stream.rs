//! The audit stream to a file: its lines equal the audit table row for row (sequence, links, fields), in order,
//! events appended outside the writer (a key rotation) included, with no secret; a restart resumes after the last
//! line without a duplicate.

use std::path::Path;
use std::time::Duration;

use cdvault_tests::{ALL_SCOPES, Engine, TestApp, eventually, on_both_engines, token_for};
use serde_json::{Value, json};

const PASSWORD: &str = "Streamed-Passw0rd!";
const ROTATE: &str = "mutation { rotateEncryptionKey { id toVersion } }";

/// The fields of one event, as the table holds them and as the stream must show them.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    seq: i64,
    hash: String,
    prev_hash: String,
    action: String,
    actor: String,
    outcome: String,
    reason: Option<String>,
    seller: Option<String>,
    request_id: String,
}

async fn table(app: &TestApp) -> Vec<Row> {
    let conn = app.db.raw().await;
    let sql = "SELECT seq, hash, prev_hash, action, subject, outcome, reason, seller_login, request_id \
               FROM audit_events ORDER BY seq";
    let rows = sea_orm::ConnectionTrait::query_all_raw(&conn, app.db.statement(sql, vec![])).await.unwrap();
    let rows = rows
        .into_iter()
        .map(|r| Row {
            seq: r.try_get("", "seq").unwrap(),
            hash: hex::encode(r.try_get::<Vec<u8>>("", "hash").unwrap()),
            prev_hash: hex::encode(r.try_get::<Vec<u8>>("", "prev_hash").unwrap()),
            action: r.try_get("", "action").unwrap(),
            actor: r.try_get("", "subject").unwrap(),
            outcome: r.try_get("", "outcome").unwrap(),
            reason: r.try_get("", "reason").unwrap(),
            seller: r.try_get("", "seller_login").unwrap(),
            request_id: r.try_get("", "request_id").unwrap(),
        })
        .collect();
    conn.close().await.unwrap();
    rows
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// The stream's lines, parsed (every line must parse).
fn lines(path: &Path) -> Vec<Value> {
    let content = std::fs::read_to_string(path).unwrap_or_default();
    content.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn streamed(path: &Path) -> Vec<Row> {
    lines(path)
        .iter()
        .map(|l| Row {
            seq: l["seq"].as_i64().unwrap(),
            hash: text(&l["hash"]).unwrap(),
            prev_hash: text(&l["prev_hash"]).unwrap(),
            action: text(&l["action"]).unwrap(),
            actor: text(&l["actor"]).unwrap(),
            outcome: text(&l["outcome"]).unwrap(),
            reason: text(&l["reason"]),
            seller: text(&l["seller"]),
            request_id: text(&l["request_id"]).unwrap(),
        })
        .collect()
}

async fn caught_up(app: &TestApp, path: &Path) {
    eventually("the stream equals the table", Duration::from_secs(20), || async { streamed(path) == table(app).await })
        .await;
}

/// Register, store, issue, a refused token and a key rotation (its events appended in its own transaction).
async fn walk(app: &TestApp, admin: &str) {
    app.register(admin, "streamshop").await.data();
    app.store_password(admin, "streamshop", PASSWORD).await.data();
    app.issue_password(admin, "streamshop").await.data();
    let refused = app.graphql(Some("not-a-token"), "{ viewer { subject } }", json!({})).await;
    assert_eq!(refused.code(), "UNAUTHENTICATED", "{}", refused.body);
    let keys_admin = token_for("security-team", "keys:admin", None);
    app.graphql(Some(&keys_admin), ROTATE, json!({})).await.data();
}

async fn the_streamed_file_equals_the_audit_table_and_a_restart_resumes_without_duplicates(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit-stream.jsonl");
    let app = TestApp::builder(engine).audit_stream_file(&path).spawn().await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    walk(&app, &admin).await;
    caught_up(&app, &path).await;
    let actions: Vec<String> = table(&app).await.into_iter().map(|r| r.action).collect();
    for action in ["seller.register", "credential.store", "credential.issue", "authenticate", "keys.rotate"] {
        assert!(actions.iter().any(|a| a == action), "no {action} in {actions:?}");
    }
    assert!(actions.len() >= 5, "{actions:?}");

    // Stopped and started again: the stream goes on after its last line.
    let app = app.stop().await.spawn().await;
    app.issue_password(&admin, "streamshop").await.data();
    caught_up(&app, &path).await;
    let app = app.stop().await.spawn().await;
    caught_up(&app, &path).await;

    let rows = streamed(&path);
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=rows.len() as i64).collect::<Vec<_>>(), "in order, no gap, no duplicate");
    for pair in rows.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "each line links to the one before");
    }
    let content = std::fs::read_to_string(&path).unwrap();
    for secret in [PASSWORD, admin.as_str(), "not-a-token"] {
        assert!(!content.contains(secret), "a secret in the stream");
    }
    let first = &lines(&path)[0];
    for field in ["timestamp", "event_id", "issuer", "details", "replica", "caller_request_id", "purpose"] {
        assert!(first.get(field).is_some(), "{field} missing from {first}");
    }
    time::OffsetDateTime::parse(first["timestamp"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
        .unwrap();
}
on_both_engines!(the_streamed_file_equals_the_audit_table_and_a_restart_resumes_without_duplicates);
