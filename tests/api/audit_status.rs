//! `auditChainStatus` and the checkpoints behind it: a healthy chain is `INTACT` through the head; an edited row,
//! a deleted tail with the head moved back, a row inserted past the head and a chain recomputed without the key
//! each turn it `BROKEN`, naming the sequence number. Checkpoints and verification rounds are forced through the
//! vault instead of waited for (only the start-up checkpoint, written by a background task, is waited on).

use std::time::Duration;

use cdvault_api::service::ChainState;
use cdvault_domain::audit::{AuditKey, ChainedEvent, Checkpoint};
use cdvault_domain::policy::SellerReach;
use cdvault_storage::audit::{AuditFilter, list, verify};
use cdvault_tests::{ALL_SCOPES, Engine, TestApp, eventually, on_both_engines};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

const CHAIN_STATUS: &str = "{ auditChainStatus { state verifiedThroughSeq checkedAt problem lastCheckpointSeq \
                            lastCheckpointAt checkpointSinkError } }";

/// A server whose checkpoints go to a file of the test's own, with seven audit events (two sellers registered
/// with a password each, three issues), numbered 1 to 7.
struct Evidence {
    app: TestApp,
    file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn seven_events_with_a_checkpoint_file(engine: Engine) -> Evidence {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit-checkpoints.jsonl");
    let app = TestApp::builder(engine)
        .checkpoint_file(&file)
        .seller_with_password("shop-a", "Passw0rd-A!")
        .seller_with_password("shop-b", "Passw0rd-B!")
        .spawn()
        .await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    for _ in 0..3 {
        app.issue_password(&admin, "shop-a").await.data();
    }
    Evidence { app, file, _dir: dir }
}

impl Evidence {
    /// `auditChainStatus`, read with an `audit:read` token.
    async fn status(&self) -> Value {
        let token = self.app.token("audit:read", &["*"]);
        self.app.graphql(Some(&token), CHAIN_STATUS, json!({})).await.data()["auditChainStatus"].clone()
    }

    /// Runs a full verification round now and answers `auditChainStatus`.
    async fn verified_status(&self) -> Value {
        self.app.vault().verify_audit_chain_now(true).await;
        self.status().await
    }

    fn checkpoints_in_file(&self) -> Vec<Checkpoint> {
        let text = std::fs::read_to_string(&self.file).unwrap_or_default();
        text.lines().map(|line| Checkpoint::parse_line(line).unwrap()).collect()
    }

    async fn execute(&self, sql: &str, values: Vec<sea_orm::Value>) {
        self.app.db.raw().await.execute_raw(self.app.db.statement(sql, values)).await.unwrap();
    }

    /// The event at `seq`, as stored.
    async fn event(&self, seq: i64) -> ChainedEvent {
        let filter = AuditFilter { seller_login: None, subject: None, action: None, reach: SellerReach::All };
        let events = list(&self.app.keyed_db().await, &filter, Some(seq + 1), 1).await.unwrap();
        events.into_iter().next().unwrap()
    }
}

fn assert_broken_naming(status: &Value, seq: &str) {
    assert_eq!(status["state"], "BROKEN", "{status}");
    let problem = status["problem"].as_str().unwrap_or_default();
    assert!(problem.contains(seq), "the problem should name {seq}: {status}");
}

async fn a_healthy_chain_is_intact_through_the_head_and_each_checkpoint_is_one_valid_line(engine: Engine) {
    let evidence = seven_events_with_a_checkpoint_file(engine).await;
    let vault = evidence.app.vault();
    // The start-up checkpoint is written by a background task: counted once it is there.
    eventually("the start-up checkpoint is written", Duration::from_secs(10), || async {
        !evidence.checkpoints_in_file().is_empty()
    })
    .await;
    let before = evidence.checkpoints_in_file().len();
    let first = vault.emit_checkpoint().await.unwrap();
    let second = vault.emit_checkpoint().await.unwrap();
    assert_eq!((first.seq, second.seq), (7, 7));

    let status = evidence.verified_status().await;
    assert_eq!(status["state"], "INTACT", "{status}");
    assert_eq!(status["verifiedThroughSeq"], 7);
    assert!(status["checkedAt"].is_string() && status["lastCheckpointAt"].is_string(), "{status}");
    assert_eq!(status["lastCheckpointSeq"], 7);
    assert_eq!(status["problem"], Value::Null);
    assert_eq!(status["checkpointSinkError"], Value::Null);

    let written = evidence.checkpoints_in_file();
    assert_eq!(written.len(), before + 2, "one line per emission");
    assert_eq!(written[before..], [first, second]);
    let db = evidence.app.keyed_db().await;
    assert!(written.iter().all(|c| db.audit_key().unwrap().is_authentic(c) && c.replica == "test-replica"));
    let verified = verify(&db, &written).await.unwrap();
    assert_eq!((verified.head.0, verified.checkpoints), (7, written.len()));
}
on_both_engines!(a_healthy_chain_is_intact_through_the_head_and_each_checkpoint_is_one_valid_line);

async fn an_edited_row_turns_the_chain_broken_until_a_full_walk_passes_again(engine: Engine) {
    let evidence = seven_events_with_a_checkpoint_file(engine).await;
    assert_eq!(evidence.verified_status().await["state"], "INTACT");
    let original = evidence.event(5).await.record.purpose;
    let edit = "UPDATE audit_events SET purpose = ? WHERE seq = ?";
    evidence.execute(edit, vec!["innocent".into(), 5i64.into()]).await;
    assert_broken_naming(&evidence.verified_status().await, "seq 5");

    // The operator restores the row: incremental rounds keep it broken, the next full walk clears it.
    evidence.execute(edit, vec![original.into(), 5i64.into()]).await;
    assert_eq!(evidence.app.vault().verify_audit_chain_now(false).await.state, ChainState::Broken);
    assert_eq!(evidence.verified_status().await["state"], "INTACT");
}
on_both_engines!(an_edited_row_turns_the_chain_broken_until_a_full_walk_passes_again);

async fn a_deleted_tail_with_the_head_moved_back_is_caught_by_the_checkpoint_the_head_cannot(engine: Engine) {
    let evidence = seven_events_with_a_checkpoint_file(engine).await;
    let vault = evidence.app.vault();
    assert_eq!(vault.emit_checkpoint().await.unwrap().seq, 7);
    // The verifier's position is now seq 7: the next incremental round starts there.
    assert_eq!(vault.verify_audit_chain_now(false).await.state, ChainState::Intact);

    let kept = evidence.event(5).await;
    evidence.execute("DELETE FROM audit_events WHERE seq > ?", vec![5i64.into()]).await;
    evidence
        .execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", vec![5i64.into(), kept.hash.to_vec().into()])
        .await;

    let db = evidence.app.keyed_db().await;
    assert_eq!(verify(&db, &[]).await.unwrap().head.0, 5, "the head alone cannot see the deleted tail");
    let broken = verify(&db, &evidence.checkpoints_in_file()).await.unwrap_err().to_string();
    assert!(broken.contains("seq 7") && broken.contains("tail was deleted"), "{broken}");

    let incremental = vault.verify_audit_chain_now(false).await;
    assert_eq!(incremental.state, ChainState::Broken, "{incremental:?}");
    assert_broken_naming(&evidence.verified_status().await, "seq 7");
}
on_both_engines!(a_deleted_tail_with_the_head_moved_back_is_caught_by_the_checkpoint_the_head_cannot);

async fn a_row_inserted_past_the_head_turns_the_chain_broken(engine: Engine) {
    let evidence = seven_events_with_a_checkpoint_file(engine).await;
    let copy = "INSERT INTO audit_events (seq, id, occurred_at, issuer, subject, action, seller_login, purpose, \
                outcome, reason, detail, request_id, caller_request_id, record_version, prev_hash, hash) \
                SELECT ?, ?, occurred_at, issuer, subject, action, seller_login, purpose, outcome, reason, detail, \
                request_id, caller_request_id, record_version, prev_hash, hash FROM audit_events WHERE seq = ?";
    evidence.execute(copy, vec![8i64.into(), uuid::Uuid::now_v7().into(), 7i64.into()]).await;
    let status = evidence.verified_status().await;
    assert_broken_naming(&status, "seq 7");
    assert!(status["problem"].as_str().unwrap().contains("past the chain head"), "{status}");
}
on_both_engines!(a_row_inserted_past_the_head_turns_the_chain_broken);

async fn a_chain_recomputed_without_the_key_turns_the_chain_broken(engine: Engine) {
    let evidence = seven_events_with_a_checkpoint_file(engine).await;
    let db = evidence.app.keyed_db().await;
    let v2_from = db.audit_key().unwrap().v2_from();
    let event = evidence.event(7).await;
    assert!(event.seq >= v2_from, "seq 7 is a keyed (v2) event");
    // The forger edits the newest event and links it again with a key of their own, head included.
    let mut record = event.record.clone();
    record.purpose = Some("innocent".to_owned());
    let forged = AuditKey::from_bytes([9; 32], v2_from).link(7, record, event.prev_hash);
    let edit = "UPDATE audit_events SET purpose = ?, hash = ? WHERE seq = ?";
    evidence.execute(edit, vec!["innocent".into(), forged.hash.to_vec().into(), 7i64.into()]).await;
    evidence.execute("UPDATE audit_head SET hash = ? WHERE id = 1", vec![forged.hash.to_vec().into()]).await;
    assert_broken_naming(&evidence.verified_status().await, "seq 7");
}
on_both_engines!(a_chain_recomputed_without_the_key_turns_the_chain_broken);

async fn the_chain_status_needs_audit_read(engine: Engine) {
    let evidence = seven_events_with_a_checkpoint_file(engine).await;
    let token = evidence.app.token("credentials:read credentials:write", &["*"]);
    let answer = evidence.app.graphql(Some(&token), CHAIN_STATUS, json!({})).await;
    assert_eq!(answer.code(), "FORBIDDEN");
    let denials = evidence.app.audit(json!({ "action": "audit.read" })).await;
    assert_eq!(denials[0]["outcome"], "DENIED", "the refusal is audited");
}
on_both_engines!(the_chain_status_needs_audit_read);

async fn a_graceful_shutdown_writes_a_last_checkpoint_covering_the_last_event(engine: Engine) {
    let Evidence { app, file, _dir } = seven_events_with_a_checkpoint_file(engine).await;
    let admin = app.token(ALL_SCOPES, &["*"]);
    app.issue_password(&admin, "shop-a").await.data();
    drop(app.stop().await);
    let text = std::fs::read_to_string(&file).unwrap();
    let last = Checkpoint::parse_line(text.lines().last().unwrap()).unwrap();
    assert_eq!(last.seq, 8, "the shutdown checkpoint covers the issue made just before");
}
on_both_engines!(a_graceful_shutdown_writes_a_last_checkpoint_covering_the_last_event);
