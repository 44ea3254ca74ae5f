//! Rows edited, recomputed, downgraded, deleted and inserted behind the vault's back: each is caught by `verify`
//! with a checkpoint taken before, and named (the problem and the sequence number).

use cdvault_domain::audit::{AuditKey, ChainBreak, ChainedEvent, Checkpoint, link_v1};
use cdvault_tests::{Engine, on_both_engines};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::{app_with_seven_audit_events, chain_break, checkpoint_now, events, move_head, overwrite, plant, verify};

/// The events from `from` on relinked by `link` after the link of the event before them: a chain made consistent
/// again by someone who edited it.
fn relinked(
    events: &[ChainedEvent],
    from: i64,
    link: impl Fn(i64, cdvault_domain::audit::AuditRecord, [u8; 32]) -> ChainedEvent,
) -> Vec<ChainedEvent> {
    let start = usize::try_from(from - 1).unwrap();
    let mut prev = events[start - 1].hash;
    let mut out = Vec::new();
    for event in &events[start..] {
        let again = link(event.seq, event.record.clone(), prev);
        prev = again.hash;
        out.push(again);
    }
    out
}

async fn an_edited_v2_row_is_named_by_its_sequence_number(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    let before = checkpoint_now(&app).await;
    assert_eq!(verify(&app, std::slice::from_ref(&before)).await.unwrap().checked, 7);

    let edit = "UPDATE audit_events SET purpose = ? WHERE seq = ?";
    app.db.raw().await.execute_raw(app.db.statement(edit, vec!["innocent".into(), 5i64.into()])).await.unwrap();
    assert_eq!(chain_break(verify(&app, &[before]).await), ChainBreak::HashMismatch { seq: 5 });
}
on_both_engines!(an_edited_v2_row_is_named_by_its_sequence_number);

async fn a_chain_recomputed_without_the_key_is_caught_at_the_first_edited_row(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    let before = checkpoint_now(&app).await;
    let original = events(&app).await;
    let v2_from = app.keyed_db().await.audit_key().unwrap().v2_from();
    let mut edited = original.clone();
    edited[3].record.subject = "someone-else".into();

    let sha256_as_v2 = |seq, record, prev| {
        let mut event = link_v1(seq, record, prev);
        event.version = cdvault_domain::audit::RecordVersion::V2;
        event
    };
    let other_key = AuditKey::from_bytes([7; 32], v2_from);
    let forgeries: [(&str, Vec<ChainedEvent>, ChainBreak); 3] = [
        ("SHA-256 links kept as v2", relinked(&edited, 4, sha256_as_v2), ChainBreak::HashMismatch { seq: 4 }),
        (
            "another MAC key",
            relinked(&edited, 4, |s, r, p| other_key.link(s, r, p)),
            ChainBreak::HashMismatch { seq: 4 },
        ),
        ("SHA-256 links declared v1", relinked(&edited, 4, link_v1), ChainBreak::Downgraded { seq: 4, v2_from }),
    ];
    for (how, forged, caught) in forgeries {
        for event in &forged {
            overwrite(&app, event).await;
        }
        let last = forged.last().unwrap();
        move_head(&app, last.seq, last.hash).await;
        assert_eq!(chain_break(verify(&app, std::slice::from_ref(&before)).await), caught, "{how}");

        // Put back as the vault wrote it: the chain verifies again, so the forgery alone was caught.
        for event in &original[3..] {
            overwrite(&app, event).await;
        }
        move_head(&app, before.seq, before.head).await;
        assert_eq!(verify(&app, std::slice::from_ref(&before)).await.unwrap().checked, 7, "{how}");
    }
}
on_both_engines!(a_chain_recomputed_without_the_key_is_caught_at_the_first_edited_row);

async fn a_v2_tail_rewritten_as_v1_is_a_downgrade(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    let before = checkpoint_now(&app).await;
    let v2_from = app.keyed_db().await.audit_key().unwrap().v2_from();
    // Unedited even: only the encoding changes, to one anybody can recompute.
    let downgraded = relinked(&events(&app).await, 5, link_v1);
    for event in &downgraded {
        overwrite(&app, event).await;
    }
    move_head(&app, 7, downgraded[2].hash).await;
    assert_eq!(chain_break(verify(&app, &[before]).await), ChainBreak::Downgraded { seq: 5, v2_from });
}
on_both_engines!(a_v2_tail_rewritten_as_v1_is_a_downgrade);

async fn a_deleted_tail_with_the_head_moved_back_is_caught_only_by_a_checkpoint_taken_before(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    let before = checkpoint_now(&app).await;
    let kept = events(&app).await[4].clone();
    let delete = "DELETE FROM audit_events WHERE seq > ?";
    app.db.raw().await.execute_raw(app.db.statement(delete, vec![5i64.into()])).await.unwrap();
    move_head(&app, kept.seq, kept.hash).await;

    // The chain that is left is whole: nothing in the database says events are missing.
    assert_eq!(verify(&app, &[]).await.unwrap().checked, 5);
    let caught = ChainBreak::Truncated { checkpoint_seq: 7, last_seq: 5, replica: "replica-a".into() };
    assert_eq!(chain_break(verify(&app, &[before]).await), caught);
}
on_both_engines!(a_deleted_tail_with_the_head_moved_back_is_caught_only_by_a_checkpoint_taken_before);

async fn an_event_inserted_in_the_middle_is_caught_where_it_was_inserted(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    let before = checkpoint_now(&app).await;
    let original = events(&app).await;
    // Make room at seq 4 (one row at a time, from the end: the sequence number is the primary key).
    for seq in (4..=7i64).rev() {
        let shift = "UPDATE audit_events SET seq = ? WHERE seq = ?";
        app.db.raw().await.execute_raw(app.db.statement(shift, vec![(seq + 1).into(), seq.into()])).await.unwrap();
    }
    let mut record = original[2].record.clone();
    record.id = uuid::Uuid::now_v7();
    record.subject = "alibi".into();
    let inserted =
        ChainedEvent { seq: 4, record, prev_hash: original[2].hash, hash: [0xAA; 32], ..original[2].clone() };
    plant(&app, &inserted).await;
    move_head(&app, 8, original[6].hash).await;

    assert_eq!(chain_break(verify(&app, std::slice::from_ref(&before)).await), ChainBreak::HashMismatch { seq: 4 });
}
on_both_engines!(an_event_inserted_in_the_middle_is_caught_where_it_was_inserted);

async fn an_event_inserted_past_the_head_is_reported_and_never_listed(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    let before = checkpoint_now(&app).await;
    let last = events(&app).await[6].clone();
    let mut record = last.record.clone();
    record.id = uuid::Uuid::now_v7();
    plant(&app, &ChainedEvent { seq: 8, record, prev_hash: last.hash, hash: [0xBB; 32], ..last }).await;

    assert_eq!(chain_break(verify(&app, &[before]).await), ChainBreak::PastHead { head_seq: 7, count: 1 });
    let listed: Vec<i64> = app.audit(json!({})).await.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(listed, [7, 6, 5, 4, 3, 2, 1], "a row past the head is not the vault's: it is not listed");
}
on_both_engines!(an_event_inserted_past_the_head_is_reported_and_never_listed);

async fn a_forged_checkpoint_line_is_refused_as_forged(engine: Engine) {
    let app = app_with_seven_audit_events(engine).await;
    let line = checkpoint_now(&app).await.to_line();
    let genuine = Checkpoint::parse_line(&line).unwrap();
    assert_eq!(verify(&app, std::slice::from_ref(&genuine)).await.unwrap().checkpoints, 1);

    let edited = |field: &str, value: serde_json::Value| {
        let mut json: serde_json::Value = serde_json::from_str(&line).unwrap();
        json[field] = value;
        Checkpoint::parse_line(&format!("2026-11-27T10:00:00Z cdvault: {json}")).unwrap()
    };
    let key = app.keyed_db().await.audit_key().unwrap().clone();
    let other_key = AuditKey::from_bytes([9; 32], key.v2_from());
    let forgeries = [
        ("a smaller seq", edited("seq", json!(5)), 5, "replica-a"),
        ("another replica", edited("replica", json!("replica-b")), 7, "replica-b"),
        ("another head", edited("head", json!(hex::encode([1u8; 32]))), 7, "replica-a"),
        ("another key", other_key.checkpoint(7, genuine.head, genuine.at, "replica-a"), 7, "replica-a"),
    ];
    for (how, forged, seq, replica) in forgeries {
        let caught = ChainBreak::ForgedCheckpoint { seq, replica: replica.into() };
        assert_eq!(chain_break(verify(&app, &[genuine.clone(), forged]).await), caught, "{how}");
    }
}
on_both_engines!(a_forged_checkpoint_line_is_refused_as_forged);
