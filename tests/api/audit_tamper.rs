//! The audit trail attacked as a database writer without the root key would attack it (a restored and edited
//! backup, an administrator covering tracks), and what catches each attack: `verify` with checkpoints kept outside
//! the database, the wrapped audit MAC key, and key acts that commit with their audit event or not at all.

mod chain;
mod continuity;
mod fields;
mod key_acts;
mod key_row;

use cdvault_domain::audit::{ChainBreak, ChainedEvent, Checkpoint};
use cdvault_domain::policy::SellerReach;
use cdvault_storage::StorageError;
use cdvault_storage::audit::{AuditFilter, Verified};
use cdvault_tests::TestApp;
use sea_orm::ConnectionTrait;

use cdvault_tests::audit::app_with_seven_audit_events;

/// A checkpoint of the head as it is now, signed with the app's audit MAC key by `replica-a` (what a replica ships
/// off the host).
async fn checkpoint_now(app: &TestApp) -> Checkpoint {
    let db = app.keyed_db().await;
    let key = db.audit_key().unwrap().clone();
    let (seq, link) = cdvault_storage::audit::head(&db).await.unwrap();
    db.close().await.unwrap();
    key.checkpoint(seq, link, time::OffsetDateTime::now_utc(), "replica-a")
}

/// `verify` over the whole chain with `checkpoints`, as `cdvault audit verify` runs it.
async fn verify(app: &TestApp, checkpoints: &[Checkpoint]) -> Result<Verified, StorageError> {
    let db = app.keyed_db().await;
    let verified = cdvault_storage::audit::verify(&db, checkpoints).await;
    db.close().await.unwrap();
    verified
}

/// The problem a failed verification names.
fn chain_break(verified: Result<Verified, StorageError>) -> ChainBreak {
    match verified {
        Err(StorageError::ChainBroken(problem)) => problem,
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

/// Every event up to the head, oldest first, as stored.
async fn events(app: &TestApp) -> Vec<ChainedEvent> {
    let db = app.keyed_db().await;
    let all = AuditFilter { seller_login: None, subject: None, action: None, reach: SellerReach::All };
    let mut events = cdvault_storage::audit::list(&db, &all, None, 1000).await.unwrap();
    db.close().await.unwrap();
    events.reverse();
    events
}

/// Overwrites the stored row of `event.seq` with `event`: its content, version and links.
async fn overwrite(app: &TestApp, event: &ChainedEvent) {
    let r = &event.record;
    let sql = "UPDATE audit_events SET issuer = ?, subject = ?, purpose = ?, detail = ?, caller_request_id = ?, \
               record_version = ?, prev_hash = ?, hash = ? WHERE seq = ?";
    let values = vec![
        r.issuer.clone().into(),
        r.subject.clone().into(),
        r.purpose.clone().into(),
        r.detail.clone().into(),
        r.caller_request_id.clone().into(),
        event.version.number().into(),
        event.prev_hash.to_vec().into(),
        event.hash.to_vec().into(),
        event.seq.into(),
    ];
    app.db.raw().await.execute_raw(app.db.statement(sql, values)).await.unwrap();
}

/// Inserts `event` as a row of its own (for rows the vault never wrote).
async fn plant(app: &TestApp, event: &ChainedEvent) {
    let r = &event.record;
    let sql = "INSERT INTO audit_events (seq, id, occurred_at, issuer, subject, action, seller_login, purpose, \
               outcome, reason, detail, request_id, caller_request_id, record_version, prev_hash, hash) \
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let values = vec![
        event.seq.into(),
        r.id.into(),
        r.occurred_at.into(),
        r.issuer.clone().into(),
        r.subject.clone().into(),
        r.action.as_str().into(),
        r.seller_login.clone().into(),
        r.purpose.clone().into(),
        r.outcome.as_str().into(),
        r.reason.map(|reason| reason.as_str().to_owned()).into(),
        r.detail.clone().into(),
        r.request_id.clone().into(),
        r.caller_request_id.clone().into(),
        event.version.number().into(),
        event.prev_hash.to_vec().into(),
        event.hash.to_vec().into(),
    ];
    app.db.raw().await.execute_raw(app.db.statement(sql, values)).await.unwrap();
}

/// Moves the chain head, as an attacker who deleted or added rows does.
async fn move_head(app: &TestApp, seq: i64, link: [u8; 32]) {
    let sql = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1";
    app.db.raw().await.execute_raw(app.db.statement(sql, vec![seq.into(), link.to_vec().into()])).await.unwrap();
}
