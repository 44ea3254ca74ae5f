use super::*;

fn key(v2_from: i64) -> AuditKey {
    AuditKey::from_bytes([7; 32], v2_from)
}

fn record(n: i64) -> AuditRecord {
    AuditRecord::new("tool", AuditAction::CredentialIssue, Outcome::Success, &format!("req-{n}"))
        .issuer("https://issuer.test")
        .details(serde_json::json!({ "kind": "MARKETPLACE_API", "version": n }))
}

/// `v1` events with SHA-256, then v2 events under `key` up to `n`.
fn chain(key: &AuditKey, n: i64) -> Vec<ChainedEvent> {
    let mut prev = GENESIS_HASH;
    (1..=n)
        .map(|seq| {
            // v1 events were stored before issuers were recorded.
            let e = if seq < key.v2_from() {
                link_v1(seq, AuditRecord { issuer: None, ..record(seq) }, prev)
            } else {
                key.link(seq, record(seq), prev)
            };
            prev = e.hash;
            e
        })
        .collect()
}

fn verify(key: &AuditKey, events: &[ChainedEvent]) -> Result<u64, ChainBreak> {
    let mut v = ChainVerifier::new(key.clone());
    for e in events {
        v.check(e)?;
    }
    let last = events.last().map_or((0, GENESIS_HASH), |e| (e.seq, e.hash));
    v.finish(last.0, last.1)
}

#[test]
fn a_keyed_chain_verifies() {
    let k = key(1);
    assert_eq!(verify(&k, &chain(&k, 5)), Ok(5));
}

#[test]
fn a_chain_begun_in_v1_verifies_and_its_first_v2_event_links_the_last_v1_event() {
    let k = key(4);
    let events = chain(&k, 6);
    assert_eq!(events[2].version, RecordVersion::V1);
    assert_eq!(events[3].version, RecordVersion::V2);
    assert_eq!(events[3].prev_hash, events[2].hash);
    assert_eq!(verify(&k, &events), Ok(6));
}

#[test]
fn an_edited_event_is_named() {
    let k = key(1);
    let mut events = chain(&k, 5);
    events[2].record.purpose = Some("edited".into());
    assert_eq!(verify(&k, &events), Err(ChainBreak::HashMismatch { seq: 3 }));
}

#[test]
fn every_v2_field_is_covered_by_the_mac() {
    let k = key(1);
    let edits: Vec<fn(&mut AuditRecord)> = vec![
        |r| r.issuer = None,
        |r| r.subject.push('x'),
        |r| r.caller_request_id = Some("theirs".into()),
        |r| r.request_id.push('x'),
        |r| r.detail = Some("{}".into()),
        |r| r.outcome = Outcome::Denied,
        |r| r.occurred_at += time::Duration::microseconds(1),
    ];
    for edit in edits {
        let mut events = chain(&k, 2);
        edit(&mut events[1].record);
        assert_eq!(verify(&k, &events), Err(ChainBreak::HashMismatch { seq: 2 }));
    }
}

#[test]
fn a_chain_recomputed_without_the_key_is_caught() {
    let k = key(1);
    let mut events = chain(&k, 4);
    events[1].record.subject = "mallory".into();
    let forger = AuditKey::from_bytes([8; 32], 1);
    let mut prev = events[0].hash;
    for e in events.iter_mut().skip(1) {
        *e = forger.link(e.seq, e.record.clone(), prev);
        prev = e.hash;
    }
    assert_eq!(verify(&k, &events), Err(ChainBreak::HashMismatch { seq: 2 }));
}

#[test]
fn a_v1_event_given_fields_its_encoding_lacks_was_edited() {
    let k = key(3);
    let edits: [fn(&mut AuditRecord); 2] =
        [|r| r.issuer = Some("x".into()), |r| r.caller_request_id = Some("x".into())];
    for edit in edits {
        let mut events = chain(&k, 3);
        assert_eq!(verify(&k, &events), Ok(3));
        edit(&mut events[1].record);
        assert_eq!(verify(&k, &events), Err(ChainBreak::HashMismatch { seq: 2 }));
    }
}

#[test]
fn v2_events_rewritten_as_v1_are_a_downgrade() {
    let k = key(3);
    let mut events = chain(&k, 5);
    let mut prev = events[1].hash;
    for e in events.iter_mut().skip(2) {
        *e = link_v1(e.seq, e.record.clone(), prev);
        prev = e.hash;
    }
    assert_eq!(verify(&k, &events), Err(ChainBreak::Downgraded { seq: 3, v2_from: 3 }));
}

#[test]
fn a_deleted_event_is_named() {
    let k = key(1);
    let mut events = chain(&k, 5);
    events.remove(1);
    assert_eq!(verify(&k, &events), Err(ChainBreak::Gap { previous: 1, found: 3 }));
}

#[test]
fn a_deleted_tail_disagrees_with_the_head() {
    let k = key(1);
    let events = chain(&k, 5);
    let mut v = ChainVerifier::new(k.clone());
    for e in &events[..4] {
        v.check(e).unwrap();
    }
    assert_eq!(v.finish(5, events[4].hash), Err(ChainBreak::HeadMismatch { head_seq: 5, last_seq: 4 }));
}

#[test]
fn a_resumed_verifier_checks_only_what_follows() {
    let k = key(1);
    let events = chain(&k, 6);
    let mut v = ChainVerifier::resume(k.clone(), 4, events[3].hash);
    for e in &events[4..] {
        v.check(e).unwrap();
    }
    assert_eq!(v.position(), (6, events[5].hash));
    assert_eq!(v.checked(), 2);
}

#[test]
fn absent_and_empty_optional_fields_link_differently() {
    let base = AuditRecord::new("tool", AuditAction::CredentialIssue, Outcome::Success, "req");
    let with_empty = AuditRecord { purpose: Some(String::new()), ..base.clone() };
    assert_ne!(v1_hash(1, &base, &GENESIS_HASH), v1_hash(1, &with_empty, &GENESIS_HASH));
    let k = key(1);
    assert_ne!(k.link(1, base, GENESIS_HASH).hash, k.link(1, with_empty, GENESIS_HASH).hash);
}

#[test]
fn details_are_a_json_object_and_v1_text_is_not() {
    assert_eq!(record(3).details_json(), Some(serde_json::json!({ "kind": "MARKETPLACE_API", "version": 3 })));
    let mut old = record(1);
    old.detail = Some("kind=MARKETPLACE_API version=3".into());
    assert_eq!(old.details_json(), None);
}

mod checkpoints {
    use super::*;

    fn at() -> time::OffsetDateTime {
        time::macros::datetime!(2026-11-27 12:00:00 UTC)
    }

    #[test]
    fn a_checkpoint_reads_back_from_its_line_and_is_authentic() {
        let k = key(1);
        let c = k.checkpoint(5, [9; 32], at(), "replica-a");
        let read = Checkpoint::parse_line(&format!("2026-11-27T12:00:00Z INFO {}", c.to_line())).unwrap();
        assert_eq!(read, c);
        assert!(k.is_authentic(&read));
    }

    #[test]
    fn an_edited_checkpoint_is_forged() {
        let k = key(1);
        let mut c = k.checkpoint(5, [9; 32], at(), "replica-a");
        c.seq = 3;
        assert!(!k.is_authentic(&c));
        assert!(matches!(c.check(&k, 10, |_| Some([9; 32])), Err(ChainBreak::ForgedCheckpoint { seq: 3, .. })));
    }

    #[test]
    fn a_checkpoint_past_the_end_of_the_chain_names_a_truncation() {
        let k = key(1);
        let c = k.checkpoint(8, [9; 32], at(), "a");
        assert_eq!(
            c.check(&k, 5, |_| None),
            Err(ChainBreak::Truncated { checkpoint_seq: 8, last_seq: 5, replica: "a".into() })
        );
    }

    #[test]
    fn a_checkpoint_whose_event_changed_names_a_rewrite() {
        let k = key(1);
        let c = k.checkpoint(4, [9; 32], at(), "a");
        assert_eq!(
            c.check(&k, 5, |_| Some([1; 32])),
            Err(ChainBreak::CheckpointMismatch { seq: 4, replica: "a".into() })
        );
        assert_eq!(c.check(&k, 5, |_| Some([9; 32])), Ok(()));
    }

    #[test]
    fn lines_that_are_not_checkpoints_are_refused() {
        for line in [
            "",
            "hello",
            "{}",
            r#"{"checkpoint":2,"seq":1,"head":"00","at":"2026-11-27T12:00:00Z","replica":"a","mac":"00"}"#,
        ] {
            assert!(Checkpoint::parse_line(line).is_err(), "{line}");
        }
    }
}

/// The v1 link of a fixed event, as computed by the encoding every chain before v2 was written with: existing chains
/// verify only while this stays byte for byte the same.
#[test]
fn the_v1_link_of_a_fixed_event_never_changes() {
    let record = AuditRecord {
        id: uuid::Uuid::from_u128(0x0190_f5b8_0000_7000_8000_0000_0000_0001),
        occurred_at: time::macros::datetime!(2026-11-23 10:00:00.123456 UTC),
        issuer: None,
        subject: "tool".into(),
        action: AuditAction::CredentialIssue,
        seller_login: Some("bestshop".into()),
        purpose: Some("nightly sync".into()),
        outcome: Outcome::Success,
        reason: None,
        detail: Some("kind=MARKETPLACE_API version=3".into()),
        request_id: "req-1".into(),
        caller_request_id: None,
    };
    let link = v1_hash(7, &record, &[3; 32]);
    assert_eq!(hex::encode(link), PINNED_V1_LINK);
    let keyed = AuditKey::from_bytes([7; 32], 1).link(7, AuditRecord { issuer: Some("iss".into()), ..record }, [3; 32]);
    assert_eq!(hex::encode(keyed.hash), PINNED_V2_LINK);
}

const PINNED_V1_LINK: &str = "850287522d13aa279c58878518dabc60e1284b0cf2e6d4fb32e35baaf62fb66f";
const PINNED_V2_LINK: &str = "ee258587b65a974b60e9540e7941eee754fb483b9ee1ecaed6d2ca8512987490";
