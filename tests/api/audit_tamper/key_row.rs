//! The stored audit MAC key attacked: `v2_from` moved (so that keyed rows could pass as unkeyed ones), the row
//! deleted, and the whole chain rewritten as v1 with the key row deleted, which only a checkpoint catches.

use cdvault_domain::audit::{ChainBreak, link_v1};
use cdvault_domain::crypto::RootKey;
use cdvault_storage::Database;
use cdvault_storage::audit::{existing_key, open_key};
use cdvault_tests::{Engine, on_both_engines};
use sea_orm::ConnectionTrait;

use super::{app_with_seven_audit_events, chain_break, checkpoint_now, events, move_head, overwrite};

async fn plain_db(url: &str) -> Database {
    Database::connect(url).await.unwrap()
}

async fn an_edited_v2_from_no_longer_opens_the_audit_key(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    let root = RootKey::from_base64(&app.options.root_key).unwrap();
    // Moved past every event, every keyed row would have to be v1: the downgrade it would allow.
    let edit = "UPDATE audit_keys SET v2_from = ? WHERE id = 1";
    app.db.raw().await.execute_raw(app.db.statement(edit, vec![8i64.into()])).await.unwrap();

    let db = plain_db(&app.db.url).await;
    assert!(existing_key(&db, &root).await.is_err(), "what `audit verify` opens: an error, never a verified chain");
    assert!(open_key(&db, &root).await.is_err(), "what a starting server opens");
    db.close().await.unwrap();
    let restarted = app.stop().await.try_spawn().await;
    let refused = format!("{:#}", restarted.err().expect("the server refuses to start"));
    assert!(refused.contains("audit MAC key"), "{refused}");
}
on_both_engines!(an_edited_v2_from_no_longer_opens_the_audit_key);

async fn a_deleted_audit_key_row_is_a_missing_key_and_a_new_key_does_not_vouch_for_the_old_events(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    let root = RootKey::from_base64(&app.options.root_key).unwrap();
    app.db.raw().await.execute_unprepared("DELETE FROM audit_keys").await.unwrap();

    let db = plain_db(&app.db.url).await;
    assert!(existing_key(&db, &root).await.unwrap().is_none(), "`audit verify` reports the key missing");
    // A server started now refuses to make a new key: it would vouch for nothing before it.
    let refused = open_key(&db, &root).await.unwrap_err();
    assert!(matches!(refused, cdvault_storage::StorageError::AuditKeyDeleted), "{refused}");
}
on_both_engines!(a_deleted_audit_key_row_is_a_missing_key_and_a_new_key_does_not_vouch_for_the_old_events);

async fn the_whole_chain_rewritten_as_v1_with_the_key_row_deleted_is_caught_only_by_a_checkpoint(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    let before = checkpoint_now(&app).await;
    let root = RootKey::from_base64(&app.options.root_key).unwrap();
    // Every event rewritten as an unkeyed v1 event, one edited, the key row deleted: the database now looks like
    // one whose chain began before audit record v2.
    let mut prev = cdvault_domain::audit::GENESIS_HASH;
    for mut event in events(&app).await {
        if event.seq == 4 {
            event.record.subject = "someone-else".into();
        }
        // v1 events never had these: a forger who knows the encoding clears them.
        event.record.issuer = None;
        event.record.caller_request_id = None;
        let forged = link_v1(event.seq, event.record, prev);
        prev = forged.hash;
        overwrite(&app, &forged).await;
    }
    move_head(&app, 7, prev).await;
    app.db.raw().await.execute_unprepared("DELETE FROM audit_keys").await.unwrap();

    // The next server start makes a new key for the events after the head, and the forged chain verifies...
    let db = plain_db(&app.db.url).await;
    let key = open_key(&db, &root).await.unwrap();
    let db = db.with_audit_key(key);
    assert_eq!(cdvault_storage::audit::verify(&db, &[]).await.unwrap().checked, 7);
    // ...except against a checkpoint signed with the key that was deleted.
    let verified = cdvault_storage::audit::verify(&db, &[before]).await;
    assert_eq!(chain_break(verified), ChainBreak::ForgedCheckpoint { seq: 7, replica: "replica-a".into() });
}
on_both_engines!(the_whole_chain_rewritten_as_v1_with_the_key_row_deleted_is_caught_only_by_a_checkpoint);
