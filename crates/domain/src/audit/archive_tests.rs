use super::*;
use crate::audit::{AuditAction, GENESIS_HASH, link_v1};

fn key() -> AuditKey {
    AuditKey::from_bytes([7; 32], 3)
}

/// Events 1 to `n`: two unkeyed v1 events, then keyed ones, with JSON details and a v1 free-text detail.
fn chain(key: &AuditKey, n: i64) -> Vec<ChainedEvent> {
    let mut prev = GENESIS_HASH;
    (1..=n)
        .map(|seq| {
            let r = AuditRecord::new("tool", AuditAction::CredentialIssue, Outcome::Success, &format!("req-{seq}"));
            let e = if seq < key.v2_from() {
                link_v1(seq, AuditRecord { detail: Some("kind=MARKETPLACE_API version=1".into()), ..r }, prev)
            } else {
                let r = r.issuer("https://issuer.test").seller("bestshop").purpose("sync");
                key.link(seq, r.details(serde_json::json!({ "z": 1, "a": [seq] })), prev)
            };
            prev = e.hash;
            e
        })
        .collect()
}

/// The lines of an archive of `events` (continuing from `prev`), as `cdvault audit archive` writes them.
fn archive(key: &AuditKey, prev: (i64, [u8; 32]), events: &[ChainedEvent]) -> Vec<String> {
    let last = events.last().unwrap();
    let at = OffsetDateTime::now_utc();
    let seal = key.seal_archive((prev.0 + 1, prev.1), (last.seq, last.hash), at);
    let checkpoint = key.checkpoint(last.seq, last.hash, at, ARCHIVE_REPLICA);
    let mut lines = vec![archive_header_line(prev, at)];
    lines.extend(events.iter().map(archive_event_line));
    lines.push(archive_trailer_line(&seal, &checkpoint));
    lines
}

fn read(key: &AuditKey, lines: &[String]) -> Result<ArchivedRange, ArchiveBreak> {
    let mut reader = ArchiveReader::new(key.clone()).want([2]);
    for line in lines {
        reader.push(line)?;
    }
    reader.finish()
}

#[test]
fn an_archive_reads_back_and_proves_its_range_from_the_genesis_link() {
    let k = key();
    let events = chain(&k, 5);
    let range = read(&k, &archive(&k, (0, GENESIS_HASH), &events)).unwrap();
    assert_eq!((range.seal.from_seq, range.seal.through_seq), (1, 5));
    assert_eq!(range.seal.head, events[4].hash);
    assert_eq!(range.links.get(&2), Some(&events[1].hash));
}

#[test]
fn a_second_archive_continues_from_the_link_the_first_ended_on() {
    let k = key();
    let events = chain(&k, 6);
    let range = read(&k, &archive(&k, (3, events[2].hash), &events[3..])).unwrap();
    assert_eq!((range.seal.from_seq, range.seal.prev_hash), (4, events[2].hash));
}

#[test]
fn an_edited_event_line_is_named_by_its_line_and_sequence_number() {
    let k = key();
    let mut lines = archive(&k, (0, GENESIS_HASH), &chain(&k, 5));
    lines[4] = lines[4].replace("\"actor\":\"tool\"", "\"actor\":\"someone-else\"");
    let broken = read(&k, &lines).unwrap_err();
    assert_eq!(broken, ArchiveBreak::Chain { line: 5, source: ChainBreak::HashMismatch { seq: 4 } });
}

#[test]
fn an_archive_whose_last_line_was_deleted_is_cut_short() {
    let k = key();
    let mut lines = archive(&k, (0, GENESIS_HASH), &chain(&k, 5));
    lines.pop();
    assert_eq!(read(&k, &lines).unwrap_err(), ArchiveBreak::NoTrailer { last_seq: 5 });
}

#[test]
fn an_archive_whose_last_event_was_deleted_no_longer_matches_its_trailer() {
    let k = key();
    let mut lines = archive(&k, (0, GENESIS_HASH), &chain(&k, 5));
    lines.remove(5);
    let broken = read(&k, &lines).unwrap_err();
    assert_eq!(broken, ArchiveBreak::TrailerMismatch { from_seq: 1, through_seq: 5, first: 1, last: 4 });
}

#[test]
fn a_trailer_moved_onto_fewer_events_fails_its_seal() {
    let k = key();
    let events = chain(&k, 5);
    let mut lines = archive(&k, (0, GENESIS_HASH), &events);
    lines.remove(5);
    let last = lines.len() - 1;
    lines[last] = lines[last]
        .replace("\"through_seq\":5,\"events\":5", "\"through_seq\":4,\"events\":4")
        .replace(&hex::encode(events[4].hash), &hex::encode(events[3].hash));
    assert_eq!(read(&k, &lines).unwrap_err(), ArchiveBreak::ForgedSeal);
}

#[test]
fn an_archive_sealed_with_another_key_is_not_authentic() {
    let other = AuditKey::from_bytes([8; 32], 3);
    let lines = archive(&other, (0, GENESIS_HASH), &chain(&other, 5));
    assert!(read(&key(), &lines).is_err());
}

#[test]
fn lines_after_the_trailer_or_a_missing_header_are_refused() {
    let k = key();
    let mut lines = archive(&k, (0, GENESIS_HASH), &chain(&k, 3));
    lines.push(lines[1].clone());
    assert_eq!(read(&k, &lines).unwrap_err(), ArchiveBreak::AfterTrailer { line: 6 });
    assert_eq!(read(&k, &lines[1..]).unwrap_err(), ArchiveBreak::NoHeader);
}

#[test]
fn a_seal_is_no_checkpoint_and_a_checkpoint_no_seal() {
    let k = key();
    let at = OffsetDateTime::now_utc();
    let seal = k.seal_archive((1, GENESIS_HASH), (5, [9; 32]), at);
    let checkpoint = k.checkpoint(5, [9; 32], at, ARCHIVE_REPLICA);
    assert_ne!(seal.mac, checkpoint.mac);
    assert!(k.seal_is_authentic(&seal));
    assert!(!k.seal_is_authentic(&ArchiveSeal { through_seq: 6, ..seal }));
}
