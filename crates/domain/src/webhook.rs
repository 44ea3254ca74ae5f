//! Webhooks in the Standard Webhooks format (<https://www.standardwebhooks.com>): the event types a tool can ask
//! for, the signing secret (`whsec_` and base64), the signature of one attempt, the sealed place of a stored secret,
//! the retry schedule and the payloads, which carry no secret and no bank detail (what changed, which version,
//! where to fetch it).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::Sha256;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::codes::stable_codes;
use crate::credential::CredentialChange;
use crate::crypto::{CryptoError, Keyring, Place, Sealed};
use crate::{Reason, ValidationError};

stable_codes! {
    /// What a webhook endpoint can be told about: the `type` of the payload.
    pub enum WebhookEventType {
        /// A credential of a seller was stored, restored or changed: fetch the new version.
        CredentialChanged = "credential.changed",
        /// A payout change request was submitted or moved in its review.
        PayoutChangeUpdated = "payout_change.updated",
    }
}

/// The table stored webhook secrets live in, in the associated data of their ciphertexts.
pub const SECRET_TABLE: &str = "webhook_secrets";
/// The sealed field of a webhook secret.
pub const SECRET_FIELD: &str = "secret";
/// The prefix Standard Webhooks gives a secret, so a leaked one is recognisable.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of a new signing key (the Standard Webhooks range is 24 to 64).
pub const KEY_BYTES: usize = 32;

/// The facts a stored webhook secret is bound to: its row and its endpoint. A secret copied to another endpoint
/// fails to open.
#[derive(Debug, Clone, Copy)]
pub struct WebhookSecretSlot {
    pub id: Uuid,
    pub endpoint_id: Uuid,
}

impl WebhookSecretSlot {
    fn place(&self) -> Place<'_> {
        Place { table: SECRET_TABLE, row_id: self.id, field: SECRET_FIELD, context: self.endpoint_id.as_bytes() }
    }

    pub fn seal(&self, ring: &Keyring, key: &SigningKey) -> Result<Sealed, CryptoError> {
        ring.seal(self.place(), &key.0)
    }

    pub fn open(&self, ring: &Keyring, sealed: &Sealed) -> Result<SigningKey, CryptoError> {
        Ok(SigningKey(ring.open(self.place(), sealed)?))
    }

    /// Opens and seals again under the active version, at the same place (a rewrap).
    pub fn reseal(&self, ring: &Keyring, sealed: &Sealed) -> Result<Sealed, CryptoError> {
        let key = self.open(ring, sealed)?;
        self.seal(ring, &key)
    }
}

/// The key an endpoint's deliveries are signed with. Never printed.
pub struct SigningKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([REDACTED])")
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; KEY_BYTES]);
        rand::rng().fill_bytes(bytes.as_mut_slice());
        Self(bytes)
    }

    /// The secret as the endpoint's owner is given it once: `whsec_` and the key in base64.
    pub fn to_whsec(&self) -> SecretString {
        SecretString::from(format!("{SECRET_PREFIX}{}", STANDARD.encode(self.0.as_slice())))
    }

    /// The `v1,<base64>` signature of one attempt: an HMAC-SHA256 of `{id}.{timestamp}.{body}`.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) else {
            unreachable!("HMAC takes a key of any length")
        };
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header of one attempt: one signature per key, space-separated, so that during a
/// secret's overlap a receiver holding either the old or the new secret accepts it.
pub fn signature_header(keys: &[SigningKey], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter().map(|key| key.sign(message_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// When a failed delivery is tried again, and when it is given up (dead-lettered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    /// The wait after the first failure; each further failure doubles it.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Attempts before the delivery is dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetrySchedule {
    /// About a day and a half of tries: 5 s, 10 s, ... then hourly, 40 attempts.
    fn default() -> Self {
        Self { base: Duration::from_secs(5), max: Duration::from_secs(3600), max_attempts: 40 }
    }
}

impl RetrySchedule {
    /// The wait after `attempts` failed attempts (1 for the first failure): exponential, capped.
    pub fn delay_after(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// Whether a delivery that failed `attempts` times is given up.
    pub fn exhausted(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }
}

/// Reads a list of event types as given (their payload `type` strings); at least one, no repeats kept.
pub fn parse_event_types(raw: &[String]) -> Result<Vec<WebhookEventType>, ValidationError> {
    let mut out = Vec::new();
    for text in raw {
        let event = text.parse::<WebhookEventType>().map_err(|_| {
            ValidationError::new("eventTypes", Reason::InvalidCharacters, "not a known webhook event type")
        })?;
        if !out.contains(&event) {
            out.push(event);
        }
    }
    if out.is_empty() {
        return Err(ValidationError::new("eventTypes", Reason::Empty, "give at least one event type"));
    }
    Ok(out)
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// The payload of a credential change: metadata and the operation that fetches the new version.
pub fn credential_changed_payload(change: &CredentialChange, sent_at: OffsetDateTime) -> Value {
    let fetch = match change.kind {
        crate::credential::CredentialKind::MarketplaceApi => "issueApiCredential",
        crate::credential::CredentialKind::Octopia => "issueOctopiaCredential",
    };
    json!({
        "type": WebhookEventType::CredentialChanged.as_str(),
        "timestamp": rfc3339(sent_at),
        "data": {
            "seq": change.seq,
            "sellerLogin": change.seller_login,
            "kind": change.kind.as_str(),
            "version": change.version,
            "change": change.change.as_str(),
            "changedBy": change.changed_by,
            "occurredAt": rfc3339(change.occurred_at),
            "fetch": { "operation": fetch, "sellerLogin": change.seller_login },
        }
    })
}

/// What a payout change request's transition says without its bank details.
#[derive(Debug, Clone)]
pub struct PayoutTransition<'a> {
    pub seq: i64,
    pub seller_login: &'a str,
    pub request_id: Uuid,
    pub status: &'a str,
    pub version: i32,
    pub changed_by: &'a str,
    pub occurred_at: OffsetDateTime,
}

/// The payload of a payout change request's transition: status and version, never an IBAN.
pub fn payout_change_payload(change: &PayoutTransition<'_>, sent_at: OffsetDateTime) -> Value {
    json!({
        "type": WebhookEventType::PayoutChangeUpdated.as_str(),
        "timestamp": rfc3339(sent_at),
        "data": {
            "seq": change.seq,
            "sellerLogin": change.seller_login,
            "requestId": change.request_id.to_string(),
            "status": change.status,
            "version": change.version,
            "changedBy": change.changed_by,
            "occurredAt": rfc3339(change.occurred_at),
            "fetch": { "operation": "payoutChangeRequest", "id": change.request_id.to_string() },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::RootKey;
    use secrecy::ExposeSecret;

    #[test]
    fn a_signature_is_the_standard_webhooks_hmac_of_id_timestamp_and_body() {
        // The example of the Standard Webhooks specification's reference libraries.
        let raw = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let key = SigningKey(Zeroizing::new(raw));
        let signature = key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_new_secret_is_whsec_and_base64_of_its_key_and_is_never_printed() {
        let key = SigningKey::generate();
        let whsec = key.to_whsec();
        let encoded = whsec.expose_secret().strip_prefix(SECRET_PREFIX).unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap().len(), KEY_BYTES);
        assert!(!format!("{key:?}").contains(encoded));
    }

    #[test]
    fn during_an_overlap_the_header_carries_one_signature_per_key() {
        let (old, new) = (SigningKey::generate(), SigningKey::generate());
        let header = signature_header(&[new, old], "msg_1", 10, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.split(' ').all(|s| s.starts_with("v1,")));
    }

    #[test]
    fn a_stored_secret_opens_only_at_its_own_endpoint() {
        let root = RootKey::from_base64(&RootKey::generate_base64()).unwrap();
        let (data_key, _) = root.new_data_key(1).unwrap();
        let ring = Keyring::new(vec![data_key], 1).unwrap();
        let slot = WebhookSecretSlot { id: Uuid::now_v7(), endpoint_id: Uuid::now_v7() };
        let key = SigningKey::generate();
        let sealed = slot.seal(&ring, &key).unwrap();
        assert_eq!(slot.open(&ring, &sealed).unwrap().sign("m", 1, b"x"), key.sign("m", 1, b"x"));
        let elsewhere = WebhookSecretSlot { endpoint_id: Uuid::now_v7(), ..slot };
        assert!(elsewhere.open(&ring, &sealed).is_err());
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap_then_give_up() {
        let schedule = RetrySchedule { base: Duration::from_secs(1), max: Duration::from_secs(10), max_attempts: 5 };
        let delays: Vec<u64> = (1..=6).map(|n| schedule.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert!(!schedule.exhausted(4));
        assert!(schedule.exhausted(5));
        assert_eq!(schedule.delay_after(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn event_types_are_read_by_their_payload_names_and_an_unknown_one_is_refused() {
        let parsed = parse_event_types(&["credential.changed".into(), "credential.changed".into()]).unwrap();
        assert_eq!(parsed, [WebhookEventType::CredentialChanged]);
        assert_eq!(parse_event_types(&[]).unwrap_err().reason, Reason::Empty);
        assert_eq!(parse_event_types(&["secret.leaked".into()]).unwrap_err().field, "eventTypes");
    }

    #[test]
    fn a_payout_payload_names_status_and_version_but_no_bank_detail() {
        let change = PayoutTransition {
            seq: 3,
            seller_login: "bestshop",
            request_id: Uuid::now_v7(),
            status: "APPROVED",
            version: 4,
            changed_by: "reviewer",
            occurred_at: OffsetDateTime::UNIX_EPOCH,
        };
        let payload = payout_change_payload(&change, OffsetDateTime::UNIX_EPOCH).to_string();
        assert!(payload.contains("\"status\":\"APPROVED\""));
        for word in ["iban", "bic", "holder", "IBAN"] {
            assert!(!payload.contains(word), "{word}");
        }
    }
}
