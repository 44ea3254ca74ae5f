//! The audit chain (`cdvault_domain::audit`): records built from arbitrary field values, linked into a chain that
//! begins in v1 (SHA-256) and goes on in v2 (HMAC under the audit key) at an arbitrary point, always verify with
//! `ChainVerifier` against their head; changing any one field of any one event (its record, its version, its seq,
//! its previous link or its link) makes verification fail.
#![no_main]

use arbitrary::Arbitrary;
use cdvault_domain::Reason;
use cdvault_domain::audit::{
    AuditAction, AuditKey, AuditRecord, ChainBreak, ChainVerifier, ChainedEvent, GENESIS_HASH, Outcome, RecordVersion,
    link_v1,
};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;
use uuid::Uuid;

/// Chains longer than this add time, not coverage.
const MAX_EVENTS: usize = 8;
const OUTCOMES: [Outcome; 3] = [Outcome::Success, Outcome::Denied, Outcome::Failed];

#[derive(Debug, Arbitrary)]
struct RecordInput {
    id: [u8; 16],
    micros: i64,
    subject: String,
    action: u8,
    seller_login: Option<String>,
    purpose: Option<String>,
    outcome: u8,
    reason: Option<u8>,
    detail: Option<String>,
    request_id: String,
    issuer: Option<String>,
    caller_request_id: Option<String>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    records: Vec<RecordInput>,
    /// The first keyed (v2) sequence number: 1 (all v2) to past the end (all v1).
    v2_from: u8,
    /// Which event to edit, which of its fields, and a value to use where one is needed.
    target: u8,
    field: u8,
    replacement: String,
}

fn pick<T: Copy>(all: &[T], index: u8) -> T {
    all[usize::from(index) % all.len()]
}

/// The value after `current` in `all` (a different one: every list here has at least two).
fn next<T: Copy + PartialEq>(all: &[T], current: T) -> T {
    let at = all.iter().position(|value| *value == current).unwrap_or(0);
    all[(at + 1) % all.len()]
}

/// A time the databases keep: whole microseconds, within the years `time` represents.
fn occurred_at(micros: i64) -> OffsetDateTime {
    let span = 253_402_300_799_999_999_i64; // 9999-12-31T23:59:59.999999Z in microseconds since the epoch
    let nanos = i128::from(micros % span) * 1000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A record as stored: v1 events never had an issuer or a caller request id.
fn record(input: RecordInput, keyed: bool) -> AuditRecord {
    AuditRecord {
        id: Uuid::from_bytes(input.id),
        occurred_at: occurred_at(input.micros),
        issuer: input.issuer.filter(|_| keyed),
        caller_request_id: input.caller_request_id.filter(|_| keyed),
        subject: input.subject,
        action: pick(AuditAction::ALL, input.action),
        seller_login: input.seller_login,
        purpose: input.purpose,
        outcome: pick(&OUTCOMES, input.outcome),
        reason: input.reason.map(|r| pick(Reason::ALL, r)),
        detail: input.detail,
        request_id: input.request_id,
    }
}

fn verify(key: &AuditKey, events: &[ChainedEvent], head: (i64, [u8; 32])) -> Result<u64, ChainBreak> {
    let mut verifier = ChainVerifier::new(key.clone());
    for event in events {
        verifier.check(event)?;
    }
    verifier.finish(head.0, head.1)
}

/// A different value for an optional text: absent becomes present, present changes.
fn other_opt(value: &mut Option<String>, replacement: &str) {
    *value = match value.take() {
        None => Some(replacement.to_owned()),
        Some(v) if v == replacement => Some(format!("{v}!")),
        Some(_) => Some(replacement.to_owned()),
    }
}

fn other_text(value: &mut String, replacement: &str) {
    *value = if value == replacement { format!("{value}!") } else { replacement.to_owned() };
}

/// How many ways [`edit`] can change an event.
const FIELDS: u8 = 17;

/// Changes one field of `event`; every arm makes the value differ from what it was.
fn edit(event: &mut ChainedEvent, field: u8, replacement: &str) {
    let r = &mut event.record;
    match field % FIELDS {
        0 => r.id = Uuid::from_u128(r.id.as_u128() ^ 1),
        1 => {
            let micro = time::Duration::microseconds(1);
            r.occurred_at = r.occurred_at.checked_add(micro).unwrap_or(r.occurred_at - micro);
        }
        2 => other_text(&mut r.subject, replacement),
        3 => r.action = next(AuditAction::ALL, r.action),
        4 => other_opt(&mut r.seller_login, replacement),
        5 => other_opt(&mut r.purpose, replacement),
        6 => r.outcome = next(&OUTCOMES, r.outcome),
        7 => {
            r.reason = match r.reason {
                None => Some(Reason::ALL[0]),
                Some(reason) => Reason::ALL.iter().copied().find(|other| *other != reason),
            }
        }
        8 => other_opt(&mut r.detail, replacement),
        9 => other_text(&mut r.request_id, replacement),
        10 => event.seq = event.seq.wrapping_add(1),
        11 => event.prev_hash[0] ^= 1,
        12 => event.hash[31] ^= 1,
        13 => other_opt(&mut r.issuer, replacement),
        14 => other_opt(&mut r.caller_request_id, replacement),
        15 => {
            event.version = match event.version {
                RecordVersion::V1 => RecordVersion::V2,
                RecordVersion::V2 => RecordVersion::V1,
            }
        }
        _ => event.seq = event.seq.wrapping_sub(1),
    }
}

fuzz_target!(|input: Input| {
    let v2_from = 1 + i64::from(input.v2_from) % (MAX_EVENTS as i64 + 1);
    let key = AuditKey::from_bytes([7; 32], v2_from);
    let mut prev_hash = GENESIS_HASH;
    let mut events = Vec::new();
    for (seq, raw) in (1..).zip(input.records.into_iter().take(MAX_EVENTS)) {
        let keyed = seq >= v2_from;
        let record = record(raw, keyed);
        let event = if keyed { key.link(seq, record, prev_hash) } else { link_v1(seq, record, prev_hash) };
        prev_hash = event.hash;
        events.push(event);
    }
    let Some(last) = events.last() else { return };
    let head = (last.seq, last.hash);
    assert_eq!(verify(&key, &events, head), Ok(events.len() as u64), "a chain as linked verifies");

    let target = usize::from(input.target) % events.len();
    let before = events[target].clone();
    edit(&mut events[target], input.field, &input.replacement);
    assert_ne!(events[target], before, "the edit changed nothing (field {})", input.field % FIELDS);
    assert!(verify(&key, &events, head).is_err(), "an edit to event {} went unnoticed: {:?}", target + 1, events[target]);
});
